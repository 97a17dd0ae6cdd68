//! Resampling of Q16 `[C × H × W]` maps: nearest-neighbour ×2 upsampling (diffusers'
//! `Upsample2D` before its conv) and 2×2 average pooling (`Downsample2D` without a
//! conv). Strided downsampling convolutions are [`super::conv2d::Conv2d`] with
//! stride 2.

use alloc::vec;
use alloc::vec::Vec;

use crate::fixed::round_shift;

/// Nearest-neighbour ×2: `[c × h × w]` → `[c × 2h × 2w]`, each value copied to a
/// 2×2 block. Exact.
pub fn upsample_nearest2(x: &[i32], c: usize, h: usize, w: usize) -> Vec<i32> {
    debug_assert_eq!(x.len(), c * h * w);
    let (h2, w2) = (2 * h, 2 * w);
    let mut out = vec![0i32; c * h2 * w2];
    for ch in 0..c {
        for y in 0..h2 {
            let src = &x[(ch * h + y / 2) * w..(ch * h + y / 2 + 1) * w];
            let dst = &mut out[(ch * h2 + y) * w2..(ch * h2 + y + 1) * w2];
            for (xx, d) in dst.iter_mut().enumerate() {
                *d = src[xx / 2];
            }
        }
    }
    out
}

/// 2×2 average pooling with stride 2: `[c × h × w]` → `[c × h/2 × w/2]` (a trailing
/// odd row or column is dropped, as PyTorch's `avg_pool2d` does). The sum of four
/// `i32` fits `i64`; the mean is rounded half up.
pub fn avg_pool2(x: &[i32], c: usize, h: usize, w: usize) -> Vec<i32> {
    debug_assert_eq!(x.len(), c * h * w);
    let (ho, wo) = (h / 2, w / 2);
    let mut out = vec![0i32; c * ho * wo];
    for ch in 0..c {
        for y in 0..ho {
            for xx in 0..wo {
                let at =
                    |dy: usize, dx: usize| i64::from(x[(ch * h + 2 * y + dy) * w + 2 * xx + dx]);
                let s = at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1);
                out[(ch * ho + y) * wo + xx] = round_shift(s, 2) as i32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_then_pool_is_identity() {
        let x: Vec<i32> = (0..2 * 3 * 5).map(|i| i * 1001 - 7000).collect();
        let up = upsample_nearest2(&x, 2, 3, 5);
        assert_eq!(up.len(), 2 * 6 * 10);
        assert_eq!(up[0], x[0]);
        assert_eq!(up[11], x[0]); // (0, 1, 1)
        assert_eq!(up[10 + 9], x[4]); // (0, 1, 9)
        assert_eq!(avg_pool2(&up, 2, 6, 10), x);
    }

    #[test]
    fn pool_rounds_half_up() {
        assert_eq!(avg_pool2(&[1, 0, 0, 1], 1, 2, 2), vec![1]); // 0.5 -> 1
        assert_eq!(avg_pool2(&[-1, 0, 0, -1], 1, 2, 2), vec![0]); // -0.5 -> 0
    }
}
