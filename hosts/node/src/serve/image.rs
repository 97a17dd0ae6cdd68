//! Image requests on the node: a registered image model file (an image architecture: ddpm-mnist,
//! a diffusers UNet2DModel, tiny-sd) is served like a text model ([`crate::serve`]):
//! the seeded image request natively (the path `oracle run` takes) and the guest on
//! the same request in the fault-proof VM for the claim.
//!
//! **Parameters.** An image model is served with the sampling parameters registered
//! for it on the dispute game factory (write-once per model; the game derives the
//! guest's local data from them, so a claim made with other parameters would lose
//! every dispute): their `steps` (DDPM: the last `steps` of 1000; DDIM: inference
//! steps), `seed` and, for a text-to-image model, the classifier-free guidance in
//! Q16: the core's image parameters ([`ImageParams`]) in their canonical encoding,
//! which the guest reads the same way. The request's input is the prompt: a text-to-image
//! model (tiny-sd) runs it; the unconditional models take none, so a non-empty
//! input is a rejected request, served with the error outcome like a too-long
//! prompt.
//!
//! **Output** (`oracle_core::diffusion::request::posted_output`): the PNG when it is at most
//! [`oracle_core::diffusion::request::OUTPUT_INLINE_LIMIT`] bytes, otherwise its
//! keccak256, with the PNG written to the node's [`OutputStore`] before the result
//! is submitted and served at `GET /outputs/0x<hash>.png` ([`crate::http`]).
//!
//! [`OutputStore`]: crate::serve::outputs::OutputStore

use oracle_core::diffusion::sd::DEFAULT_GUIDANCE_Q16;
pub use oracle_core::ImageParams;

/// The parameters an image model is served with when none are registered: 2
/// steps (about 2·10^9 VM steps for the claim of ddpm-mnist or tiny-unet2d), seed
/// 0, guidance 7.5. Registered as their canonical encoding
/// ([`ImageParams::encode`], `oracle_core::model::request`).
pub const DEFAULT_PARAMS: ImageParams = ImageParams {
    steps: 2,
    seed: 0,
    guidance_q16: DEFAULT_GUIDANCE_Q16,
};

/// The command-line flags of an image model's parameters (`oracle devnet`,
/// `oracle register`).
#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// For an image model file: sampler steps of every request (DDPM: the last
    /// steps of 1000; DDIM: inference steps), registered as the model's parameters.
    #[arg(long, default_value_t = DEFAULT_PARAMS.steps)]
    pub image_steps: u32,
    /// For an image model file: the seed of every request's noise.
    #[arg(long, default_value_t = DEFAULT_PARAMS.seed)]
    pub image_seed: u64,
    /// For a text-to-image model file: classifier-free guidance of every request
    /// (a decimal, read exactly into Q16; at most 1 runs the conditional pass alone).
    #[arg(long, default_value = "7.5")]
    pub image_guidance: String,
}

impl ImageArgs {
    /// The parameters these flags give.
    pub fn params(&self) -> anyhow::Result<ImageParams> {
        let guidance_q16 = oracle_core::diffusion::sd::parse_guidance_q16(&self.image_guidance)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--image-guidance {}: not a decimal guidance in 0..=256",
                    self.image_guidance
                )
            })?;
        Ok(ImageParams {
            steps: self.image_steps,
            seed: self.image_seed,
            guidance_q16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_through_the_guest_encoding() {
        let p = ImageParams {
            steps: 3,
            seed: 0x0102_0304_0506_0708,
            guidance_q16: 5 << 16,
        };
        let bytes = p.encode();
        assert_eq!(&bytes[..4], &3u32.to_be_bytes());
        assert_eq!(&bytes[4..8], &(5u32 << 16).to_be_bytes());
        assert_eq!(&bytes[8..12], &[0; 4]);
        assert_eq!(&bytes[12..], &p.seed.to_be_bytes());
        assert_eq!(ImageParams::decode(&bytes), Some(p));
        assert_eq!(ImageParams::decode(&bytes[1..]), None);
    }
}
