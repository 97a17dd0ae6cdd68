//! ddpm-mnist: the PyTorch checkpoint read without Python, the float eps forward
//! and the DDPM sampling loop.

use std::path::{Path, PathBuf};

use oracle_quant::diffusion::ddpm_mnist::{self, DdpmMnist};
use oracle_quant::diffusion::pth;
use oracle_quant::diffusion::Tensor;

fn pth_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models/ddpm-mnist/ddpm_mnist.pth")
}

/// A reproducible standard-normal-ish stream (Box-Muller over xorshift64*).
fn normal(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

#[test]
fn state_dict_reads_every_tensor_with_shape_and_stride() {
    let sd = pth::read_state_dict(&pth_path()).unwrap();
    assert_eq!(sd.len(), 29);
    let total: usize = sd.iter().map(|t| t.tensor.len()).sum();
    assert_eq!(total, 293_235);
    let conv = sd
        .iter()
        .find(|t| t.name == "gt.blocks.1.net.0.weight")
        .unwrap();
    assert_eq!(conv.view.shape, vec![32, 16, 7, 7]);
    assert_eq!(conv.view.stride, vec![784, 49, 7, 1]);
    assert_eq!(conv.view.offset, 0);
    assert_eq!(conv.view.storage_type, "FloatStorage");
    assert_eq!(sd[0].name, "beta_t");
    // The schedule: beta from 1e-4 to 0.02, alpha the cumulative product of 1 - beta.
    let m = DdpmMnist::load_pth(&pth_path()).unwrap();
    assert_eq!(m.num_values, 293_235);
    // beta_t[i] = 1e-4 + (0.02 - 1e-4) i / 1000 for i in 0..=1000, and alpha_t the
    // cumulative product from index 0 (so alpha_t[0] = 1 - 1e-4, not 1).
    assert!((m.beta_t[0] - 1e-4).abs() < 1e-9, "{}", m.beta_t[0]);
    assert!((m.beta_t[1000] - 0.02).abs() < 1e-9);
    let mut prod = 1.0f64;
    for i in 0..=1000 {
        prod *= 1.0 - f64::from(m.beta_t[i]);
        assert!(
            (f64::from(m.alpha_t[i]) - prod).abs() < 1e-5,
            "alpha_t[{i}]"
        );
    }
    // The stored frequencies are 0 and 2 pi 1.5^i.
    assert_eq!(m.frequencies[0], 0.0);
    assert!((m.frequencies[1] - std::f32::consts::TAU).abs() < 1e-5);
}

#[test]
fn corrupted_pth_is_an_error_not_a_panic() {
    let bytes = std::fs::read(pth_path()).unwrap();
    for cut in (0..64).map(|i| bytes.len() * i / 64) {
        assert!(DdpmMnist::parse_pth(&bytes[..cut]).is_err(), "cut {cut}");
    }
    // Flip bytes inside data.pkl (stored uncompressed near the start): every
    // outcome is an Ok or an Err, never a panic.
    let mut state = 0x1234_5678u64;
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut b = bytes.clone();
        let at = 40 + (state as usize % 3600);
        b[at] ^= (state >> 32) as u8 | 1;
        let _ = std::panic::catch_unwind(|| DdpmMnist::parse_pth(&b))
            .unwrap_or_else(|_| panic!("panic with byte {at} flipped"));
    }
}

#[test]
fn eps_is_deterministic_and_sane() {
    let m = DdpmMnist::load_pth(&pth_path()).unwrap();
    let z = Tensor::new(vec![1, 28, 28], normal(1, 784)).unwrap();
    let a = m.eps(&z, 0.5).unwrap();
    let b = m.eps(&z, 0.5).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.shape, vec![1, 28, 28]);
    // At t = 1 the input is (nearly) pure noise, so eps ~ z.
    let e = m.eps(&z, 1.0).unwrap();
    let err: f32 = e
        .data
        .iter()
        .zip(&z.data)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        / 784.0;
    assert!(err < 0.1, "eps at t=1 far from the noise: mse {err}");
    assert!(m.eps(&Tensor::zeros(&[1, 28, 27]), 0.5).is_err());
}

/// PyTorch's numbers for the same input, computed with torch 2.x CPU (float32,
/// one thread) in a throwaway venv by a script that loads this `.pth` with
/// `torch.load`, rebuilds the upstream `CNN` from `torch.nn` modules (Conv2d,
/// LayerNorm((C,28,28)), GELU(), Linear) and runs `gt(z, t)`; the sample uses
/// the upstream `DDPM.sample` loop with the noise stack of [`normal`] (ported
/// to Python bit for bit).
mod torch_ref {
    /// `eps(z, 0.5)` at flat indices 0, 100, ..., 700, 783 for
    /// `z[i] = 1.3 sin(0.37 i + 0.1)`.
    pub const EPS_IDX: [usize; 9] = [0, 100, 200, 300, 400, 500, 600, 700, 783];
    /// The values.
    pub const EPS: [f32; 9] = [
        0.308_754_4,
        -0.621_990_56,
        -1.158_949_3,
        -1.183_549_9,
        -0.543_358_9,
        0.513_765_75,
        1.153_101_4,
        1.578_692_8,
        1.121_045_8,
    ];
    /// Sum and sum of absolute values of that eps.
    pub const EPS_SUM: f64 = 106.567_209_800_239_65;
    /// See [`EPS_SUM`].
    pub const EPS_SUM_ABS: f64 = 696.628_240_624_908_4;
    /// Final z of the 1000-step sample from `normal(7, 1000 * 784)` at these indices.
    pub const Z_IDX: [usize; 6] = [0, 200, 350, 400, 410, 600];
    /// The values.
    pub const Z: [f32; 6] = [
        -0.497_615_16,
        -0.494_606_05,
        0.480_727_97,
        -0.489_865_12,
        -0.503_609_7,
        -0.519_023_66,
    ];
    /// Sum of the image `clip(z + 0.5, 0, 1)`.
    pub const IMG_SUM: f64 = 42.612_126_320_600_51;
}

#[test]
fn eps_matches_pytorch() {
    let m = DdpmMnist::load_pth(&pth_path()).unwrap();
    let z: Vec<f32> = (0..784)
        .map(|i| (1.3 * (0.37 * i as f64 + 0.1).sin()) as f32)
        .collect();
    let e = m
        .eps(&Tensor::new(vec![1, 28, 28], z).unwrap(), 0.5)
        .unwrap();
    for (&i, &want) in torch_ref::EPS_IDX.iter().zip(&torch_ref::EPS) {
        assert!(
            (e.data[i] - want).abs() < 2e-5,
            "eps[{i}] = {} vs torch {want}",
            e.data[i]
        );
    }
    let sum: f64 = e.data.iter().map(|&v| f64::from(v)).sum();
    let sum_abs: f64 = e.data.iter().map(|&v| f64::from(v).abs()).sum();
    assert!((sum - torch_ref::EPS_SUM).abs() < 1e-3, "sum {sum}");
    assert!(
        (sum_abs - torch_ref::EPS_SUM_ABS).abs() < 1e-3,
        "sum abs {sum_abs}"
    );
}

#[test]
fn sampling_from_given_noise_gives_a_digit() {
    let m = DdpmMnist::load_pth(&pth_path()).unwrap();
    let noise = normal(7, 1000 * 784);
    let z = m.sample(&noise, 1000).unwrap();
    let img = ddpm_mnist::to_image(&z);
    for row in img.chunks(28) {
        let line: String = row
            .iter()
            .map(|&v| {
                if v > 0.5 {
                    '#'
                } else if v > 0.1 {
                    '+'
                } else {
                    '.'
                }
            })
            .collect();
        eprintln!("{line}");
    }
    let mean = img.iter().sum::<f32>() / 784.0;
    let ink = img.iter().filter(|&&v| v > 0.5).count();
    let dark = img.iter().filter(|&&v| v < 0.1).count();
    // An MNIST digit: mostly black background, 5-35% ink, nearly binary.
    assert!((0.03..0.35).contains(&mean), "mean {mean}");
    assert!((20..300).contains(&ink), "ink pixels {ink}");
    assert!(dark > 450, "background pixels {dark}");
    // The border is background.
    let border: f32 = (0..28)
        .flat_map(|i| [img[i], img[27 * 28 + i], img[i * 28], img[i * 28 + 27]])
        .sum::<f32>()
        / 112.0;
    assert!(border < 0.1, "border {border}");
    // PyTorch's sample from the same noise stack.
    for (&i, &want) in torch_ref::Z_IDX.iter().zip(&torch_ref::Z) {
        assert!(
            (z.data[i] - want).abs() < 1e-3,
            "z[{i}] = {} vs torch {want}",
            z.data[i]
        );
    }
    let sum: f64 = img.iter().map(|&v| f64::from(v)).sum();
    assert!((sum - torch_ref::IMG_SUM).abs() < 0.05, "image sum {sum}");
    assert!(m.sample(&noise[..784 * 999], 1000).is_err());
}
