//! diffusers' `DDIMScheduler` (deterministic, eta 0), float32 as diffusers
//! computes it: betas and `alphas_cumprod` in f32 (torch `linspace` then
//! `cumprod`), the update in f32.

use std::path::Path;

use serde::Deserialize;

use super::defaults::yes;
use super::diffusers::read_config;
use super::DiffusionError;

/// The fields of `scheduler_config.json` that the reference reads.
#[derive(Debug, Clone, Deserialize)]
pub struct DdimConfig {
    /// Training steps `T`.
    #[serde(default = "thousand")]
    pub num_train_timesteps: usize,
    /// First beta.
    #[serde(default = "beta_start")]
    pub beta_start: f32,
    /// Last beta.
    #[serde(default = "beta_end")]
    pub beta_end: f32,
    /// `linear` or `scaled_linear`.
    #[serde(default = "linear")]
    pub beta_schedule: String,
    /// Must be null.
    #[serde(default)]
    pub trained_betas: Option<serde_json::Value>,
    /// Clip the predicted x0 to `[-clip_sample_range, clip_sample_range]`.
    #[serde(default = "yes")]
    pub clip_sample: bool,
    /// See `clip_sample`.
    #[serde(default = "one")]
    pub clip_sample_range: f32,
    /// `alpha_cumprod` before step 0 is 1 (else `alphas_cumprod[0]`).
    #[serde(default = "yes")]
    pub set_alpha_to_one: bool,
    /// Added to every timestep.
    #[serde(default)]
    pub steps_offset: usize,
    /// `epsilon`, `v_prediction` or `sample`.
    #[serde(default = "epsilon")]
    pub prediction_type: String,
    /// `leading`, `trailing` or `linspace`.
    #[serde(default = "leading")]
    pub timestep_spacing: String,
    /// Must be false.
    #[serde(default)]
    pub thresholding: bool,
    /// Must be false.
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
}

fn thousand() -> usize {
    1000
}
fn beta_start() -> f32 {
    1e-4
}
fn beta_end() -> f32 {
    0.02
}
fn linear() -> String {
    "linear".into()
}
fn one() -> f32 {
    1.0
}
fn epsilon() -> String {
    "epsilon".into()
}
fn leading() -> String {
    "leading".into()
}

/// `torch.linspace(start, end, n, dtype=float32)`: the step in f32, the first half
/// counted from `start`, the second from `end`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                start + step * i as f32
            } else {
                end - step * (n - 1 - i) as f32
            }
        })
        .collect()
}

/// The DDIM scheduler with its timesteps.
#[derive(Debug, Clone)]
pub struct Ddim {
    /// The configuration.
    pub config: DdimConfig,
    /// `alphas_cumprod (T)`.
    pub alphas_cumprod: Vec<f32>,
    /// `alpha_cumprod` before the first training step.
    pub final_alpha_cumprod: f32,
    /// The inference timesteps, descending (after [`Ddim::set_timesteps`]).
    pub timesteps: Vec<usize>,
    /// Number of inference steps.
    pub num_inference_steps: usize,
}

/// Most training timesteps a scheduler config may have (the integer core's
/// limit).
pub const MAX_TRAIN_TIMESTEPS: usize = 1 << 12;

impl Ddim {
    /// Loads `dir/scheduler_config.json`.
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        Self::new(read_config(
            dir,
            "scheduler_config.json",
            "scheduler",
            "DDIMScheduler",
        )?)
    }

    /// Builds the schedule from a config.
    pub fn new(config: DdimConfig) -> Result<Self, DiffusionError> {
        let unsupported = |what: &'static str, name: &str| DiffusionError::Unsupported {
            what,
            name: name.to_string(),
        };
        let t = config.num_train_timesteps;
        // The integer core's limit: the tables are T entries each, so a config
        // must not size them beyond what any model file can carry.
        if !(2..=MAX_TRAIN_TIMESTEPS).contains(&t) {
            return Err(DiffusionError::Input(format!(
                "num_train_timesteps {t} (2..={MAX_TRAIN_TIMESTEPS})"
            )));
        }
        if config.trained_betas.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported("trained_betas", "set"));
        }
        if config.thresholding {
            return Err(unsupported("thresholding", "true"));
        }
        if config.rescale_betas_zero_snr {
            return Err(unsupported("rescale_betas_zero_snr", "true"));
        }
        if !matches!(
            config.prediction_type.as_str(),
            "epsilon" | "v_prediction" | "sample"
        ) {
            return Err(unsupported("prediction_type", &config.prediction_type));
        }
        if !matches!(
            config.timestep_spacing.as_str(),
            "leading" | "trailing" | "linspace"
        ) {
            return Err(unsupported("timestep_spacing", &config.timestep_spacing));
        }
        let betas: Vec<f32> = match config.beta_schedule.as_str() {
            "linear" => linspace_f32(config.beta_start, config.beta_end, t),
            "scaled_linear" => linspace_f32(config.beta_start.sqrt(), config.beta_end.sqrt(), t)
                .into_iter()
                .map(|b| b * b)
                .collect(),
            other => return Err(unsupported("beta_schedule", other)),
        };
        let mut alphas_cumprod = Vec::with_capacity(t);
        let mut acc = 1.0f32;
        for b in &betas {
            acc *= 1.0 - b;
            alphas_cumprod.push(acc);
        }
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        Ok(Self {
            config,
            alphas_cumprod,
            final_alpha_cumprod,
            timesteps: Vec::new(),
            num_inference_steps: 0,
        })
    }

    /// Picks `n` inference timesteps (descending) by `timestep_spacing`.
    pub fn set_timesteps(&mut self, n: usize) -> Result<(), DiffusionError> {
        let t = self.config.num_train_timesteps;
        if n == 0 || n > t {
            return Err(DiffusionError::Input(format!(
                "{n} inference steps for {t} training steps"
            )));
        }
        let off = self.config.steps_offset;
        let ts: Vec<usize> = match self.config.timestep_spacing.as_str() {
            "leading" => {
                let ratio = t / n;
                (0..n).rev().map(|i| i * ratio + off).collect()
            }
            "trailing" => {
                // round(arange(T, 0, -T / n)) - 1.
                let ratio = t as f64 / n as f64;
                (0..n)
                    .map(|i| {
                        let x = t as f64 - i as f64 * ratio;
                        (x.round_ties_even() as usize).saturating_sub(1)
                    })
                    .collect()
            }
            _ => {
                // linspace(0, T - 1, n).round(), descending.
                (0..n)
                    .rev()
                    .map(|i| {
                        let x = if n == 1 {
                            0.0
                        } else {
                            i as f64 * (t - 1) as f64 / (n - 1) as f64
                        };
                        x.round_ties_even() as usize
                    })
                    .collect()
            }
        };
        if ts.iter().any(|&x| x >= t) {
            return Err(DiffusionError::Input(format!(
                "steps_offset {off} pushes a timestep past {t}"
            )));
        }
        self.timesteps = ts;
        self.num_inference_steps = n;
        Ok(())
    }

    /// One DDIM step (eta 0): from `sample` at `timestep` and the model output,
    /// the sample at the previous timestep `timestep - T / n`.
    pub fn step(
        &self,
        model_output: &[f32],
        timestep: usize,
        sample: &[f32],
    ) -> Result<Vec<f32>, DiffusionError> {
        if self.num_inference_steps == 0 {
            return Err(DiffusionError::Input("set_timesteps not called".into()));
        }
        if model_output.len() != sample.len() || timestep >= self.alphas_cumprod.len() {
            return Err(DiffusionError::Input(format!(
                "step at {timestep} with {} outputs for {} values",
                model_output.len(),
                sample.len()
            )));
        }
        let ratio = self.config.num_train_timesteps / self.num_inference_steps;
        let a_t = self.alphas_cumprod[timestep];
        let a_prev = match timestep.checked_sub(ratio) {
            Some(p) => self.alphas_cumprod[p],
            None => self.final_alpha_cumprod,
        };
        let b_t = 1.0 - a_t;
        let (sa, sb) = (a_t.sqrt(), b_t.sqrt());
        let dir = (1.0 - a_prev).sqrt();
        let sa_prev = a_prev.sqrt();
        let clip = self.config.clip_sample;
        let r = self.config.clip_sample_range;
        Ok(model_output
            .iter()
            .zip(sample)
            .map(|(&m, &x)| {
                let (mut x0, eps) = match self.config.prediction_type.as_str() {
                    "epsilon" => ((x - sb * m) / sa, m),
                    "v_prediction" => (sa * x - sb * m, sa * m + sb * x),
                    _ => (m, (x - sa * m) / sb),
                };
                if clip {
                    x0 = x0.clamp(-r, r);
                }
                sa_prev * x0 + dir * eps
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> DdimConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn leading_timesteps_with_offset() {
        let mut d = Ddim::new(cfg(
            r#"{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"steps_offset":1,"set_alpha_to_one":false}"#,
        ))
        .unwrap();
        d.set_timesteps(10).unwrap();
        assert_eq!(
            d.timesteps,
            vec![901, 801, 701, 601, 501, 401, 301, 201, 101, 1]
        );
        assert_eq!(d.final_alpha_cumprod, d.alphas_cumprod[0]);
        assert!((d.alphas_cumprod[999] - 0.004_660_095).abs() < 1e-8);
    }

    #[test]
    fn timestep_spacings_match_diffusers() {
        // DDIMScheduler(timestep_spacing=..., steps_offset=0).set_timesteps(7).
        for (spacing, want) in [
            ("leading", [852, 710, 568, 426, 284, 142, 0]),
            ("trailing", [999, 856, 713, 570, 428, 285, 142]),
            ("linspace", [999, 832, 666, 500, 333, 166, 0]),
        ] {
            let mut d = Ddim::new(cfg(&format!(r#"{{"timestep_spacing":"{spacing}"}}"#))).unwrap();
            d.set_timesteps(7).unwrap();
            assert_eq!(d.timesteps, want, "{spacing}");
        }
    }

    #[test]
    fn step_with_perfect_eps_recovers_the_clean_sample() {
        let mut d = Ddim::new(cfg(r#"{"clip_sample":false}"#)).unwrap();
        d.set_timesteps(4).unwrap();
        let x0 = [0.3f32, -0.7];
        let eps = [1.1f32, 0.2];
        let mut x: Vec<f32> = Vec::new();
        let a = d.alphas_cumprod[d.timesteps[0]];
        for (&c, &e) in x0.iter().zip(&eps) {
            x.push(a.sqrt() * c + (1.0 - a).sqrt() * e);
        }
        for &t in &d.timesteps.clone() {
            x = d.step(&eps, t, &x).unwrap();
            // The eps is still the true one for the new sample (DDIM is deterministic).
        }
        for (a, b) in x.iter().zip(&x0) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
