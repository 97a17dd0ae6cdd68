//! The down and up blocks both float UNets share ([`super::unet2d`],
//! [`super::unet2d_condition`]): ResNets with an optional attention after each,
//! then a down- or upsampler, generic over the attention (self-attention or a
//! text-conditioned transformer), the channel plan that loads them from
//! `block_out_channels`, and the checks both configs make on their blocks.

use super::blocks::{Downsample2D, ResnetBlock2D, Upsample2D};
use super::{DiffusionError, Tensor, Vb};

/// One down block: `resnets.M` (+ `attentions.M`), then `downsamplers.0`.
#[derive(Debug, Clone)]
pub struct DownBlock<A> {
    /// `resnets.M`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.M` (empty for a block without attention).
    pub attentions: Vec<A>,
    /// `downsamplers.0` (absent on the last block).
    pub downsampler: Option<Downsample2D>,
}

impl<A> DownBlock<A> {
    /// `x -> (x', skip states)`, with `attend` applying one attention.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: Option<&[f32]>,
        skips: &mut Vec<Tensor>,
        attend: impl Fn(&A, &Tensor) -> Tensor,
    ) -> Tensor {
        let mut h = x.clone();
        for (m, r) in self.resnets.iter().enumerate() {
            h = r.forward(&h, temb);
            if let Some(a) = self.attentions.get(m) {
                h = attend(a, &h);
            }
            skips.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h);
            skips.push(h.clone());
        }
        h
    }
}

/// One up block: `resnets.M` on `cat(h, skip)` (+ `attentions.M`), then
/// `upsamplers.0`.
#[derive(Debug, Clone)]
pub struct UpBlock<A> {
    /// `resnets.M`.
    pub resnets: Vec<ResnetBlock2D>,
    /// `attentions.M` (empty for a block without attention).
    pub attentions: Vec<A>,
    /// `upsamplers.0` (absent on the last block).
    pub upsampler: Option<Upsample2D>,
}

impl<A> UpBlock<A> {
    /// Consumes `resnets.len()` skip states from the end of `skips`, with
    /// `attend` applying one attention.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: Option<&[f32]>,
        skips: &mut Vec<Tensor>,
        attend: impl Fn(&A, &Tensor) -> Tensor,
    ) -> Tensor {
        let mut h = x.clone();
        for (m, r) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("skip states counted at load");
            h = r.forward(&super::ops::cat_channels(&h, &skip), temb);
            if let Some(a) = self.attentions.get(m) {
                h = attend(a, &h);
            }
        }
        if let Some(u) = &self.upsampler {
            h = u.forward(&h);
        }
        h
    }
}

/// How a UNet's blocks are laid out and loaded.
pub struct BlockPlan<'a, R, L> {
    /// `block_out_channels`.
    pub channels: &'a [usize],
    /// ResNets per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Padding of the downsampling convs.
    pub downsample_padding: usize,
    /// Loads the ResNet at a path, `(path, in channels, out channels)`.
    pub resnet: R,
    /// Loads the attention at a path over `channels`, `(path, channels)`.
    pub attention: L,
}

impl<R, L> BlockPlan<'_, R, L> {
    /// `down_blocks.N` of `types`; a block of type `attention_type` has an
    /// attention after each ResNet.
    pub fn down_blocks<'w, A>(
        &self,
        vb: &Vb<'w>,
        types: &[String],
        attention_type: &str,
    ) -> Result<Vec<DownBlock<A>>, DiffusionError>
    where
        R: Fn(&Vb<'w>, usize, usize) -> Result<ResnetBlock2D, DiffusionError>,
        L: Fn(&Vb<'w>, usize) -> Result<A, DiffusionError>,
    {
        let boc = self.channels;
        let n = boc.len();
        let mut blocks = Vec::with_capacity(n);
        let mut out_c = boc[0];
        for (i, ty) in types.iter().enumerate() {
            let in_c = out_c;
            out_c = boc[i];
            let b = vb.pp("down_blocks").pp(i);
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for m in 0..self.layers_per_block {
                let cin = if m == 0 { in_c } else { out_c };
                resnets.push((self.resnet)(&b.pp("resnets").pp(m), cin, out_c)?);
                if ty == attention_type {
                    attentions.push((self.attention)(&b.pp("attentions").pp(m), out_c)?);
                }
            }
            let downsampler = if i + 1 < n {
                Some(Downsample2D::load(
                    &b.pp("downsamplers.0"),
                    out_c,
                    self.downsample_padding,
                )?)
            } else {
                None
            };
            blocks.push(DownBlock {
                resnets,
                attentions,
                downsampler,
            });
        }
        Ok(blocks)
    }

    /// `up_blocks.N` of `types`; a block of type `attention_type` has an
    /// attention after each ResNet.
    pub fn up_blocks<'w, A>(
        &self,
        vb: &Vb<'w>,
        types: &[String],
        attention_type: &str,
    ) -> Result<Vec<UpBlock<A>>, DiffusionError>
    where
        R: Fn(&Vb<'w>, usize, usize) -> Result<ResnetBlock2D, DiffusionError>,
        L: Fn(&Vb<'w>, usize) -> Result<A, DiffusionError>,
    {
        let n = self.channels.len();
        let rev: Vec<usize> = self.channels.iter().rev().copied().collect();
        let mut blocks = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for (i, ty) in types.iter().enumerate() {
            let prev_c = out_c;
            out_c = rev[i];
            let in_c = rev[(i + 1).min(n - 1)];
            let b = vb.pp("up_blocks").pp(i);
            let layers = self.layers_per_block + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for m in 0..layers {
                let skip_c = if m == layers - 1 { in_c } else { out_c };
                let res_in = if m == 0 { prev_c } else { out_c };
                resnets.push((self.resnet)(
                    &b.pp("resnets").pp(m),
                    res_in + skip_c,
                    out_c,
                )?);
                if ty == attention_type {
                    attentions.push((self.attention)(&b.pp("attentions").pp(m), out_c)?);
                }
            }
            let upsampler = if i + 1 < n {
                Some(Upsample2D::load(&b.pp("upsamplers.0"), out_c)?)
            } else {
                None
            };
            blocks.push(UpBlock {
                resnets,
                attentions,
                upsampler,
            });
        }
        Ok(blocks)
    }
}

/// Check that `sample` is `(in_channels, H, W)` with H and W non-zero and
/// divisible by `2^(blocks - 1)`.
pub fn check_sample(
    sample: &Tensor,
    in_channels: usize,
    blocks: usize,
) -> Result<(), DiffusionError> {
    let f = 1usize << (blocks - 1);
    if sample.shape.len() != 3
        || sample.shape[0] != in_channels
        || sample.shape[1] == 0
        || sample.shape[2] == 0
        || !sample.shape[1].is_multiple_of(f)
        || !sample.shape[2].is_multiple_of(f)
    {
        return Err(DiffusionError::Input(format!(
            "sample of shape {:?} for {in_channels} channels and sides divisible by {f}",
            sample.shape
        )));
    }
    Ok(())
}

/// `Unsupported` naming the first of `types` that is not in `allowed`.
pub(crate) fn check_types(
    types: &[String],
    allowed: [&str; 2],
    what: &'static str,
) -> Result<(), DiffusionError> {
    match types.iter().find(|t| !allowed.contains(&t.as_str())) {
        Some(t) => Err(unsupported(what, t)),
        None => Ok(()),
    }
}

/// `Unsupported` unless the activation is `silu`, the time embedding
/// `positional` and the ResNets' time scale-shift `default`.
pub(crate) fn check_silu_positional(
    act_fn: &str,
    time_embedding_type: &str,
    resnet_time_scale_shift: &str,
) -> Result<(), DiffusionError> {
    if act_fn != "silu" {
        return Err(unsupported("act_fn", act_fn));
    }
    if time_embedding_type != "positional" {
        return Err(unsupported("time_embedding_type", time_embedding_type));
    }
    if resnet_time_scale_shift != "default" {
        return Err(unsupported(
            "resnet_time_scale_shift",
            resnet_time_scale_shift,
        ));
    }
    Ok(())
}

/// `Input` unless there are as many down and up blocks as `channels`, at least
/// one, with ResNets and channels.
pub(crate) fn check_block_counts(
    channels: &[usize],
    down_types: &[String],
    up_types: &[String],
    layers_per_block: usize,
) -> Result<(), DiffusionError> {
    let n = channels.len();
    if n == 0 || down_types.len() != n || up_types.len() != n {
        return Err(DiffusionError::Input(format!(
            "{n} block_out_channels for {} down and {} up blocks",
            down_types.len(),
            up_types.len()
        )));
    }
    if layers_per_block == 0 || channels.contains(&0) {
        return Err(zero_layers());
    }
    Ok(())
}

/// The error of a UNet config without ResNets, channels or transformer layers.
pub(crate) fn zero_layers() -> DiffusionError {
    DiffusionError::Input("zero layers or channels".into())
}

fn unsupported(what: &'static str, name: &str) -> DiffusionError {
    DiffusionError::Unsupported {
        what,
        name: name.to_string(),
    }
}
