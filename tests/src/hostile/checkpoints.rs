//! Crafted checkpoints for `oracle-quant convert`: llama2.c, GGUF, safetensors
//! folders and tokenizers.

use super::Hostile;

/// A llama2.c version-1 file: header `(dim, hidden, layers, heads, kv_heads,
/// vocab, seq_len)`, shared classifier, then `weights` zero `f32`s.
fn llama2c_v1(cfg: [i32; 7], weights: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x616b_3432u32.to_le_bytes());
    b.extend_from_slice(&1i32.to_le_bytes());
    for v in cfg {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.push(1);
    b.resize(256, 0);
    b.resize(256 + 4 * weights, 0);
    b
}

/// A small GGUF writer: metadata `(key, type, encoded value)`, tensor infos
/// `(name, ne, type, offset)`, then `data` after 32-byte alignment.
struct Gguf {
    kv: Vec<(String, u32, Vec<u8>)>,
    tensors: Vec<(String, Vec<u64>, u32, u64)>,
    data: Vec<u8>,
}

fn gguf_string(s: &str) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s.as_bytes());
    b
}

impl Gguf {
    fn new() -> Gguf {
        Gguf {
            kv: Vec::new(),
            tensors: Vec::new(),
            data: Vec::new(),
        }
    }

    fn u32(&mut self, key: &str, v: u32) -> &mut Gguf {
        self.kv.push((key.into(), 4, v.to_le_bytes().to_vec()));
        self
    }

    fn raw(&mut self, key: &str, ty: u32, value: Vec<u8>) -> &mut Gguf {
        self.kv.push((key.into(), ty, value));
        self
    }

    fn tensor(&mut self, name: &str, ne: &[u64], ty: u32, offset: u64) -> &mut Gguf {
        self.tensors.push((name.into(), ne.to_vec(), ty, offset));
        self
    }

    fn finish(&self) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        b.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, ty, v) in &self.kv {
            b.extend_from_slice(&gguf_string(k));
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(v);
        }
        for (name, ne, ty, off) in &self.tensors {
            b.extend_from_slice(&gguf_string(name));
            b.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&off.to_le_bytes());
        }
        b.resize(b.len().div_ceil(32) * 32, 0);
        b.extend_from_slice(&self.data);
        b
    }
}

/// An array value: element type, count, elements.
fn gguf_array(elem: u32, n: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

/// A LLaMA GGUF whose every tensor (F16) starts at data offset 0: `layers` blocks
/// of width `dim`, all reading the same `dim²` halves.
fn aliased_gguf(dim: u64, layers: u32) -> Vec<u8> {
    let mut g = Gguf::new();
    g.u32("llama.embedding_length", dim as u32)
        .u32("llama.feed_forward_length", dim as u32)
        .u32("llama.block_count", layers)
        .u32("llama.attention.head_count", 4)
        .u32("llama.context_length", 64);
    g.tensor("token_embd.weight", &[dim, 512], 1, 0);
    g.tensor("output_norm.weight", &[dim], 1, 0);
    for i in 0..layers {
        for (name, ne) in [
            ("attn_norm", vec![dim]),
            ("attn_q", vec![dim, dim]),
            ("attn_k", vec![dim, dim]),
            ("attn_v", vec![dim, dim]),
            ("attn_output", vec![dim, dim]),
            ("ffn_norm", vec![dim]),
            ("ffn_gate", vec![dim, dim]),
            ("ffn_down", vec![dim, dim]),
            ("ffn_up", vec![dim, dim]),
        ] {
            g.tensor(&format!("blk.{i}.{name}.weight"), &ne, 1, 0);
        }
    }
    g.data = vec![0u8; (dim.max(512) * dim * 2) as usize];
    g.finish()
}

/// A safetensors file from its JSON header and data.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

/// A `config.json` of a tiny LLaMA with the given overrides appended.
fn hf_config(extra: &str) -> Vec<u8> {
    format!(
        "{{\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, \
         \"num_attention_heads\": 2, \"vocab_size\": 512, \"max_position_embeddings\": 8, \
         \"model_type\": \"llama\"{extra}}}"
    )
    .into_bytes()
}

/// The checkpoint and tokenizer files.
pub fn files() -> Vec<Hostile> {
    let mut out = Vec::new();
    // llama2.c: dim 64, hidden 64, 1 layer, 1 head, vocab 512 (tok512), context
    // 2^20. The exact weights are present; only the RoPE table the exporter
    // generates is huge (2^26 entries).
    let weights = 512 * 64 + (2 * 64 + 2 * 64 * 64 + 2 * 64 * 64 + 3 * 64 * 64) + 64;
    out.push(Hostile::new(
        "llama2c/rope-table-bomb.bin",
        "a 250 KB checkpoint with seq_len 2^20: the exporter computed and wrote a 256 MiB RoPE table (and up to 32 GiB for larger heads)",
        llama2c_v1([64, 64, 1, 1, 1, 512, 1 << 20], weights),
    ));
    out.push(Hostile::new(
        "llama2c/huge-dims.bin",
        "every header size i32::MAX",
        llama2c_v1([i32::MAX; 7], 0),
    ));
    out.push(Hostile::new(
        "llama2c/negative-dims.bin",
        "negative sizes",
        llama2c_v1([-8, 16, 1, 2, 2, 512, 8], 0),
    ));
    let mut v2 = llama2c_v1([8, 16, 1, 2, 2, 512, 8], 0);
    v2[4..8].copy_from_slice(&2i32.to_le_bytes());
    out.push(Hostile::new(
        "llama2c/v2-group-zero.bin",
        "a Q8_0 (version 2) checkpoint with group size 0: a division by zero",
        v2,
    ));
    // GGUF.
    let mut g = Gguf::new();
    g.raw("junk.bytes", 9, gguf_array(0, 4 << 20, &vec![0u8; 4 << 20]));
    out.push(Hostile::new(
        "gguf/big-u8-array.gguf",
        "a 4 MiB u8 metadata array: 32 bytes of memory per byte of file (a 20 MB file took 648 MB)",
        g.finish(),
    ));
    out.push(Hostile::new(
        "gguf/aliased-tensors.gguf",
        "2,306 tensors sharing the same 2 MiB: each decoded to f32 separately, 7 GiB from a 2 MB file",
        aliased_gguf(1024, 256),
    ));
    let mut g = Gguf::new();
    g.raw("junk.u64s", 9, gguf_array(10, 1 << 20, &vec![0u8; 1 << 20]));
    out.push(Hostile::new(
        "gguf/array-count-vs-bytes.gguf",
        "a u64 array whose count equals the bytes left (not an eighth of them): 32 MiB reserved before the read fails",
        g.finish(),
    ));
    let mut nested = Vec::new();
    for _ in 0..64 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    nested.extend_from_slice(&0u32.to_le_bytes());
    nested.extend_from_slice(&0u64.to_le_bytes());
    let mut g = Gguf::new();
    g.raw("junk.nested", 9, nested);
    out.push(Hostile::new(
        "gguf/deep-arrays.gguf",
        "arrays nested 64 deep",
        g.finish(),
    ));
    let mut b = Gguf::new().finish();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    out.push(Hostile::new("gguf/huge-counts.gguf", "2^64 - 1 tensors", b));
    let mut g = Gguf::new();
    g.raw("junk.string", 8, u64::MAX.to_le_bytes().to_vec());
    out.push(Hostile::new(
        "gguf/string-length-overflow.gguf",
        "a string of 2^64 - 1 bytes",
        g.finish(),
    ));
    let mut g = Gguf::new();
    g.u32("llama.embedding_length", 8)
        .tensor("token_embd.weight", &[8, 512], 0, u64::MAX - 8);
    out.push(Hostile::new(
        "gguf/tensor-offset-overflow.gguf",
        "a tensor at data offset 2^64 - 9",
        g.finish(),
    ));
    // Safetensors folders.
    let cfg = hf_config("");
    for (case, what, header) in [
        (
            "overlapping-offsets",
            "two tensors over the same bytes",
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        ),
        (
            "shape-overflow",
            "a shape of 2^32 x 2^32 x 16 elements",
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
        ),
        (
            "not-json",
            "a header that opens like JSON and is not",
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}  garbage"#,
        ),
    ] {
        out.push(Hostile::new(
            format!("safetensors/{case}/model.safetensors"),
            what,
            safetensors(header, &[0u8; 16]),
        ));
        out.push(Hostile::new(
            format!("safetensors/{case}/config.json"),
            what,
            cfg.clone(),
        ));
    }
    let mut len_past = safetensors(
        r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        &[0u8; 16],
    );
    len_past[..8].copy_from_slice(&(u64::MAX - 7).to_le_bytes());
    out.push(Hostile::new(
        "safetensors/header-length-overflow/model.safetensors",
        "a header length of 2^64 - 8: `8 + n` wrapped",
        len_past,
    ));
    out.push(Hostile::new(
        "safetensors/header-length-overflow/config.json",
        "a header length of 2^64 - 8: `8 + n` wrapped",
        cfg.clone(),
    ));
    out.push(Hostile::new(
        "safetensors/config-huge/model.safetensors",
        "config.json with 2^30 layers and hidden size 2^20",
        safetensors(
            r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            &[0u8; 16],
        ),
    ));
    out.push(Hostile::new(
        "safetensors/config-huge/config.json",
        "config.json with 2^30 layers and hidden size 2^20",
        br#"{"hidden_size": 1048576, "intermediate_size": 16, "num_hidden_layers": 1073741824,
"num_attention_heads": 2, "vocab_size": 1048576, "max_position_embeddings": 8,
"model_type": "llama"}"#
            .to_vec(),
    ));
    // Tokenizers.
    let mut t = (-5i32).to_le_bytes().to_vec();
    t.extend_from_slice(&0f32.to_le_bytes());
    t.extend_from_slice(&1i32.to_le_bytes());
    t.push(b'a');
    out.push(Hostile::new(
        "tokenizer/negative-max-length.bin",
        "a negative max_token_length",
        t,
    ));
    let mut t = 4i32.to_le_bytes().to_vec();
    t.extend_from_slice(&0f32.to_le_bytes());
    t.extend_from_slice(&i32::MAX.to_le_bytes());
    out.push(Hostile::new(
        "tokenizer/piece-length-overflow.bin",
        "a piece of 2^31 - 1 bytes",
        t,
    ));
    let mut g = Gguf::new();
    g.raw("tokenizer.ggml.tokens", 9, gguf_array(0, 512, &[7u8; 512]));
    out.push(Hostile::new(
        "tokenizer/gguf-tokens-not-strings.gguf",
        "a GGUF vocabulary of 512 bytes instead of strings",
        g.finish(),
    ));
    out
}
