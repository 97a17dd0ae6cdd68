//! A deterministic PNG encoder for the pipelines' output images.
//!
//! The output bytes of an image request are what gets hashed and posted on chain,
//! so they must not depend on a compression library's version or settings. This
//! encoder writes the simplest valid PNG: one `IHDR`, one `IDAT` holding a zlib
//! stream of *stored* (uncompressed) deflate blocks of at most 65535 bytes, filter
//! type 0 on every row, and `IEND`; CRC-32 and Adler-32 computed here. A
//! 28×28 gray image is 872 bytes, a 64×64 RGB one about 12.5 KB.

use alloc::vec::Vec;

/// Pixel layout of the raw bytes given to [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorType {
    /// One byte per pixel (PNG color type 0).
    Gray,
    /// Three bytes per pixel, R G B (PNG color type 2).
    Rgb,
}

impl ColorType {
    /// Bytes per pixel.
    pub const fn channels(self) -> usize {
        match self {
            ColorType::Gray => 1,
            ColorType::Rgb => 3,
        }
    }
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[n] = c;
        n += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (ISO 3309, as PNG uses) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Encode `pixels` (`height` rows of `width · channels` bytes) as PNG. Returns
/// `None` when the length does not match the shape or a side is zero or above
/// `2^24`.
pub fn encode(pixels: &[u8], width: u32, height: u32, color: ColorType) -> Option<Vec<u8>> {
    let max = 1 << 24;
    if width == 0 || height == 0 || width > max || height > max {
        return None;
    }
    let row = (width as usize).checked_mul(color.channels())?;
    if pixels.len() != row.checked_mul(height as usize)? {
        return None;
    }
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for r in pixels.chunks_exact(row) {
        raw.push(0); // filter: none
        raw.extend_from_slice(r);
    }
    let mut z = Vec::with_capacity(raw.len() + raw.len() / 65535 * 5 + 11);
    z.extend_from_slice(&[0x78, 0x01]); // zlib: deflate, 32K window, no dictionary
    let blocks = raw.len().div_ceil(65535).max(1);
    for (i, block) in raw.chunks(65535).enumerate() {
        z.push(u8::from(i + 1 == blocks)); // BFINAL, BTYPE = 00 (stored)
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = Vec::with_capacity(z.len() + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&width.to_be_bytes());
    ihdr[4..8].copy_from_slice(&height.to_be_bytes());
    ihdr[8] = 8; // bit depth
    ihdr[9] = match color {
        ColorType::Gray => 0,
        ColorType::Rgb => 2,
    };
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn sizes_and_shape_checks() {
        let png = encode(&[0u8; 28 * 28], 28, 28, ColorType::Gray).unwrap();
        assert_eq!(png.len(), 8 + 25 + (12 + 2 + 5 + 28 * 29 + 4) + 12);
        assert!(encode(&[0u8; 10], 3, 3, ColorType::Gray).is_none());
        assert!(encode(&[], 0, 0, ColorType::Rgb).is_none());
        // More than one stored block.
        let big = encode(&alloc::vec![7u8; 200 * 200 * 3], 200, 200, ColorType::Rgb).unwrap();
        assert_eq!(&big[1..4], b"PNG");
    }
}
