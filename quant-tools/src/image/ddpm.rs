//! ddpm-mnist's float checkpoint to an `Arch::DdpmMnist` model file (layout
//! and derived tables in [`oracle_core::diffusion::ddpm_mnist`]).

use oracle_core::format::{Arch, ModelWriter};

use super::quantize::{add_conv, add_linear, add_q16, q30};
use super::ImageError;
use crate::diffusion::ddpm_mnist::{DdpmMnist, STEPS};

/// Default group size along a weight row.
pub const DEFAULT_GROUP: usize = 64;

/// The image model file of a loaded float ddpm-mnist.
///
/// # Errors
/// [`ImageError::Export`] if a schedule entry or a frequency cannot be represented.
pub fn export_ddpm_mnist(m: &DdpmMnist, group: usize) -> Result<Vec<u8>, ImageError> {
    let mut w = ModelWriter::new(Arch::DdpmMnist, Vec::new());
    for (i, b) in m.blocks.iter().enumerate() {
        let p = format!("gt.blocks.{i}.net");
        add_conv(&mut w, &format!("{p}.0"), &b.conv, group);
        add_q16(&mut w, &format!("{p}.1.weight"), &b.ln_weight);
        add_q16(&mut w, &format!("{p}.1.bias"), &b.ln_bias);
    }
    add_conv(&mut w, "gt.blocks.4", &m.out, group);
    for (k, lin) in m.time_embed.iter().enumerate() {
        add_linear(&mut w, &format!("gt.time_embed.{}", 2 * k), lin, group);
    }
    // Frequencies as turns per step i (t = i / 1000), with as many fractional bits
    // as fit i32 (at most 48).
    let turns: Vec<f64> = m
        .frequencies
        .iter()
        .map(|&f| f64::from(f) / (2.0 * std::f64::consts::PI * STEPS as f64))
        .collect();
    let max = turns.iter().fold(0f64, |a, &v| a.max(v.abs()));
    let frac = if max == 0.0 {
        48
    } else {
        (30 - libm::ceil(libm::log2(max)) as i32).min(48)
    };
    if frac < 0 {
        return Err(ImageError::Export {
            what: "gt.frequencies".into(),
            why: format!("a frequency of {max} turns per step"),
        });
    }
    let fq: Vec<i32> = turns
        .iter()
        .map(|&v| libm::round(libm::ldexp(v, frac)) as i32)
        .collect();
    w.add_i32("gt.frequencies", 1, fq.len() as u32, frac, &fq);
    let table = |name: &str, f: &dyn Fn(f64, f64) -> f64| -> Result<Vec<i32>, ImageError> {
        (0..=STEPS)
            .map(|i| {
                let (b, a) = (f64::from(m.beta_t[i]), f64::from(m.alpha_t[i]));
                q30(f(b, a)).ok_or_else(|| ImageError::Export {
                    what: name.into(),
                    why: format!("entry {i} outside [-2, 2)"),
                })
            })
            .collect()
    };
    // Entry 0 is never used by the loop (i >= 1); it is kept for indexing by i.
    let eps_coef = table("schedule.eps_coef", &|b, a| {
        if a < 1.0 {
            b / (1.0 - a).sqrt()
        } else {
            0.0
        }
    })?;
    let inv_sqrt_alpha = table("schedule.inv_sqrt_alpha", &|b, _| 1.0 / (1.0 - b).sqrt())?;
    let sigma = table("schedule.sigma", &|b, _| b.max(0.0).sqrt())?;
    let n = (STEPS + 1) as u32;
    w.add_i32("schedule.eps_coef", 1, n, 30, &eps_coef);
    w.add_i32("schedule.inv_sqrt_alpha", 1, n, 30, &inv_sqrt_alpha);
    w.add_i32("schedule.sigma", 1, n, 30, &sigma);
    Ok(w.finish())
}
