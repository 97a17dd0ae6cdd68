//! `oracle_core::footprint` is an upper bound of what serving a request holds on
//! the heap: a counting allocator measures the bundled models' load and one
//! request (text generation, the two-phase decoder, each image architecture)
//! and the measured peak must stay within the footprint's decoded copies plus
//! run state (the file's bytes are allocated before the measurement). The
//! decoder's `preimages()` (the host's list for the VM's oracle) is not part of
//! a request's run state and is not measured.

use oracle_core::commit::merkle::model_root;
use oracle_core::commit::position::Decoder;
use oracle_core::footprint::{check, Footprint};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_tests::counting_alloc::{alloc_peak, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn footprint(bytes: &[u8]) -> Footprint {
    check(bytes, u64::MAX).expect("loads").1
}

fn assert_within(name: &str, peak: usize, fp: &Footprint) {
    let bound = fp.decoded + fp.run_state;
    eprintln!(
        "{name}: measured {peak} bytes, footprint {bound} (decoded {} + run state {}), {:.1}x",
        fp.decoded,
        fp.run_state,
        bound as f64 / peak.max(1) as f64
    );
    assert!(peak as u64 <= bound, "{name}: {peak} > {bound}");
}

#[test]
fn text_requests_stay_within_the_footprint() {
    for fixture in oracle_tests::LLAMA_FIXTURES {
        let bytes = fixture.model_file(QType::Q8);
        let fp = footprint(&bytes);
        let request = Request::text(
            b"Once upon a time",
            512,
            SamplingParams {
                temperature_q16: 1 << 16,
                top_p_q16: 58_982,
                seed: 7,
            },
        );
        let (generated, peak) = alloc_peak(|| {
            let model = Model::load(&bytes).expect("loads");
            model
                .generate(Exec::SCALAR, &request, |_| {})
                .expect("generates")
                .tokens
                .len()
        });
        assert!(generated > 1);
        assert_within(&format!("{} generate", fixture.name), peak, &fp);
        let root = model_root(&bytes);
        let (_, peak) = alloc_peak(|| {
            let model = Model::load(&bytes).expect("loads");
            let mut d =
                Decoder::start(&model.weights, &model.tokenizer, root, &request).expect("starts");
            for _ in 0..8 {
                d.step(Exec::SCALAR).expect("steps");
            }
            d.state().hash()
        });
        assert_within(&format!("{} decoder", fixture.name), peak, &fp);
    }
}

#[test]
fn image_requests_stay_within_the_footprint() {
    for (name, bytes, prompt) in [
        (
            "ddpm-mnist",
            oracle_tests::ddpm_mnist_model_file(),
            &b""[..],
        ),
        ("tiny-unet2d", oracle_tests::tiny_unet2d_model_file(), b""),
        ("tiny-sd", oracle_tests::tiny_sd_model_file(), b"a red cat"),
    ] {
        let fp = footprint(&bytes);
        let params = oracle_core::ImageParams {
            guidance_q16: 3 << 16,
            steps: 1,
            seed: 7,
        };
        let (png, peak) = alloc_peak(|| {
            oracle_tests::run_image(&bytes, Exec::SCALAR, prompt, params).expect("runs")
        });
        assert!(png.len() > 57);
        assert_within(name, peak, &fp);
    }
}
