//! Matrix-vector products over quantized weights.
//!
//! [`scalar`] is the reference: plain loops in the order the format describes.
//! `x86` (AVX2), `avx512` (AVX-512 with VNNI) and `neon` (aarch64) are the
//! optimized twins, chosen at run time from what the CPU has ([`Simd`]), and rows
//! may be split over threads. All of them compute the same exact integer sums (see
//! the overflow bound in [`crate::quant`]), so their outputs are equal bit for bit;
//! the tests in this module and the cross-target golden tests check it.

#[cfg(feature = "std")]
pub mod pool;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod exp512;
#[cfg(target_arch = "x86_64")]
pub mod gemm;
#[cfg(target_arch = "x86_64")]
pub mod gemm256;
#[cfg(target_arch = "x86_64")]
pub mod gemm512;
#[cfg(target_arch = "x86_64")]
pub mod x86;

#[cfg(target_arch = "aarch64")]
pub mod neon;

use crate::quant::{finish_row, QMatrix};

/// A family of kernels. Every family gives the same bits; they differ in speed and
/// in the CPU features they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// The scalar reference kernels (any CPU, the VM).
    Off,
    /// AVX2 (x86_64).
    Avx2,
    /// AVX-512 (F, BW, VL, DQ) with VNNI (`vpdpwssd`, 32 products per instruction) for
    /// matrices whose group size suits it and for attention; AVX2 for the rest
    /// (x86_64).
    Avx512Vnni,
    /// NEON (aarch64).
    Neon,
    /// The widest family this CPU has, chosen at run time.
    Best,
}

impl Simd {
    /// Every concrete family, narrowest first.
    pub const ALL: [Simd; 4] = [Simd::Off, Simd::Avx2, Simd::Avx512Vnni, Simd::Neon];

    /// The concrete families this CPU can run, narrowest first (`Off` always).
    pub fn available() -> impl Iterator<Item = Simd> {
        Simd::ALL.into_iter().filter(|s| s.supported())
    }

    /// Whether this CPU has the family's instructions.
    pub fn supported(self) -> bool {
        match self {
            Simd::Off | Simd::Best => true,
            Simd::Avx2 => has_avx2(),
            Simd::Avx512Vnni => has_avx2() && has_avx512_vnni(),
            Simd::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// The concrete family that runs when `self` is asked for: `Best` is the widest
    /// this CPU has; a family it lacks falls back to the next narrower one.
    pub fn resolve(self) -> Simd {
        match self {
            Simd::Best => Simd::ALL
                .into_iter()
                .rev()
                .find(|s| s.supported())
                .unwrap_or(Simd::Off),
            Simd::Avx512Vnni if !self.supported() => Simd::Avx2.resolve(),
            s if s.supported() => s,
            _ => Simd::Off,
        }
    }

    /// The family's short name (`scalar`, `avx2`, `avx512-vnni`, `neon`, `best`).
    pub const fn name(self) -> &'static str {
        match self {
            Simd::Off => "scalar",
            Simd::Avx2 => "avx2",
            Simd::Avx512Vnni => "avx512-vnni",
            Simd::Neon => "neon",
            Simd::Best => "best",
        }
    }
}

/// How to run the kernels: a choice that never changes the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exec {
    /// Which kernel family to use (resolved against the CPU at run time).
    pub simd: Simd,
    /// Worker threads for large products (`1` = the calling thread only). Ignored
    /// without the `std` feature.
    pub threads: usize,
}

impl Default for Exec {
    fn default() -> Self {
        Exec {
            simd: Simd::Best,
            threads: 1,
        }
    }
}

impl Exec {
    /// Plain scalar code on one thread: the reference every other mode must equal.
    pub const SCALAR: Exec = Exec {
        simd: Simd::Off,
        threads: 1,
    };

    /// The widest kernels this CPU has, on `threads` threads.
    pub const fn best(threads: usize) -> Exec {
        Exec {
            simd: Simd::Best,
            threads,
        }
    }

    /// Which kernel family this mode will use on this CPU.
    pub fn kernel_name(&self) -> &'static str {
        self.simd.resolve().name()
    }
}

/// Whether this CPU has AVX2 (or NEON on aarch64): the SIMD kernels of the
/// attention and the other element-wise paths, which have no wider twin.
pub fn simd_available() -> bool {
    has_avx2() || cfg!(target_arch = "aarch64")
}

fn has_avx2() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    {
        cfg!(target_feature = "avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn has_avx512_vnni() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    {
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vl",
            target_feature = "avx512dq",
            target_feature = "avx512vnni"
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`crate::math::silu_q16`] of every element of `xs`, with the AVX-512 twin of the
/// exponential when `exec` resolves to that family (the same values).
pub fn silu_in_place(exec: Exec, xs: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if exec.simd.resolve() == Simd::Avx512Vnni {
        // Safety: the family is only resolved when the CPU has AVX-512 F, VL and DQ.
        unsafe { exp512::silu_q16_in_place(xs) };
        return;
    }
    let _ = exec;
    for v in xs {
        *v = crate::math::silu_q16(*v);
    }
}

/// Products smaller than this many multiply-accumulates stay on one thread.
pub const PARALLEL_MIN_MACS: usize = 1 << 16;

/// `out = m * x` in Q16, where `x` is the `i16` form of the activations and
/// `shift` its scale exponent (see [`crate::quant::quantize_activations`]).
pub fn matvec(exec: Exec, m: &QMatrix<'_>, x: &[i16], shift: u32, out: &mut [i32]) {
    debug_assert_eq!(x.len(), m.cols as usize);
    debug_assert_eq!(out.len(), m.rows as usize);
    let simd = exec.simd.resolve();
    #[cfg(feature = "std")]
    {
        let macs = m.rows as usize * m.cols as usize;
        if exec.threads > 1 && macs >= PARALLEL_MIN_MACS {
            // Parts of whole blocks of four rows (the AVX2 kernel's unit).
            let per = out.len().div_ceil(exec.threads).div_ceil(4) * 4;
            pool::run_parts(exec.threads, out, per, &|i, part| {
                rows(simd, m, x, shift, i * per, part);
            });
            return;
        }
    }
    rows(simd, m, x, shift, 0, out);
}

/// `out[t·rows + r] = (m · x_t)[r]` in Q16 for the vectors `x_t = xs[t·cols ..
/// (t + 1)·cols]`, each with its scale exponent `shifts[t]`: the same values as one
/// [`matvec`] per vector. On x86_64, blocks of vectors go through the family's GEMM
/// kernel ([`gemm`]: sixteen vectors with AVX-512 VNNI, eight with AVX2; even group
/// sizes), and with AVX-512 blocks of four share each pass over a Q8 row; fewer
/// than four vectors are one product each. With `exec.threads > 1`, blocks of
/// vectors go to threads.
pub fn matmul(exec: Exec, m: &QMatrix<'_>, xs: &[i16], shifts: &[u32], out: &mut [i32]) {
    let (rows, cols) = (m.rows as usize, m.cols as usize);
    let vectors = shifts.len();
    debug_assert_eq!(xs.len(), vectors * cols);
    debug_assert_eq!(out.len(), vectors * rows);
    if vectors < 4 || cols == 0 || rows == 0 {
        // Too few vectors to share a pass: one product each (threads split rows).
        for ((x, o), &shift) in xs
            .chunks(cols.max(1))
            .zip(out.chunks_mut(rows.max(1)))
            .zip(shifts)
        {
            matvec(exec, m, &x[..cols.min(x.len())], shift, o);
        }
        return;
    }
    #[cfg(feature = "std")]
    if exec.threads > 1 && rows * cols * vectors >= PARALLEL_MIN_MACS {
        // Parts of whole blocks of the GEMM kernel's vectors, or of four for
        // fewer vectors.
        let block = gemm_vectors(exec.simd.resolve());
        let unit = if vectors >= 2 * block * exec.threads {
            block
        } else {
            4
        };
        let per = vectors.div_ceil(exec.threads).div_ceil(unit) * unit;
        let one = Exec { threads: 1, ..exec };
        pool::run_parts(exec.threads, out, per * rows, &|i, part| {
            let n = part.len() / rows.max(1);
            let vs = i * per..i * per + n;
            matmul_one_thread(
                one,
                m,
                &xs[vs.start * cols..vs.end * cols],
                &shifts[vs],
                part,
            );
        });
        return;
    }
    matmul_one_thread(Exec { threads: 1, ..exec }, m, xs, shifts, out);
}

/// Vectors per block of the family's GEMM kernel (4 where there is none: the
/// unit the four-vector kernels share).
#[cfg(feature = "std")]
fn gemm_vectors(simd: Simd) -> usize {
    #[cfg(target_arch = "x86_64")]
    match simd {
        Simd::Avx512Vnni => return gemm512::VECTORS,
        Simd::Avx2 => return gemm256::VECTORS,
        _ => {}
    }
    let _ = simd;
    4
}

fn matmul_one_thread(exec: Exec, m: &QMatrix<'_>, xs: &[i16], shifts: &[u32], out: &mut [i32]) {
    let (rows, cols) = (m.rows as usize, m.cols as usize);
    #[cfg(target_arch = "x86_64")]
    let done = matmul_x86_blocks(exec, m, xs, shifts, out);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    for ((x, o), &shift) in xs
        .chunks_exact(cols)
        .zip(out.chunks_exact_mut(rows))
        .zip(shifts)
        .skip(done)
    {
        matvec(exec, m, x, shift, o);
    }
}

/// The leading vectors that share passes over the weights: blocks for the GEMM
/// kernel of the family (AVX-512 VNNI: sixteen vectors, then blocks of four with
/// the four-vector Q8 kernel; AVX2: eight vectors); returns how many vectors it did.
#[cfg(target_arch = "x86_64")]
fn matmul_x86_blocks(
    exec: Exec,
    m: &QMatrix<'_>,
    xs: &[i16],
    shifts: &[u32],
    out: &mut [i32],
) -> usize {
    let (rows, cols) = (m.rows as usize, m.cols as usize);
    match exec.simd.resolve() {
        Simd::Avx512Vnni => {}
        // Safety: `Avx2` is only resolved when the CPU has AVX2.
        Simd::Avx2 => return unsafe { gemm::blocks(gemm256::rows_totals, m, xs, shifts, out) },
        _ => return 0,
    }
    // Blocks of sixteen vectors: the packed GEMM kernel, eight rows at a time.
    // Safety: `Avx512Vnni` is only resolved when the CPU has its features.
    let done = unsafe { gemm::blocks(gemm512::rows_totals, m, xs, shifts, out) };
    if m.qtype != crate::quant::QType::Q8 || !avx512::fits(m) {
        return done;
    }
    // Blocks of four vectors: the four-vector row kernel.
    let blocks = (shifts.len() - done) / 4;
    for r in 0..rows {
        for b in 0..blocks {
            let first = done + 4 * b;
            let block = &xs[first * cols..(first + 4) * cols];
            let x: [&[i16]; 4] = core::array::from_fn(|t| &block[t * cols..(t + 1) * cols]);
            // Safety: `Avx512Vnni` is only resolved when the CPU has its features;
            // `fits` checked the group size; each vector is `cols` long.
            let totals = unsafe { avx512::row_totals_q8_x4(m, r, x) };
            for (t, total) in totals.into_iter().enumerate() {
                let v = first + t;
                out[v * rows + r] = finish_row(total, m.exp, shifts[v]);
            }
        }
    }
    done + 4 * blocks
}

/// Rows `first..first + out.len()` of the product with the (resolved) family `simd`.
fn rows(simd: Simd, m: &QMatrix<'_>, x: &[i16], shift: u32, first: usize, out: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx512Vnni && avx512::fits(m) {
        let q4 = (m.qtype == crate::quant::QType::Q4).then(|| avx512::Q4Activations::new(m, x));
        for (k, o) in out.iter_mut().enumerate() {
            // Safety: `Avx512Vnni` is only resolved when the CPU has AVX-512 F, BW and
            // VNNI and AVX2; `fits` checked the group size; row `first + k` exists;
            // the Q4 activations were made from this matrix and `x`.
            let total = unsafe {
                match &q4 {
                    Some(acts) => avx512::row_total_q4(m, first + k, x, acts),
                    None => avx512::row_total_q8(m, first + k, x),
                }
            };
            *o = finish_row(total, m.exp, shift);
        }
        return;
    }
    let simd = simd != Simd::Off;
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
        // Safety: called only when the resolved family has AVX2, and rows
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
        // Safety: only called when the resolved family has AVX2.
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

    /// Every family this CPU has on one thread, then the best one on three threads
    /// (forced into parts even for small products): all equal the scalar product.
    fn check_all_kernels(m: &QMatrix<'_>, xq: &[i16], shift: u32) -> Result<(), TestCaseError> {
        let mut want = vec![0; m.rows as usize];
        matvec(Exec::SCALAR, m, xq, shift, &mut want);
        for simd in Simd::available() {
            let mut got = vec![0; m.rows as usize];
            matvec(Exec { simd, threads: 1 }, m, xq, shift, &mut got);
            prop_assert_eq!(&got, &want, "kernel {}", simd.name());
            let per = got.len().div_ceil(3);
            got.fill(0);
            for (i, chunk) in got.chunks_mut(per).enumerate() {
                rows(simd, m, xq, shift, i * per, chunk);
            }
            prop_assert_eq!(&got, &want, "kernel {} in three parts", simd.name());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn every_kernel_family_and_threads_equal_scalar(
            q4 in any::<bool>(),
            rows in 1u32..80,
            cols in 1u32..1100,
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
            check_all_kernels(&m, &xq, shift)?;
        }
    }

    /// The kernel families this CPU ran in these tests, printed so that a run on a
    /// machine without AVX-512 says so instead of passing silently.
    #[cfg(feature = "std")]
    #[test]
    fn the_kernel_families_that_ran_are_named() {
        let ran: Vec<&str> = Simd::available().map(Simd::name).collect();
        std::println!("matvec kernel families run on this CPU: {}", ran.join(", "));
        assert_eq!(ran[0], "scalar");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            ran.contains(&"avx512-vnni"),
            std::is_x86_feature_detected!("avx512vnni")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx2"),
            "the AVX-512 family must run wherever the CPU has it"
        );
        assert_eq!(Exec::default().kernel_name(), ran[ran.len() - 1]);
    }

    /// The largest products the format allows (|w| = 128 or 8, |x| = 32767, groups
    /// of 256, mantissas near 2^24, 2^16 columns): every family stays exact.
    #[test]
    fn extreme_values_stay_exact_in_every_family() {
        for (qtype, byte) in [(QType::Q8, 0x80u8), (QType::Q4, 0x00u8)] {
            let (rows, cols, group) = (5u32, 1u32 << 16, 256u32);
            let groups = (cols / group) as usize;
            let scales: Vec<u8> = (0..rows as usize * groups)
                .flat_map(|i| {
                    let m = (1 << 24) - 1 - (i as i32 % 3);
                    if i % 2 == 0 { m } else { -m }.to_le_bytes()
                })
                .collect();
            let qs = vec![byte; rows as usize * qtype.row_bytes(cols)];
            let m = QMatrix {
                qtype,
                rows,
                cols,
                group,
                exp: 40,
                scales: &scales,
                qs: &qs,
            };
            let xq: Vec<i16> = (0..cols)
                .map(|i| if i % 7 == 0 { 32767 } else { -32767 })
                .collect();
            check_all_kernels(&m, &xq, 0).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// `matmul` over several vectors (blocks of 16 and 4 and the rest) equals one
        /// scalar `matvec` per vector, for every kernel family, Q8 and Q4.
        #[test]
        fn matmul_equals_one_matvec_per_vector(
            q4 in any::<bool>(),
            rows in 1u32..40,
            cols in 1u32..700,
            group_pow in 1u32..=8,
            vectors in 1usize..40,
            seed in any::<u64>(),
        ) {
            let qtype = if q4 { QType::Q4 } else { QType::Q8 };
            let group = 1u32 << group_pow;
            let (scales, qs) = random_matrix(qtype, rows, cols, group, seed);
            let m = QMatrix { qtype, rows, cols, group, exp: 28, scales: &scales, qs: &qs };
            let mut s = seed | 3;
            let x: Vec<i32> = (0..cols as usize * vectors).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s as i32) >> (s % 24) }).collect();
            // Each vector with its own scale.
            let mut xq = vec![0i16; x.len()];
            let shifts: Vec<u32> = x
                .chunks_exact(cols as usize)
                .zip(xq.chunks_exact_mut(cols as usize))
                .map(|(xv, q)| quantize_activations(xv, q))
                .collect();
            let mut want = vec![0; rows as usize * vectors];
            for ((xv, o), &shift) in xq.chunks_exact(cols as usize).zip(want.chunks_exact_mut(rows as usize)).zip(&shifts) {
                matvec(Exec::SCALAR, &m, xv, shift, o);
            }
            for simd in Simd::available() {
                for threads in [1, 2] {
                    let mut got = vec![0; want.len()];
                    matmul(Exec { simd, threads }, &m, &xq, &shifts, &mut got);
                    prop_assert_eq!(&got, &want, "kernel {} x{}", simd.name(), threads);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// `silu_in_place` equals the scalar SiLU in every family, extremes included.
        #[test]
        fn silu_in_place_equals_scalar(
            raw in proptest::collection::vec(any::<i32>(), 0..40),
            spread in 0u32..31,
        ) {
            let mut xs: Vec<i32> = raw.iter().map(|&v| v >> spread).collect();
            xs.extend([i32::MIN, i32::MAX, 0, -1, 1]);
            let want: Vec<i32> = xs.iter().map(|&v| crate::math::silu_q16(v)).collect();
            for simd in Simd::available() {
                let mut got = xs.clone();
                silu_in_place(Exec { simd, threads: 1 }, &mut got);
                prop_assert_eq!(&got, &want, "kernel {}", simd.name());
            }
        }
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
            for simd in Simd::available() {
                for threads in [2, 3] {
                    let mut got = vec![0; rows as usize];
                    matvec(Exec { simd, threads }, &m, &xq, shift, &mut got);
                    assert_eq!(got, want, "kernel {} on {threads} threads", simd.name());
                }
            }
        }
    }
}
