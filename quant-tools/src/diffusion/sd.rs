//! The float32 Stable Diffusion pipeline (diffusers `StableDiffusionPipeline`
//! with DDIM, eta 0): CLIP text encoding of the prompt and of the empty
//! negative prompt, the conditional UNet with classifier-free guidance, DDIM
//! updates, and the VAE decoder.

use std::path::Path;

use super::clip::{ClipTextModel, ClipTokenizer};
use super::ddim::Ddim;
use super::diffusers::PipelineFolder;
use super::unet2d_condition::UNet2DConditionModel;
use super::vae::VaeDecoder;
use super::{DiffusionError, Tensor};

/// All components of a Stable-Diffusion-shaped pipeline folder.
#[derive(Debug, Clone)]
pub struct StableDiffusion {
    /// `tokenizer`.
    pub tokenizer: ClipTokenizer,
    /// `text_encoder`.
    pub text_encoder: ClipTextModel,
    /// `unet`.
    pub unet: UNet2DConditionModel,
    /// `vae` (decoder only).
    pub vae: VaeDecoder,
    /// `scheduler` (timesteps not yet set).
    pub scheduler: Ddim,
}

impl StableDiffusion {
    /// Loads every component of the folder (`model_index.json` must list them
    /// with their diffusers/transformers classes).
    pub fn load_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let p = PipelineFolder::open(dir)?;
        if p.class_name != "StableDiffusionPipeline" {
            return Err(DiffusionError::Unsupported {
                what: "pipeline class",
                name: p.class_name,
            });
        }
        Ok(Self {
            tokenizer: ClipTokenizer::load_dir(&p.component("tokenizer", "CLIPTokenizer")?)?,
            text_encoder: ClipTextModel::load_dir(&p.component("text_encoder", "CLIPTextModel")?)?,
            unet: UNet2DConditionModel::load_dir(&p.component("unet", "UNet2DConditionModel")?)?,
            vae: VaeDecoder::load_dir(&p.component("vae", "AutoencoderKL")?)?,
            scheduler: Ddim::load_dir(&p.component("scheduler", "DDIMScheduler")?)?,
        })
    }

    /// The text embeddings `(77, hidden)` of a prompt.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Tensor, DiffusionError> {
        self.text_encoder
            .forward(&self.tokenizer.encode_padded(prompt))
    }

    /// Guided noise prediction: `uncond + g (cond - uncond)`.
    pub fn guided_eps(
        &self,
        latents: &Tensor,
        t: f32,
        cond: &Tensor,
        uncond: &Tensor,
        guidance: f32,
    ) -> Result<Tensor, DiffusionError> {
        let u = self.unet.forward(latents, t, uncond)?;
        let c = self.unet.forward(latents, t, cond)?;
        let mut out = u.clone();
        for ((o, &uv), &cv) in out.data.iter_mut().zip(&u.data).zip(&c.data) {
            *o = uv + guidance * (cv - uv);
        }
        Ok(out)
    }

    /// Runs the pipeline from given initial latents `(4, h, w)` (DDIM's
    /// `init_noise_sigma` is 1) and returns the final latents.
    pub fn denoise(
        &self,
        prompt: &str,
        latents: &Tensor,
        steps: usize,
        guidance: f32,
    ) -> Result<Tensor, DiffusionError> {
        let cond = self.encode_prompt(prompt)?;
        let uncond = self.encode_prompt("")?;
        let mut sch = self.scheduler.clone();
        sch.set_timesteps(steps)?;
        let mut x = latents.clone();
        for &t in &sch.timesteps {
            let eps = if guidance > 1.0 {
                self.guided_eps(&x, t as f32, &cond, &uncond, guidance)?
            } else {
                self.unet.forward(&x, t as f32, &cond)?
            };
            x.data = sch.step(&eps.data, t, &x.data)?;
        }
        Ok(x)
    }

    /// Decodes final latents to an image `(3, H, W)` in [0, 1]:
    /// `clamp(vae.decode(latents / scaling_factor) / 2 + 0.5, 0, 1)`.
    pub fn decode(&self, latents: &Tensor) -> Result<Tensor, DiffusionError> {
        let s = self.vae.config.scaling_factor;
        let mut z = latents.clone();
        z.data.iter_mut().for_each(|v| *v /= s);
        let mut img = self.vae.decode(&z)?;
        img.data
            .iter_mut()
            .for_each(|v| *v = (*v / 2.0 + 0.5).clamp(0.0, 1.0));
        Ok(img)
    }

    /// The whole pipeline: prompt and initial latents to an image in [0, 1].
    pub fn generate(
        &self,
        prompt: &str,
        latents: &Tensor,
        steps: usize,
        guidance: f32,
    ) -> Result<Tensor, DiffusionError> {
        let x = self.denoise(prompt, latents, steps, guidance)?;
        self.decode(&x)
    }
}
