//! Crafted PyTorch zip checkpoints (`pth/`): a minimal stored-zip writer and
//! hand-written pickles.

use super::Hostile;

/// CRC-32 (IEEE), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A zip of stored (uncompressed) entries; `size_lie` replaces the declared
/// uncompressed size of every entry when given.
fn zip(entries: &[(&str, &[u8])], size_lie: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let at = out.len() as u32;
        let crc = crc32(data);
        let size = data.len() as u32;
        let usize_field = size_lie.unwrap_or(size);
        let fields = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&usize_field.to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if central {
                h.extend_from_slice(&[0u8; 6]); // comment, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&at.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend_from_slice(&fields(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend_from_slice(&fields(0x0201_4b50, true));
    }
    let cd_at = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    let n = (entries.len() as u16).to_le_bytes();
    out.extend_from_slice(&n);
    out.extend_from_slice(&n);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `torch.save` zip holding `pkl` and the storages `(key, bytes)`.
fn pth(pkl: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let names: Vec<String> = storages
        .iter()
        .map(|(k, _)| format!("archive/data/{k}"))
        .collect();
    let mut entries: Vec<(&str, &[u8])> =
        vec![("archive/data.pkl", pkl), ("archive/byteorder", b"little")];
    for (name, (_, data)) in names.iter().zip(storages) {
        entries.push((name, data));
    }
    zip(&entries, None)
}

/// Pickle text helpers (protocol 2).
fn string(s: &str) -> Vec<u8> {
    let mut b = vec![b'X'];
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s.as_bytes());
    b
}

/// `OrderedDict()` pushed.
const ODICT: &[u8] = b"ccollections\nOrderedDict\n)R";
/// `_rebuild_tensor_v2` pushed.
const REBUILD: &[u8] = b"ctorch._utils\n_rebuild_tensor_v2\n";

/// `('storage', FloatStorage, key, 'cpu', numel)` as a persistent id.
fn pers_id(key: &str, numel: u8) -> Vec<u8> {
    let mut b = b"(".to_vec();
    b.extend(string("storage"));
    b.extend_from_slice(b"ctorch\nFloatStorage\n");
    b.extend(string(key));
    b.extend(string("cpu"));
    b.extend_from_slice(&[b'K', numel]);
    b.extend_from_slice(b"tQ");
    b
}

/// The pth files.
pub fn files() -> Vec<Hostile> {
    let mut out = Vec::new();
    // {'w': _rebuild_tensor_v2(storage of 1 float, 0, (2^32,), (0,), False, {})}
    let mut p = b"\x80\x02".to_vec();
    p.extend_from_slice(ODICT);
    p.extend(string("w"));
    p.extend_from_slice(REBUILD);
    p.push(b'(');
    p.extend(pers_id("0", 1));
    p.extend_from_slice(b"K\x00");
    p.extend_from_slice(b"\x8a\x05\x00\x00\x00\x00\x01\x85"); // (2^32,)
    p.extend_from_slice(b"K\x00\x85"); // (0,)
    p.push(0x89);
    p.extend_from_slice(ODICT);
    p.extend_from_slice(b"tRs.");
    out.push(Hostile::new(
        "pth/stride-zero-view.pth",
        "a stride-0 view of 2^32 elements of a one-element storage: 16 GiB gathered",
        pth(&p, &[("0", 1f32.to_le_bytes().to_vec())]),
    ));
    // l = []; then 40 times: memo0 = (memo0, memo0).
    let mut p = b"\x80\x02]q\x00".to_vec();
    for _ in 0..40 {
        p.extend_from_slice(b"h\x00h\x00\x86q\x00");
    }
    p.push(b'.');
    out.push(Hostile::new(
        "pth/memo-doubling.pth",
        "a 300-byte pickle doubling one tuple through the memo 40 times: a deep clone per memo read made it 2^40 values",
        pth(&p, &[]),
    ));
    // None wrapped in 10^6 one-tuples.
    let mut p = b"\x80\x02N".to_vec();
    p.extend(std::iter::repeat_n(0x85u8, 1_000_000));
    p.push(b'.');
    out.push(Hostile::new(
        "pth/deep-tuple.pth",
        "a tuple nested 10^6 deep: its recursive drop overflowed the stack (now refused past 32 bytes of values per pickle byte, the part built freed without recursion)",
        pth(&p, &[]),
    ));
    // 12,000 tensors, each a full view of the same 64 KiB storage.
    let numel = 16_384u32;
    let mut p = b"\x80\x02".to_vec();
    p.extend_from_slice(ODICT);
    let mut pid = pers_id("0", 0);
    let k = pid.len() - 4;
    pid.splice(k..k + 2, [b'M', 0x00, 0x40]);
    for i in 0..12_000 {
        p.extend(string(&format!("t{i}")));
        p.extend_from_slice(REBUILD);
        p.push(b'(');
        if i == 0 {
            p.extend_from_slice(&pid);
            p.extend_from_slice(b"q\x01");
        } else {
            p.extend_from_slice(b"h\x01");
        }
        p.extend_from_slice(b"K\x00");
        p.extend_from_slice(b"M\x00\x40\x85");
        p.extend_from_slice(b"K\x01\x85");
        p.push(0x89);
        p.extend_from_slice(b"tRs");
    }
    p.push(b'.');
    let storage = vec![0u8; numel as usize * 4];
    out.push(Hostile::new(
        "pth/storage-aliasing.pth",
        "12,000 tensors viewing one 64 KiB storage: 750 MiB gathered from a 0.5 MB file",
        pth(&p, &[("0", storage)]),
    ));
    out.push(Hostile::new(
        "pth/entry-size-lie.pth",
        "zip entries declaring 4 GiB each",
        zip(&[("archive/data.pkl", b"\x80\x02}.")], Some(u32::MAX)),
    ));
    out
}
