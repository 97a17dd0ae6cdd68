//! The three checkpoint formats of stories260K import to the same weights; the
//! vocabularies agree with llama2.c's; GGUF quantized types dequantize as ggml does.

use std::path::{Path, PathBuf};

use oracle_quant::checkpoint::{self, gguf, hf, llama2c, tokenizer, CheckpointError, Format};
use oracle_quant::float_model::{FloatLayer, FloatModel};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/models")
}

fn llama2c_model() -> FloatModel {
    let root = fixtures();
    checkpoint::load(
        &root.join("stories260K/stories260K.bin"),
        Some(&root.join("stories260K/tok512.bin")),
    )
    .unwrap()
}

/// Asserts two models have bit-identical weights (config and tokenizer aside).
fn assert_same_weights(a: &FloatModel, b: &FloatModel) {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.token_embedding), bits(&b.token_embedding));
    assert_eq!(a.layers.len(), b.layers.len());
    for (i, (la, lb)) in a.layers.iter().zip(&b.layers).enumerate() {
        for (name, x, y) in [
            ("rms_att", &la.rms_att, &lb.rms_att),
            ("wq", &la.wq, &lb.wq),
            ("wk", &la.wk, &lb.wk),
            ("wv", &la.wv, &lb.wv),
            ("wo", &la.wo, &lb.wo),
            ("rms_ffn", &la.rms_ffn, &lb.rms_ffn),
            ("w1", &la.w1, &lb.w1),
            ("w2", &la.w2, &lb.w2),
            ("w3", &la.w3, &lb.w3),
        ] {
            assert_eq!(bits(x), bits(y), "layer {i} {name}");
        }
    }
    assert_eq!(bits(&a.rms_final), bits(&b.rms_final));
    assert_eq!(a.wcls.is_some(), b.wcls.is_some());
}

#[test]
fn llama2c_v0_stories260k() {
    let m = llama2c_model();
    let c = &m.config;
    assert_eq!(
        (
            c.dim,
            c.hidden_dim,
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.vocab_size,
            c.seq_len
        ),
        (64, 172, 5, 8, 4, 512, 512)
    );
    assert_eq!((c.norm_eps, c.rope_theta), (1e-5, 10_000.0));
    assert!(m.wcls.is_none(), "stories260K shares its classifier");
    let tok = m.tokenizer.as_ref().unwrap();
    assert_eq!(tok.pieces.len(), 512);
    assert_eq!(tok.max_token_length, 7);
    assert_eq!(tok.pieces[1], b"\n<s>\n");
    assert_eq!(tok.pieces[13], b"<0x0A>");
    // Without --tokenizer a llama2.c model has no vocabulary.
    let bare = checkpoint::load(&fixtures().join("stories260K/stories260K.bin"), None).unwrap();
    assert!(bare.tokenizer.is_none());
    assert_eq!(m.validate(), Ok(()));
    let mut broken = bare.clone();
    broken.layers[4].w2.pop();
    assert_eq!(
        broken.validate(),
        Err("layer 4 w2: 11007 values, expected 11008".into())
    );
}

#[test]
fn llama2c_v0_aidreams260k() {
    let root = fixtures();
    let m = checkpoint::load(
        &root.join("aidreams260K/aidreams260K.bin"),
        Some(&root.join("aidreams260K/tok512.bin")),
    )
    .unwrap();
    let c = &m.config;
    assert_eq!(
        (
            c.dim,
            c.hidden_dim,
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.vocab_size,
            c.seq_len
        ),
        (64, 172, 4, 4, 4, 512, 128)
    );
    assert_eq!(m.tokenizer.unwrap().pieces.len(), 512);
}

#[test]
fn gguf_equals_llama2c() {
    let a = llama2c_model();
    let g = checkpoint::load(
        &fixtures().join("stories260K-gguf/stories260K-f32.gguf"),
        None,
    )
    .unwrap();
    // Meta Q/K layout, as the README says: every weight is bit-identical.
    assert_same_weights(&a, &g);
    // The converter wrote output.weight as a copy of token_embd.weight; the importer
    // folds a bit-identical classifier back into "shared".
    assert!(g.wcls.is_none());
    // The converter wrote llama.context_length = 128 (its default), not the 512 the
    // model was trained with: the only config difference.
    assert_eq!(g.config.seq_len, 128);
    assert_eq!(
        FloatModelConfigSansSeq::from(&g),
        FloatModelConfigSansSeq::from(&a)
    );
    // The embedded vocabulary is tok512 with SentencePiece's own BOS/EOS pieces
    // ("<s>", "</s>") where llama2.c's exporter writes "\n<s>\n" and "\n</s>\n".
    let (ta, tg) = (a.tokenizer.unwrap(), g.tokenizer.unwrap());
    assert_eq!(ta.scores, tg.scores);
    assert_eq!(ta.max_token_length, tg.max_token_length);
    let diffs: Vec<usize> = (0..512).filter(|&i| ta.pieces[i] != tg.pieces[i]).collect();
    assert_eq!(diffs, [1, 2]);
    assert_eq!(tg.pieces[1], b"<s>");
    assert_eq!(tg.pieces[2], b"</s>");
}

#[derive(Debug, PartialEq)]
struct FloatModelConfigSansSeq(usize, usize, usize, usize, usize, usize, u32, u32);

impl From<&FloatModel> for FloatModelConfigSansSeq {
    fn from(m: &FloatModel) -> Self {
        let c = &m.config;
        Self(
            c.dim,
            c.hidden_dim,
            c.n_layers,
            c.n_heads,
            c.n_kv_heads,
            c.vocab_size,
            c.norm_eps.to_bits(),
            c.rope_theta.to_bits(),
        )
    }
}

#[test]
fn gguf_metadata() {
    let bytes = std::fs::read(fixtures().join("stories260K-gguf/stories260K-f32.gguf")).unwrap();
    let f = gguf::GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.version, 3);
    // Version 2 has the same layout (64-bit counts and lengths): accepted.
    let mut v2 = bytes.clone();
    v2[4] = 2;
    let m2 = checkpoint::parse_bytes(&v2, None).unwrap();
    assert_eq!(m2, checkpoint::parse_bytes(&bytes, None).unwrap());
    assert_eq!(f.alignment, 32);
    assert_eq!(f.metadata.len(), 19);
    assert_eq!(f.tensors.len(), 48);
    let q = f.tensor("blk.0.attn_k.weight").unwrap();
    assert_eq!(
        q.ne,
        [64, 32],
        "GGUF dims are reversed: ne[0] is the input dim"
    );
    assert_eq!(q.kind, gguf::GgmlType::F32);
    assert_eq!(
        f.get("llama.rope.dimension_count").and_then(|v| v.as_u64()),
        Some(8)
    );
    assert_eq!(
        f.get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
            .map(|a| a.len()),
        Some(512)
    );
}

#[test]
fn hf_equals_llama2c_after_unpermute() {
    let a = llama2c_model();
    let dir = fixtures().join("stories260K-hf");
    let h = checkpoint::load(&dir, None).unwrap();
    assert_same_weights(&a, &h);
    assert_eq!(h.config, a.config);
    assert!(h.tokenizer.is_none());
    // The file path works as well as the folder, and --tokenizer attaches tok512.
    let h2 = checkpoint::load(
        &dir.join("model.safetensors"),
        Some(&fixtures().join("stories260K/tok512.bin")),
    )
    .unwrap();
    assert_eq!(h2.tokenizer, a.tokenizer);
    // The HF file really is permuted: its raw q_proj differs from llama2.c's wq,
    // and permute_qk maps llama2.c's back onto it.
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let raw = |name: &str| -> Vec<f32> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let q = raw("model.layers.0.self_attn.q_proj.weight");
    let k = raw("model.layers.0.self_attn.k_proj.weight");
    assert_ne!(q, a.layers[0].wq);
    assert_eq!(hf::permute_qk(&a.layers[0].wq, 8, 64), q);
    assert_eq!(hf::permute_qk(&a.layers[0].wk, 4, 64), k);
    assert_eq!(hf::unpermute_qk(&q, 8, 64), a.layers[0].wq);
}

#[test]
fn permutation_round_trips() {
    let w: Vec<f32> = (0..48 * 3).map(|i| i as f32).collect();
    for heads in [1, 2, 3, 4, 6, 12] {
        let p = hf::permute_qk(&w, heads, 3);
        assert_eq!(hf::unpermute_qk(&p, heads, 3), w);
    }
    // One head of size 4: HF rows [0, 2, 1, 3] of the Meta rows.
    let meta: Vec<f32> = vec![0.0, 1.0, 2.0, 3.0];
    assert_eq!(hf::permute_qk(&meta, 1, 1), vec![0.0, 2.0, 1.0, 3.0]);
}

#[test]
fn format_is_detected_from_bytes_not_extension() {
    let root = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "stories260K/stories260K.bin",
            "model.gguf",
            Format::Llama2cV0,
        ),
        (
            "stories260K-gguf/stories260K-f32.gguf",
            "model.bin",
            Format::Gguf,
        ),
        (
            "stories260K-hf/model.safetensors",
            "weights.bin",
            Format::Safetensors,
        ),
    ];
    for (src, name, format) in cases {
        let bytes = std::fs::read(root.join(src)).unwrap();
        assert_eq!(checkpoint::detect(&bytes).unwrap(), format);
        let dst = dir.path().join(name);
        std::fs::write(&dst, &bytes).unwrap();
    }
    std::fs::copy(
        root.join("stories260K-hf/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let a = llama2c_model();
    for (_, name, _) in cases {
        assert_same_weights(&a, &checkpoint::load(&dir.path().join(name), None).unwrap());
    }
    // A tokenizer is not a checkpoint.
    let tok = std::fs::read(root.join("stories260K/tok512.bin")).unwrap();
    assert!(matches!(
        checkpoint::detect(&tok),
        Err(CheckpointError::UnknownFormat(_))
    ));
}

#[test]
fn llama2c_v1_round_trip() {
    let a = llama2c_model();
    let bytes = llama2c::write_v1(&a);
    assert_eq!(checkpoint::detect(&bytes).unwrap(), Format::Llama2cV1);
    let b = llama2c::parse_v1(&bytes).unwrap();
    assert_same_weights(&a, &b);
    assert_eq!(a.config, b.config);
    // An unshared classifier round-trips too.
    let mut u = a.clone();
    u.wcls = Some(a.token_embedding.iter().map(|x| x * 0.5).collect());
    let back = llama2c::parse_v1(&llama2c::write_v1(&u)).unwrap();
    assert_eq!(back.wcls, u.wcls);
    // parse_v1 refuses version 2 (parse_bytes routes it to parse_v2).
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert!(matches!(
        llama2c::parse_v1(&v2),
        Err(CheckpointError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn gguf_vocab_only_file_matches_llama2_tokenizer() {
    let root = fixtures();
    let v = tokenizer::load(&root.join("gguf-vocab/ggml-vocab-llama-spm.gguf")).unwrap();
    let l = tokenizer::load(&root.join("llama2-tokenizer/tokenizer.bin")).unwrap();
    assert_eq!(v.pieces.len(), 32000);
    assert_eq!(l.pieces.len(), 32000);
    assert_eq!(v.max_token_length, 27);
    assert_eq!(l.max_token_length, 27);
    // Same vocabulary: identical scores, identical pieces once '▁' is a space,
    // except BOS/EOS, which llama2.c's exporter writes as "\n<s>\n" / "\n</s>\n".
    assert_eq!(v.scores, l.scores);
    let diffs: Vec<usize> = (0..32000).filter(|&i| v.pieces[i] != l.pieces[i]).collect();
    assert_eq!(diffs, [1, 2]);
    assert_eq!(
        (v.pieces[1].as_slice(), l.pieces[1].as_slice()),
        (&b"<s>"[..], &b"\n<s>\n"[..])
    );
    assert_eq!(
        (v.pieces[2].as_slice(), l.pieces[2].as_slice()),
        (&b"</s>"[..], &b"\n</s>\n"[..])
    );
    assert_eq!(v.pieces[0], b"<unk>");
    assert_eq!(v.pieces[13], b"<0x0A>", "byte tokens stay literal text");
    assert!(v
        .pieces
        .iter()
        .all(|p| !p.windows(3).any(|w| w == "\u{2581}".as_bytes())));
    // A vocabulary-only GGUF has no model in it.
    assert!(checkpoint::load(&root.join("gguf-vocab/ggml-vocab-llama-spm.gguf"), None).is_err());
    // A 32000-token vocabulary does not fit a 512-token model.
    let err = checkpoint::load(
        &root.join("stories260K/stories260K.bin"),
        Some(&root.join("gguf-vocab/ggml-vocab-llama-spm.gguf")),
    )
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Tokenizer(_)), "{err}");
}

#[test]
fn tokenizer_bin_round_trips() {
    let t = tokenizer::load(&fixtures().join("llama2-tokenizer/tokenizer.bin")).unwrap();
    let bytes = tokenizer::write_tokenizer_bin(&t);
    assert_eq!(
        bytes,
        std::fs::read(fixtures().join("llama2-tokenizer/tokenizer.bin")).unwrap()
    );
    assert_eq!(
        tokenizer::parse_tokenizer_bin(&bytes, Some(100))
            .unwrap()
            .pieces
            .len(),
        100
    );
}

// ---- GGUF quantized types -------------------------------------------------------

/// Round-to-nearest-even f32 -> f16 bits (normal range only, enough for scales).
fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    if x == 0.0 {
        return sign;
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    assert!((1..31).contains(&exp), "scale {x} outside f16 normal range");
    let mant = bits & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    let rest = mant & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// A reference quantizer: f32 values to ggml blocks.
type Quantizer = fn(&[f32]) -> Vec<u8>;

/// ggml's quantize_row_q8_0_reference.
fn quantize_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let amax = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend(b.iter().map(|v| (v * id).round() as i8 as u8));
    }
    out
}

/// ggml's quantize_row_q4_0_reference.
fn quantize_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let mut max = 0.0f32;
        for &v in b {
            if v.abs() > max.abs() {
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        for j in 0..16 {
            let q0 = ((b[j] * id + 8.5) as i8).min(15) as u8;
            let q1 = ((b[j + 16] * id + 8.5) as i8).min(15) as u8;
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Rewrites the stories260K GGUF with every 2-D tensor re-encoded by `encode`
/// (returning the ggml type id and the bytes, or `None` to keep f32), keeping the
/// metadata and the tensor order.
fn reencode_gguf(encode: impl Fn(&[u64], &[f32]) -> Option<(u32, Vec<u8>)>) -> Vec<u8> {
    let bytes = std::fs::read(fixtures().join("stories260K-gguf/stories260K-f32.gguf")).unwrap();
    let f = gguf::GgufFile::parse(&bytes).unwrap();
    // The header up to the first tensor info is copied verbatim.
    let mut infos = Vec::new();
    let mut data = Vec::new();
    for t in &f.tensors {
        let v = f.tensor_f32(&bytes, t).unwrap();
        let (ty, enc) = encode(&t.ne, &v).unwrap_or_else(|| (0, f32_bytes(&v)));
        while !data.len().is_multiple_of(32) {
            data.push(0);
        }
        let offset = data.len() as u64;
        data.extend(enc);
        infos.extend((t.name.len() as u64).to_le_bytes());
        infos.extend(t.name.as_bytes());
        infos.extend((t.ne.len() as u32).to_le_bytes());
        for d in &t.ne {
            infos.extend(d.to_le_bytes());
        }
        infos.extend(ty.to_le_bytes());
        infos.extend(offset.to_le_bytes());
    }
    let meta_end = f.infos_offset as usize;
    let mut out = bytes[..meta_end].to_vec();
    out.extend(infos);
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    out.extend(data);
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn gguf_q8_0_and_q4_0_dequantize_like_ggml() {
    let a = llama2c_model();
    let quants: [(u32, Quantizer, f32); 2] = [
        (8, quantize_q8_0, 1.0 / 200.0),
        (2, quantize_q4_0, 1.0 / 7.0),
    ];
    for (ty, quant, tol) in quants {
        // Blocks of 32 along ne[0]: ffn_down (ne[0] = 172) stays f32.
        let bytes = reencode_gguf(|ne, v| {
            (ne.len() == 2 && ne[0].is_multiple_of(32)).then(|| (ty, quant(v)))
        });
        let g = checkpoint::parse_bytes(&bytes, None).unwrap();
        let wq = &g.layers[0].wq;
        let amax = a.layers[0].wq.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (x, y) in a.layers[0].wq.iter().zip(wq) {
            assert!((x - y).abs() <= amax * tol, "type {ty}: {x} vs {y}");
        }
        assert_ne!(&a.layers[0].wq, wq);
        // Block layout: decoding each block by hand gives the same numbers.
        let f = gguf::GgufFile::parse(&bytes).unwrap();
        let t = f.tensor("blk.0.attn_q.weight").unwrap();
        let raw = &bytes[(f.data_offset + t.offset) as usize..];
        let d = f16(u16::from_le_bytes([raw[0], raw[1]]));
        if ty == 8 {
            assert_eq!(wq[5], f32::from(raw[2 + 5] as i8) * d);
        } else {
            assert_eq!(wq[3], f32::from((raw[2 + 3] & 15) as i8 - 8) * d);
            assert_eq!(wq[16 + 3], f32::from((raw[2 + 3] >> 4) as i8 - 8) * d);
        }
    }
    // F16 is exact for values that are f16-representable.
    let bytes = reencode_gguf(|ne, v| {
        let enc = v
            .iter()
            .flat_map(|&x| f32_to_f16(if x.abs() < 1e-4 { 0.0 } else { x }).to_le_bytes());
        (ne.len() == 2).then(|| (1, enc.collect()))
    });
    let g = checkpoint::parse_bytes(&bytes, None).unwrap();
    for (x, y) in a.layers[1].w2.iter().zip(&g.layers[1].w2) {
        assert!((x - y).abs() <= x.abs() / 1024.0 + 1e-4);
    }
}

fn f16(h: u16) -> f32 {
    let e = ((h >> 10) & 31) as i32;
    let m = f32::from(h & 1023);
    let s = if h >> 15 == 1 { -1.0 } else { 1.0 };
    s * (1.0 + m / 1024.0) * 2f32.powi(e - 15)
}

#[test]
fn dequantize_known_blocks() {
    // Q8_0: d = 0.5 (0x3800), q = -16..16 (plus -128 in the last slot).
    let mut b = vec![0x00, 0x38];
    b.extend((0..31).map(|i| (i - 16i8) as u8));
    b.push(0x80);
    let v = gguf::dequantize(gguf::GgmlType::Q8_0, &b).unwrap();
    let mut want: Vec<f32> = (0..31).map(|i| (i as f32 - 16.0) * 0.5).collect();
    want.push(-64.0);
    assert_eq!(v, want);
    // Q4_0: d = 2.0 (0x4000); byte j = j | (15 - j) << 4.
    let mut b = vec![0x00, 0x40];
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let v = gguf::dequantize(gguf::GgmlType::Q4_0, &b).unwrap();
    let want: Vec<f32> = (0..16)
        .map(|j| (j as f32 - 8.0) * 2.0)
        .chain((0..16).map(|j| ((15 - j) as f32 - 8.0) * 2.0))
        .collect();
    assert_eq!(v, want);
    // Q4_1: d = 1.0, m = -0.5.
    let mut b = vec![0x00, 0x3c, 0x00, 0xb8];
    b.extend([0x21u8; 16]);
    let v = gguf::dequantize(gguf::GgmlType::Q4_1, &b).unwrap();
    assert_eq!(&v[..2], &[0.5, 0.5]);
    assert_eq!(&v[16..18], &[1.5, 1.5]);
    // BF16 and F16.
    assert_eq!(
        gguf::dequantize(gguf::GgmlType::BF16, &[0x80, 0x3f]).unwrap(),
        [1.0]
    );
    assert_eq!(
        gguf::dequantize(gguf::GgmlType::F16, &[0x00, 0xc0]).unwrap(),
        [-2.0]
    );
}

/// export.py's `version2_export` + `quantize_q80`: Q8_0 over the flattened tensor.
fn write_v2(m: &FloatModel, group: usize) -> Vec<u8> {
    let c = &m.config;
    let mut out = Vec::new();
    out.extend_from_slice(&0x616b_3432u32.to_le_bytes());
    out.extend_from_slice(&2i32.to_le_bytes());
    for v in [
        c.dim,
        c.hidden_dim,
        c.n_layers,
        c.n_heads,
        c.n_kv_heads,
        c.vocab_size,
        c.seq_len,
    ] {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    }
    out.push(u8::from(m.wcls.is_none()));
    out.extend_from_slice(&(group as i32).to_le_bytes());
    out.resize(256, 0);
    let f32s = |out: &mut Vec<u8>, w: &[f32]| out.extend(w.iter().flat_map(|x| x.to_le_bytes()));
    for l in &m.layers {
        f32s(&mut out, &l.rms_att);
    }
    for l in &m.layers {
        f32s(&mut out, &l.rms_ffn);
    }
    f32s(&mut out, &m.rms_final);
    let q8 = |out: &mut Vec<u8>, w: &[f32]| {
        let mut scales = Vec::new();
        for g in w.chunks(group) {
            let wmax = g.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let scale = wmax / 127.0;
            out.extend(g.iter().map(|v| (v / scale).round() as i8 as u8));
            scales.push(scale);
        }
        f32s(out, &scales);
    };
    q8(&mut out, &m.token_embedding);
    type Pick = fn(&FloatLayer) -> &Vec<f32>;
    let picks: [Pick; 7] = [
        |l| &l.wq,
        |l| &l.wk,
        |l| &l.wv,
        |l| &l.wo,
        |l| &l.w1,
        |l| &l.w2,
        |l| &l.w3,
    ];
    for pick in picks {
        for l in &m.layers {
            q8(&mut out, pick(l));
        }
    }
    if let Some(w) = &m.wcls {
        q8(&mut out, w);
    }
    out
}

#[test]
fn llama2c_v2_q8_0_dequantizes_like_runq() {
    let a = llama2c_model();
    let bytes = write_v2(&a, 64);
    assert_eq!(checkpoint::detect(&bytes).unwrap(), Format::Llama2cV1);
    let b = checkpoint::parse_bytes(&bytes, None).unwrap();
    assert_eq!(a.config, b.config);
    assert_eq!(a.rms_final, b.rms_final);
    assert_eq!(a.layers[3].rms_ffn, b.layers[3].rms_ffn);
    for (x, y) in [
        (&a.token_embedding, &b.token_embedding),
        (&a.layers[2].w2, &b.layers[2].w2),
    ] {
        for (g, h) in x.chunks(64).zip(y.chunks(64)) {
            let scale = g.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for (u, v) in g.iter().zip(h) {
                assert!((u - v).abs() <= scale * 0.5 + 1e-6, "{u} vs {v}");
            }
        }
    }
    // A group size that does not divide a tensor, and truncation, are errors.
    let mut bad = bytes.clone();
    bad[37..41].copy_from_slice(&7i32.to_le_bytes());
    assert!(checkpoint::parse_bytes(&bad, None).is_err());
    for cut in [300, bytes.len() / 2, bytes.len() - 1] {
        assert!(checkpoint::parse_bytes(&bytes[..cut], None).is_err());
    }
}

#[test]
fn hf_sharded_checkpoint() {
    let src = fixtures().join("stories260K-hf");
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let mut map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
            .iter()
            .map(|n| (n.clone(), st.tensor(n).unwrap()))
            .collect();
        std::fs::write(
            dir.path().join(file),
            safetensors::serialize(views, &None).unwrap(),
        )
        .unwrap();
        for n in part {
            map.insert(n.clone(), serde_json::Value::String(file.into()));
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    let index_path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index_path, index.to_string()).unwrap();
    std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
    let a = llama2c_model();
    assert_same_weights(&a, &checkpoint::load(dir.path(), None).unwrap());
    assert_same_weights(&a, &checkpoint::load(&index_path, None).unwrap());
    // A missing shard, or a shard name that leaves the folder, is an error.
    let bad = index
        .to_string()
        .replace("model-00002-of-00002", "../model-00002-of-00002");
    std::fs::write(&index_path, bad).unwrap();
    assert!(matches!(
        checkpoint::load(dir.path(), None),
        Err(CheckpointError::Safetensors(_))
    ));
    std::fs::write(&index_path, index.to_string()).unwrap();
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    assert!(matches!(
        checkpoint::load(dir.path(), None),
        Err(CheckpointError::Io { .. })
    ));
}
