//! ggml's block formats beyond the 32-element ones: Q5_0/Q5_1, the k-quants
//! (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K: super-blocks of 256 with packed sub-block
//! scales) and the non-linear IQ4_NL / IQ4_XS, each decoded to `f32` exactly as
//! ggml's reference dequantizers (and the `gguf` Python package) compute them: the
//! same products in `f32`, in the same order, so the values agree bit for bit.
//!
//! Every function takes whole blocks (`data.len()` a multiple of the block size;
//! a trailing partial block is ignored) and appends to `out`.

use super::reader::f16_to_f32;

/// Elements per k-quant super-block.
pub const QK_K: usize = 256;

/// The 16 levels of IQ4_NL / IQ4_XS.
const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Q5_0: blocks of 32 (22 bytes): `f16 d`, `u32` high bits, 16 bytes of nibbles;
/// value `d * (q - 16)`.
pub fn q5_0(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(22) {
        let d = f16_at(b, 0);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..32 {
            let q = five_bit(&b[6..22], qh, j);
            out.push(d * f32::from(q as i8 - 16));
        }
    }
}

/// Q5_1: blocks of 32 (24 bytes): `f16 d`, `f16 m`, `u32` high bits, 16 bytes of
/// nibbles; value `d * q + m`.
pub fn q5_1(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(24) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        for j in 0..32 {
            out.push(d * f32::from(five_bit(&b[8..24], qh, j)) + m);
        }
    }
}

/// Element `j` of a Q5 block: its nibble (low nibbles first) and bit `j` of `qh`.
fn five_bit(qs: &[u8], qh: u32, j: usize) -> u8 {
    let nibble = if j < 16 {
        qs[j] & 0x0f
    } else {
        qs[j - 16] >> 4
    };
    nibble | (((qh >> j) & 1) as u8) << 4
}

/// Q2_K (84 bytes): 16 scale bytes (low nibble scale, high nibble min), 64 bytes of
/// 2-bit quants, `f16 d`, `f16 dmin`; value `d*sc * q - dmin*m` per 16 elements.
pub fn q2_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(84) {
        let (scales, qs) = (&b[..16], &b[16..80]);
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for e in 0..QK_K {
            let s = scales[e / 16];
            let dl = d * f32::from(s & 0x0f);
            let ml = dmin * f32::from(s >> 4);
            out.push(dl * f32::from(two_bit(qs, e)) - ml);
        }
    }
}

/// Element `e` of 2-bit quants packed as ggml's Q2_K/Q3_K: two chunks of 32 bytes,
/// each holding four groups of 32 at shifts 0, 2, 4, 6.
fn two_bit(qs: &[u8], e: usize) -> u8 {
    let (chunk, group, l) = (e / 128, (e % 128) / 32, e % 32);
    (qs[chunk * 32 + l] >> (2 * group)) & 3
}

/// Q3_K (110 bytes): 32 bytes of high bits, 64 bytes of 2-bit quants, 12 bytes of
/// 6-bit scales, `f16 d`; value `d * (sc - 32) * (q - 4·!hbit)` per 16 elements.
pub fn q3_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(110) {
        let (hmask, qs, packed) = (&b[..32], &b[32..96], &b[96..108]);
        let d = f16_at(b, 108);
        for e in 0..QK_K {
            let i = e / 16;
            let low = if i < 8 {
                packed[i] & 0x0f
            } else {
                packed[i - 8] >> 4
            };
            let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
            let scale = (low | high << 4) as i8 - 32;
            let dl = d * f32::from(scale);
            let hbit = (hmask[e % 32] >> (e / 32)) & 1;
            let q = two_bit(qs, e) as i8 - if hbit == 0 { 4 } else { 0 };
            out.push(dl * f32::from(q));
        }
    }
}

/// The eight 6-bit (scale, min) pairs of Q4_K/Q5_K, packed in 12 bytes.
fn scale_min_k4(packed: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 0x3f, packed[j + 4] & 0x3f)
    } else {
        let (d, m, md) = (packed[j - 4], packed[j], packed[j + 4]);
        (
            (md & 0x0f) | ((d >> 2) & 0x30),
            (md >> 4) | ((m >> 2) & 0x30),
        )
    }
}

/// Q4_K (144 bytes): `f16 d`, `f16 dmin`, 12 bytes of scales/mins, 128 bytes of
/// nibbles; value `d*sc * q - dmin*m` per 32 elements.
pub fn q4_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(144) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (packed, qs) = (&b[4..16], &b[16..144]);
        for e in 0..QK_K {
            let (sub, l) = (e / 32, e % 32);
            let (sc, m) = scale_min_k4(packed, sub);
            let q = (qs[(sub / 2) * 32 + l] >> (4 * (sub % 2))) & 0x0f;
            out.push(d * f32::from(sc) * f32::from(q) - dmin * f32::from(m));
        }
    }
}

/// Q5_K (176 bytes): `f16 d`, `f16 dmin`, 12 bytes of scales/mins, 32 bytes of high
/// bits, 128 bytes of nibbles; value `d*sc * q - dmin*m` per 32 elements.
pub fn q5_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(176) {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (packed, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
        for e in 0..QK_K {
            let (sub, l) = (e / 32, e % 32);
            let (sc, m) = scale_min_k4(packed, sub);
            let low = (qs[(sub / 2) * 32 + l] >> (4 * (sub % 2))) & 0x0f;
            let q = low | ((qh[l] >> sub) & 1) << 4;
            out.push(d * f32::from(sc) * f32::from(q) - dmin * f32::from(m));
        }
    }
}

/// Q6_K (210 bytes): 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16
/// `i8` scales, `f16 d`; value `d*sc * (q - 32)` per 16 elements.
pub fn q6_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(210) {
        let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
        let d = f16_at(b, 208);
        for e in 0..QK_K {
            let (half, group, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = (ql[half * 64 + (group % 2) * 32 + l] >> (4 * (group / 2))) & 0x0f;
            let high = (qh[half * 32 + l] >> (2 * group)) & 3;
            let q = (low | high << 4) as i8 - 32;
            let dl = d * f32::from(scales[e / 16] as i8);
            out.push(dl * f32::from(q));
        }
    }
}

/// Q8_K (292 bytes): `f32 d`, 256 `i8` quants, 16 `i16` group sums (not needed to
/// decode); value `d * q`.
pub fn q8_k(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(292) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        out.extend(b[4..260].iter().map(|&q| d * f32::from(q as i8)));
    }
}

/// IQ4_NL: blocks of 32 (18 bytes): `f16 d`, 16 bytes of nibbles (low nibbles
/// first) indexing the non-linear levels; value `d * level`.
pub fn iq4_nl(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(18) {
        let d = f16_at(b, 0);
        let qs = &b[2..18];
        out.extend(
            qs.iter()
                .map(|&q| d * f32::from(IQ4_LEVELS[usize::from(q & 0x0f)])),
        );
        out.extend(
            qs.iter()
                .map(|&q| d * f32::from(IQ4_LEVELS[usize::from(q >> 4)])),
        );
    }
}

/// IQ4_XS (136 bytes): `f16 d`, `u16` high scale bits, 4 bytes of low scale
/// nibbles, 128 bytes of level nibbles; value `d*(sc - 32) * level` per 32.
pub fn iq4_xs(data: &[u8], out: &mut Vec<f32>) {
    for b in data.chunks_exact(136) {
        let d = f16_at(b, 0);
        let high = u16::from_le_bytes([b[2], b[3]]);
        let (low, qs) = (&b[4..8], &b[8..136]);
        for sub in 0..8 {
            let l = (low[sub / 2] >> (4 * (sub % 2))) & 0x0f;
            let h = ((high >> (2 * sub)) & 3) as u8;
            let dl = d * f32::from((l | h << 4) as i8 - 32);
            let block = &qs[sub * 16..sub * 16 + 16];
            for &q in block {
                out.push(dl * f32::from(IQ4_LEVELS[usize::from(q & 0x0f)]));
            }
            for &q in block {
                out.push(dl * f32::from(IQ4_LEVELS[usize::from(q >> 4)]));
            }
        }
    }
}
