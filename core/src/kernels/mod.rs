//! Matrix-vector products over quantized weights.
//!
//! [`scalar`] is the reference: plain loops in the order the format describes.
//! `x86` (AVX2) and `neon` (aarch64) are the optimized twins, and rows may be
//! split over threads. All of them compute the same exact integer sums (see the
//! overflow bound in [`crate::quant`]), so their outputs are equal bit for bit; the
//! tests in this module and the cross-target golden tests check it.

#[cfg(feature = "std")]
pub mod pool;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod x86;

#[cfg(target_arch = "aarch64")]
pub mod neon;

use crate::quant::{finish_row, QMatrix};

/// How to run the kernels: a choice that never changes the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exec {
    /// Use the SIMD kernels when the CPU has them.
    pub simd: bool,
    /// Worker threads for large products (`1` = the calling thread only). Ignored
    /// without the `std` feature.
    pub threads: usize,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            simd: true,
            threads: 1,
        }
    }
}

impl Exec {
    /// Plain scalar code on one thread: the reference every other mode must equal.
    pub const SCALAR: Exec = Exec {
        simd: false,
        threads: 1,
    };

    /// Which row kernel this mode will use on this CPU.
    pub fn kernel_name(&self) -> &'static str {
        if self.simd && simd_available() {
            if cfg!(target_arch = "x86_64") {
                "avx2"
            } else {
                "neon"
            }
        } else {
            "scalar"
        }
    }
}

/// Whether this CPU has the SIMD kernels' instruction set.
pub fn simd_available() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    {
        cfg!(target_feature = "avx2")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Products smaller than this many multiply-accumulates stay on one thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 16;

/// `out = m * x` in Q16, where `x` is the `i16` form of the activations and
/// `shift` its scale exponent (see [`crate::quant::quantize_activations`]).
pub fn matvec(exec: Exec, m: &QMatrix<'_>, x: &[i16], shift: u32, out: &mut [i32]) {
    debug_assert_eq!(x.len(), m.cols as usize);
    debug_assert_eq!(out.len(), m.rows as usize);
    let simd = exec.simd && simd_available();
    #[cfg(feature = "std")]
    {
        let macs = m.rows as usize * m.cols as usize;
        if exec.threads > 1 && macs >= PARALLEL_MIN_MACS {
            // Parts of whole blocks of four rows (the AVX2 kernel's unit).
            let per = out.len().div_ceil(exec.threads).div_ceil(4) * 4;
            let chunks: std::vec::Vec<std::sync::Mutex<&mut [i32]>> =
                out.chunks_mut(per).map(std::sync::Mutex::new).collect();
            pool::run(exec.threads, chunks.len(), &|i| {
                let mut chunk = chunks[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                rows(simd, m, x, shift, i * per, &mut chunk);
            });
            return;
        }
    }
    rows(simd, m, x, shift, 0, out);
}

/// Rows `first..first + out.len()` of the product.
fn rows(simd: bool, m: &QMatrix<'_>, x: &[i16], shift: u32, first: usize, out: &mut [i32]) {
    let done = if simd {
        rows_by_four(m, x, shift, first, out)
    } else {
        0
    };
    for (k, o) in out.iter_mut().enumerate().skip(done) {
        let r = first + k;
        let total = if simd {
            simd_row_total(m, r, x)
        } else {
            scalar::row_total(m, r, x)
        };
        *o = finish_row(total, m.exp, shift);
    }
}

/// The leading rows in blocks of four with the four-row AVX2 kernel; returns how
/// many rows it wrote (only called when AVX2 is present).
#[cfg(target_arch = "x86_64")]
fn rows_by_four(m: &QMatrix<'_>, x: &[i16], shift: u32, first: usize, out: &mut [i32]) -> usize {
    let mut i = 0;
    while i + 4 <= out.len() {
        // Safety: called only when `simd_available()` saw AVX2, and rows
        // first + i .. first + i + 4 are inside the matrix.
        let totals = unsafe { x86::rows4_total(m, first + i, x) };
        for (o, t) in out[i..i + 4].iter_mut().zip(totals) {
            *o = finish_row(t, m.exp, shift);
        }
        i += 4;
    }
    i
}

#[cfg(not(target_arch = "x86_64"))]
fn rows_by_four(_: &QMatrix<'_>, _: &[i16], _: u32, _: usize, _: &mut [i32]) -> usize {
    0
}

#[inline]
fn simd_row_total(m: &QMatrix<'_>, r: usize, x: &[i16]) -> i64 {
    #[cfg(target_arch = "x86_64")]
    {
        // Safety: `simd` is only true when `simd_available()` saw AVX2.
        unsafe { x86::row_total(m, r, x) }
    }
    #[cfg(target_arch = "aarch64")]
    {
        neon::row_total(m, r, x)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        scalar::row_total(m, r, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{quantize_activations, QType};
    use alloc::vec;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// A random matrix in the file layout, from a seed.
    fn random_matrix(
        qtype: QType,
        rows: u32,
        cols: u32,
        group: u32,
        seed: u64,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let groups = cols.div_ceil(group) as usize;
        let scales: Vec<u8> = (0..rows as usize * groups)
            .flat_map(|_| ((next() % (1 << 25)) as i32 - (1 << 24) + 1).to_le_bytes())
            .collect();
        let qs: Vec<u8> = (0..rows as usize * qtype.row_bytes(cols))
            .map(|_| next() as u8)
            .collect();
        (scales, qs)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn simd_and_threads_equal_scalar(
            q4 in any::<bool>(),
            rows in 1u32..80,
            cols in 1u32..700,
            group_pow in 1u32..=8,
            exp in 0i32..40,
            seed in any::<u64>(),
        ) {
            let qtype = if q4 { QType::Q4 } else { QType::Q8 };
            let group = 1u32 << group_pow;
            let (scales, qs) = random_matrix(qtype, rows, cols, group, seed);
            let m = QMatrix { qtype, rows, cols, group, exp, scales: &scales, qs: &qs };
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let x: Vec<i32> = (0..cols).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s as i32) >> (s % 24) }).collect();
            let mut xq = vec![0i16; cols as usize];
            let shift = quantize_activations(&x, &mut xq);
            let mut want = vec![0; rows as usize];
            matvec(Exec::SCALAR, &m, &xq, shift, &mut want);
            for exec in [Exec { simd: true, threads: 1 }, Exec { simd: true, threads: 3 }, Exec { simd: false, threads: 2 }] {
                let mut got = vec![0; rows as usize];
                // Force the threaded path even for small products.
                if exec.threads > 1 {
                    let per = got.len().div_ceil(exec.threads);
                    for (i, chunk) in got.chunks_mut(per).enumerate() {
                        rows_for_test(exec.simd && simd_available(), &m, &xq, shift, i * per, chunk);
                    }
                } else {
                    matvec(exec, &m, &xq, shift, &mut got);
                }
                prop_assert_eq!(&got, &want);
            }
        }
    }

    fn rows_for_test(
        simd: bool,
        m: &QMatrix<'_>,
        x: &[i16],
        shift: u32,
        first: usize,
        out: &mut [i32],
    ) {
        rows(simd, m, x, shift, first, out)
    }

    #[test]
    fn threaded_large_product_equals_scalar() {
        let (rows, cols, group) = (300u32, 512u32, 64u32);
        for qtype in [QType::Q8, QType::Q4] {
            let (scales, qs) = random_matrix(qtype, rows, cols, group, 7);
            let m = QMatrix {
                qtype,
                rows,
                cols,
                group,
                exp: 30,
                scales: &scales,
                qs: &qs,
            };
            let x: Vec<i32> = (0..cols as i32)
                .map(|i| (i * 7919) % 200_000 - 100_000)
                .collect();
            let mut xq = vec![0i16; cols as usize];
            let shift = quantize_activations(&x, &mut xq);
            let mut want = vec![0; rows as usize];
            matvec(Exec::SCALAR, &m, &xq, shift, &mut want);
            for threads in [2, 3] {
                let mut got = vec![0; rows as usize];
                matvec(
                    Exec {
                        simd: true,
                        threads,
                    },
                    &m,
                    &xq,
                    shift,
                    &mut got,
                );
                assert_eq!(got, want);
            }
        }
    }
}
