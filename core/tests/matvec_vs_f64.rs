//! The quantized matrix-vector product against `f64` on the same quantized
//! operands: exact up to the final rounding to Q16.
#![allow(clippy::float_arithmetic)]

use oracle_core::kernels::{matvec, Exec};
use oracle_core::quant::{mantissa, quantize_activations, QMatrix, QType};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// At most half a Q16 unit (plus f64's own error), for Q8 and Q4.
    #[test]
    fn matvec_matches_f64_on_the_quantized_operands(
        q4 in any::<bool>(),
        rows in 1u32..16,
        cols in 1u32..300,
        exp in 24i32..34,
        seed in any::<u64>(),
    ) {
        let qtype = if q4 { QType::Q4 } else { QType::Q8 };
        let group = 32u32;
        let mut s = seed | 1;
        let mut next = move || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let groups = cols.div_ceil(group) as usize;
        let scales: Vec<u8> = (0..rows as usize * groups)
            .flat_map(|_| ((next() % (1 << 25)) as i32 - (1 << 24) + 1).to_le_bytes())
            .collect();
        let qs: Vec<u8> = (0..rows as usize * qtype.row_bytes(cols)).map(|_| next() as u8).collect();
        let m = QMatrix { qtype, rows, cols, group, exp, scales: &scales, qs: &qs };
        let x: Vec<i32> = (0..cols).map(|_| (next() as i32) >> 8).collect();
        let mut xq = vec![0i16; cols as usize];
        let shift = quantize_activations(&x, &mut xq);
        let mut out = vec![0; rows as usize];
        matvec(Exec::SCALAR, &m, &xq, shift, &mut out);
        for (r, &got) in out.iter().enumerate() {
            let mut want = 0f64;
            for (j, &xv) in xq.iter().enumerate() {
                let w = f64::from(m.value(m.row_values(r), j)) * f64::from(mantissa(m.row_scales(r), j / group as usize));
                want += w * f64::from(xv);
            }
            let want = want * 2f64.powi(shift as i32 - exp);
            if want.abs() < 2e9 {
                prop_assert!((f64::from(got) - want).abs() <= 0.5 + want.abs() * 1e-12, "row {r}: {got} vs {want}");
            }
        }
    }
}
