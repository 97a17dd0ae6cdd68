//! Minimal Solidity ABI encoding for the witness.

fn word(v: usize) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&(v as u64).to_be_bytes());
    w
}

fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&word(b.len()));
    out.extend_from_slice(b);
    let pad = (32 - b.len() % 32) % 32;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// `abi.encode(bytes a, bytes b)`: two head words (offsets), then each as
/// length word ‖ data padded to 32 bytes.
pub fn encode_two_bytes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let a_len = 32 + a.len().div_ceil(32) * 32;
    let mut out = Vec::with_capacity(64 + a_len + 32 + b.len() + 32);
    out.extend_from_slice(&word(64));
    out.extend_from_slice(&word(64 + a_len));
    push_bytes(&mut out, a);
    push_bytes(&mut out, b);
    out
}

/// Inverse of [`encode_two_bytes`] (strict: canonical offsets only); `None` if malformed.
pub fn decode_two_bytes(data: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let read_word = |o: usize| -> Option<usize> {
        let w = data.get(o..o.checked_add(32)?)?;
        if w[..24].iter().any(|&x| x != 0) {
            return None;
        }
        usize::try_from(u64::from_be_bytes(w[24..].try_into().ok()?)).ok()
    };
    let read_bytes = |o: usize| -> Option<Vec<u8>> {
        let len = read_word(o)?;
        let start = o.checked_add(32)?;
        Some(data.get(start..start.checked_add(len)?)?.to_vec())
    };
    let a = read_bytes(read_word(0)?)?;
    let b = read_bytes(read_word(32)?)?;
    Some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let e = encode_two_bytes(&[1; 245], &[2; 1792]);
        assert_eq!(e.len(), 64 + 32 + 256 + 32 + 1792);
        assert_eq!(decode_two_bytes(&e), Some((vec![1; 245], vec![2; 1792])));
        assert_eq!(decode_two_bytes(&e[..100]), None);
    }
}
