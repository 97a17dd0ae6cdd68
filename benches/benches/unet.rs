//! UNet step time, integer vs float32 in the same run, for each image fixture
//! (ddpm-mnist's CNN, tiny-unet2d's UNet2DModel and its 10-step DDIM pipeline,
//! tiny-sd's guided UNet2DConditionModel step and its text-to-image pipeline), and
//! a synthetic UNet2DModel of Stable Diffusion 1.5's shape (channels
//! 320/640/1280/1280, two ResNets per block, self-attention at the first three
//! levels and in the mid block, heads of 40, 4×64×64 latents, random Q8 weights):
//! seconds per UNet step on one core, to plan real-size serving. The synthetic UNet
//! has no cross-attention (that is UNet2DConditionModel's); it is the conv and
//! self-attention cost, which dominates.
//!
//! Each fixture bench first checks that scalar, SIMD and two threads give the same
//! integer output. `cargo bench -p oracle-benches --bench unet`.
// criterion's macros generate undocumented items.
#![allow(missing_docs)]
#![allow(clippy::float_arithmetic)]

use std::path::PathBuf;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use oracle_benches::{random_quant, Xorshift};
use oracle_core::diffusion::ddpm_mnist::DdpmMnist as IntDdpm;
use oracle_core::diffusion::noise::fill_normal_q16;
use oracle_core::diffusion::unet2d::*;
use oracle_core::format::{Arch, ModelFile, ModelWriter};
use oracle_core::kernels::Simd;
use oracle_core::quant::QType;
use oracle_core::rng::Rng;
use oracle_core::Exec;
use oracle_quant::diffusion::ddpm_mnist::DdpmMnist;
use oracle_quant::diffusion::Tensor;
use oracle_quant::image::ddpm::{export_ddpm_mnist, DEFAULT_GROUP};
use oracle_quant::image::unet2d::{export_unet2d, load_folder};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn q16_to_f32(v: &[i32]) -> Vec<f32> {
    v.iter().map(|&x| x as f32 / 65536.0).collect()
}

fn ddpm_mnist(c: &mut Criterion) {
    let float = DdpmMnist::load_pth(&fixtures().join("models/ddpm-mnist/ddpm_mnist.pth")).unwrap();
    let bytes = export_ddpm_mnist(&float, DEFAULT_GROUP).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let int = IntDdpm::from_file(&file).unwrap();
    let mut z = vec![0i32; 784];
    fill_normal_q16(&mut Rng::new(1), &mut z);
    let zf = Tensor::new(vec![1, 28, 28], q16_to_f32(&z)).unwrap();
    let simd = Exec {
        simd: Simd::Best,
        threads: 1,
    };
    let want = int.eps(Exec::SCALAR, &z, 500);
    assert_eq!(int.eps(simd, &z, 500), want);
    assert_eq!(
        int.eps(
            Exec {
                simd: Simd::Best,
                threads: 2
            },
            &z,
            500
        ),
        want
    );
    let mut g = c.benchmark_group("ddpm-mnist step");
    g.sample_size(20);
    g.bench_function("integer", |b| b.iter(|| int.eps(simd, black_box(&z), 500)));
    g.bench_function("float32", |b| {
        b.iter(|| float.eps(black_box(&zf), 0.5).unwrap())
    });
    g.finish();
}

fn tiny_unet2d(c: &mut Criterion) {
    let (float, ddim) = load_folder(&fixtures().join("models/tiny-unet2d")).unwrap();
    let bytes = export_unet2d(&float, &ddim, DEFAULT_GROUP).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let int = UNet2D::from_file(&file).unwrap();
    let mut x = vec![0i32; 3 * 16 * 16];
    fill_normal_q16(&mut Rng::new(1), &mut x);
    let xf = Tensor::new(vec![3, 16, 16], q16_to_f32(&x)).unwrap();
    let simd = Exec {
        simd: Simd::Best,
        threads: 1,
    };
    let want = int.forward(Exec::SCALAR, &x, 16, 16, 901);
    assert_eq!(int.forward(simd, &x, 16, 16, 901), want);
    assert_eq!(
        int.forward(
            Exec {
                simd: Simd::Best,
                threads: 2
            },
            &x,
            16,
            16,
            901
        ),
        want
    );
    let mut g = c.benchmark_group("tiny-unet2d");
    g.sample_size(20);
    g.bench_function("step integer", |b| {
        b.iter(|| int.forward(simd, black_box(&x), 16, 16, 901))
    });
    g.bench_function("step float32", |b| {
        b.iter(|| float.forward(black_box(&xf), 901.0).unwrap())
    });
    g.bench_function("DDIM 10 steps integer", |b| {
        b.iter(|| int.sample(simd, black_box(x.clone()), 16, 16, 10).unwrap())
    });
    g.bench_function("DDIM 10 steps float32", |b| {
        b.iter(|| {
            let mut s = ddim.clone();
            s.set_timesteps(10).unwrap();
            let mut v = xf.clone();
            for &t in &s.timesteps {
                let e = float.forward(&v, t as f32).unwrap();
                v.data = s.step(&e.data, t, &v.data).unwrap();
            }
            v
        })
    });
    g.finish();
}

/// tiny-sd: one guided UNet step (two UNet2DConditionModel passes, 8×8×4 latents,
/// 77 text tokens) and the whole pipeline (text encoding of prompt and empty
/// prompt, 10 guided DDIM steps, VAE decoding to 16×16 RGB), integer vs float32.
fn tiny_sd(c: &mut Criterion) {
    use oracle_core::diffusion::sd::{seeded_latents, StableDiffusion, DEFAULT_GUIDANCE_Q16};
    use oracle_quant::image::sd::{export_sd, load_folder as load_sd};
    let float = load_sd(&fixtures().join("models/tiny-sd")).unwrap();
    let bytes = export_sd(&float, DEFAULT_GROUP).unwrap();
    let file = ModelFile::parse(&bytes).unwrap();
    let int = StableDiffusion::from_file(&file).unwrap();
    let prompt = "a photo of a red cat";
    let x = seeded_latents(&int, 1);
    let xf = Tensor::new(vec![4, 8, 8], q16_to_f32(&x)).unwrap();
    let simd = Exec {
        simd: Simd::Best,
        threads: 1,
    };
    let text = int.encode(simd, prompt.as_bytes()).unwrap();
    let (cond, uncond) = (
        float.encode_prompt(prompt).unwrap(),
        float.encode_prompt("").unwrap(),
    );
    let g = DEFAULT_GUIDANCE_Q16;
    let want = int.guided_eps(Exec::SCALAR, &x, 8, 901, &text, g);
    assert_eq!(int.guided_eps(simd, &x, 8, 901, &text, g), want);
    let two = Exec {
        simd: Simd::Best,
        threads: 2,
    };
    assert_eq!(int.guided_eps(two, &x, 8, 901, &text, g), want);
    let mut grp = c.benchmark_group("tiny-sd");
    grp.sample_size(10);
    grp.bench_function("guided step integer", |b| {
        b.iter(|| int.guided_eps(simd, black_box(&x), 8, 901, &text, g))
    });
    grp.bench_function("guided step float32", |b| {
        b.iter(|| {
            float
                .guided_eps(black_box(&xf), 901.0, &cond, &uncond, 7.5)
                .unwrap()
        })
    });
    grp.bench_function("pipeline 10 steps integer", |b| {
        b.iter(|| {
            int.generate(simd, prompt.as_bytes(), black_box(x.clone()), 10, g)
                .unwrap()
        })
    });
    grp.bench_function("pipeline 10 steps float32", |b| {
        b.iter(|| float.generate(prompt, black_box(&xf), 10, 7.5).unwrap())
    });
    grp.finish();
}

/// Random tensors for a UNet2DModel of the given shape, named as the loader wants.
struct Synth {
    w: ModelWriter,
    rng: Xorshift,
}

impl Synth {
    fn mat(&mut self, name: &str, rows: usize, cols: usize) {
        let group = cols.min(64);
        let (mut m, q) = random_quant(&mut self.rng, QType::Q8, rows, cols, group);
        // Weights of standard deviation about 1/sqrt(cols): |q| ~ 73, scale 2^-30 m.
        let target = ((1u64 << 30) as f64 / (73.0 * (cols as f64).sqrt())) as i32;
        m.iter_mut()
            .for_each(|v| *v = target + (*v).rem_euclid(target.max(2) / 2));
        self.w.add_quant(
            name,
            QType::Q8,
            rows as u32,
            cols as u32,
            group as u32,
            30,
            &m,
            &q,
        );
    }
    fn vec(&mut self, name: &str, n: usize, value: i32) {
        self.w.add_i32(name, 1, n as u32, 16, &vec![value; n]);
    }
    fn conv(&mut self, p: &str, cin: usize, cout: usize, k: usize) {
        self.mat(&format!("{p}.weight"), cout, cin * k * k);
        self.vec(&format!("{p}.bias"), cout, 0);
    }
    fn lin(&mut self, p: &str, cin: usize, cout: usize) {
        self.mat(&format!("{p}.weight"), cout, cin);
        self.vec(&format!("{p}.bias"), cout, 0);
    }
    fn norm(&mut self, p: &str, c: usize) {
        self.vec(&format!("{p}.weight"), c, 1 << 16);
        self.vec(&format!("{p}.bias"), c, 0);
    }
    fn resnet(&mut self, p: &str, cin: usize, cout: usize, temb: usize) {
        self.norm(&format!("{p}.norm1"), cin);
        self.conv(&format!("{p}.conv1"), cin, cout, 3);
        self.lin(&format!("{p}.time_emb_proj"), temb, cout);
        self.norm(&format!("{p}.norm2"), cout);
        self.conv(&format!("{p}.conv2"), cout, cout, 3);
        if cin != cout {
            self.conv(&format!("{p}.conv_shortcut"), cin, cout, 1);
        }
    }
    fn attn(&mut self, p: &str, c: usize) {
        self.norm(&format!("{p}.group_norm"), c);
        for n in ["to_q", "to_k", "to_v", "to_out.0"] {
            self.lin(&format!("{p}.{n}"), c, c);
        }
    }
}

/// The image model file of a random UNet2DModel with SD 1.5's channels.
fn sd15_shaped_unet() -> Vec<u8> {
    let boc = [320usize, 640, 1280, 1280];
    let down_attn = [1u32, 1, 1, 0];
    let up_attn = [0u32, 1, 1, 1];
    let (n, layers, t) = (boc.len(), 2usize, 1000usize);
    let config = UNet2DConfig {
        in_channels: 4,
        out_channels: 4,
        layers_per_block: layers as u32,
        head_dim: 40,
        groups: 32,
        attn_groups: 32,
        eps_q32: 42950,
        flip_sin_to_cos: true,
        down_pad: 1,
        mid_block: 1,
        sample_size: 64,
        train_timesteps: t as u32,
        block_out_channels: boc.iter().map(|&c| c as u32).collect(),
        down_block_types: down_attn.to_vec(),
        up_block_types: up_attn.to_vec(),
        ..UNet2DConfig::default()
    };
    let mut s = Synth {
        w: ModelWriter::new(Arch::UNet2D, config.to_words()),
        rng: Xorshift(0x5D15),
    };
    let temb = boc[0] * 4;
    s.conv("conv_in", 4, boc[0], 3);
    s.lin("time_embedding.linear_1", boc[0], temb);
    s.lin("time_embedding.linear_2", temb, temb);
    let mut out_c = boc[0];
    for i in 0..n {
        let in_c = out_c;
        out_c = boc[i];
        for m in 0..layers {
            s.resnet(
                &format!("down_blocks.{i}.resnets.{m}"),
                if m == 0 { in_c } else { out_c },
                out_c,
                temb,
            );
            if down_attn[i] == 1 {
                s.attn(&format!("down_blocks.{i}.attentions.{m}"), out_c);
            }
        }
        if i + 1 < n {
            s.conv(
                &format!("down_blocks.{i}.downsamplers.0.conv"),
                out_c,
                out_c,
                3,
            );
        }
    }
    s.resnet("mid_block.resnets.0", boc[3], boc[3], temb);
    s.attn("mid_block.attentions.0", boc[3]);
    s.resnet("mid_block.resnets.1", boc[3], boc[3], temb);
    let rev: Vec<usize> = boc.iter().rev().copied().collect();
    let mut out_c = rev[0];
    for i in 0..n {
        let prev_c = out_c;
        out_c = rev[i];
        let in_c = rev[(i + 1).min(n - 1)];
        for m in 0..=layers {
            let skip = if m == layers { in_c } else { out_c };
            let res_in = if m == 0 { prev_c } else { out_c };
            s.resnet(
                &format!("up_blocks.{i}.resnets.{m}"),
                res_in + skip,
                out_c,
                temb,
            );
            if up_attn[i] == 1 {
                s.attn(&format!("up_blocks.{i}.attentions.{m}"), out_c);
            }
        }
        if i + 1 < n {
            s.conv(&format!("up_blocks.{i}.upsamplers.0.conv"), out_c, out_c, 3);
        }
    }
    s.norm("conv_norm_out", boc[0]);
    s.conv("conv_out", boc[0], 4, 3);
    let half = boc[0] / 2;
    let freqs: Vec<i32> = (0..half)
        .map(|i| {
            ((-(10000f64.ln()) * i as f64 / half as f64).exp() / std::f64::consts::TAU
                * 2f64.powi(32)) as i32
        })
        .collect();
    s.w.add_i32("time_proj.freqs", 1, half as u32, 32, &freqs);
    let ones = vec![1 << 30; t];
    s.w.add_i32("scheduler.sqrt_alphas_cumprod", 1, t as u32, 30, &ones);
    s.w.add_i32(
        "scheduler.sqrt_one_minus_alphas_cumprod",
        1,
        t as u32,
        30,
        &vec![0; t],
    );
    s.w.add_i32(
        "scheduler.inv_sqrt_alphas_cumprod",
        1,
        t as u32,
        20,
        &vec![1 << 20; t],
    );
    s.w.add_i32("scheduler.final", 1, 3, 30, &[1 << 30, 0, 1 << 30]);
    s.w.finish()
}

fn sd15_shape(c: &mut Criterion) {
    let bytes = sd15_shaped_unet();
    let file = ModelFile::parse(&bytes).unwrap();
    let unet = UNet2D::from_file(&file).unwrap();
    let mut x = vec![0i32; 4 * 64 * 64];
    fill_normal_q16(&mut Rng::new(1), &mut x);
    let mut g = c.benchmark_group("sd15-shaped unet2d 64x64");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    for threads in [1, 2] {
        let exec = Exec::best(threads);
        let id = format!("integer step, {}, {threads} thread(s)", exec.kernel_name());
        g.bench_function(id, |b| {
            b.iter(|| unet.forward(exec, black_box(&x), 64, 64, 500))
        });
    }
    g.finish();
}

criterion_group!(benches, ddpm_mnist, tiny_unet2d, tiny_sd, sd15_shape);
criterion_main!(benches);
