//! The float32 reference forward pass, operation for operation as llama2.c's `run.c`.
//!
//! Every loop runs in the same order as `run.c`. The transcendentals (`sqrtf`,
//! `powf`, `cosf`, `sinf`, `expf`) come from a [`Math`] implementation: by default
//! [`PortableMath`], the `libm` crate, so the logits are the same on every platform.
//! With [`PlatformMath`] (the platform's C library, as `run.c` links it) the logits
//! are bit-identical to `run.c`'s on the same machine (a test checks it against
//! glibc); the two differ by about one ulp in some `expf`/`powf`/`sinf`/`cosf`
//! results, i.e. about 1e-5 in the logits, which does not change the reference texts.
//! This model is only used for measuring the integer engine; it never runs on chain.

use std::marker::PhantomData;

use crate::float_model::{FloatConfig, FloatModel, FloatTokenizer};

/// The `f32` math functions the forward pass uses.
pub trait Math {
    /// `e^x`.
    fn expf(x: f32) -> f32;
    /// Square root (correctly rounded in every implementation).
    fn sqrtf(x: f32) -> f32;
    /// `x^y`.
    fn powf(x: f32, y: f32) -> f32;
    /// Cosine.
    fn cosf(x: f32) -> f32;
    /// Sine.
    fn sinf(x: f32) -> f32;
}

/// The `libm` crate: pure Rust, the same results on every platform (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct PortableMath;

impl Math for PortableMath {
    fn expf(x: f32) -> f32 {
        libm::expf(x)
    }
    fn sqrtf(x: f32) -> f32 {
        libm::sqrtf(x)
    }
    fn powf(x: f32, y: f32) -> f32 {
        libm::powf(x, y)
    }
    fn cosf(x: f32) -> f32 {
        libm::cosf(x)
    }
    fn sinf(x: f32) -> f32 {
        libm::sinf(x)
    }
}

/// The platform's C math library through `std` (what `run.c` links): results depend
/// on the platform, so use it only to compare with a C build on the same machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlatformMath;

impl Math for PlatformMath {
    fn expf(x: f32) -> f32 {
        x.exp()
    }
    fn sqrtf(x: f32) -> f32 {
        x.sqrt()
    }
    fn powf(x: f32, y: f32) -> f32 {
        x.powf(y)
    }
    fn cosf(x: f32) -> f32 {
        x.cos()
    }
    fn sinf(x: f32) -> f32 {
        x.sin()
    }
}

/// The beginning-of-sequence token of llama2.c's vocabularies; generation stops on it.
pub const BOS: u32 = 1;

/// `o = weight * (x / sqrt(mean(x^2) + eps))`, as run.c's `rmsnorm`.
fn rmsnorm<M: Math>(o: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let mut ss = 0.0f32;
    for &v in x {
        ss += v * v;
    }
    ss /= x.len() as f32;
    ss += eps;
    ss = 1.0 / M::sqrtf(ss);
    for ((o, &w), &v) in o.iter_mut().zip(weight).zip(x) {
        *o = w * (ss * v);
    }
}

/// In-place softmax with max subtraction, as run.c's `softmax`.
fn softmax<M: Math>(x: &mut [f32]) {
    let mut max = x[0];
    for &v in &x[1..] {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = M::expf(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// `out = w @ x` with `w: (out.len(), x.len())` row-major; one sequential f32 dot per
/// row, as run.c's `matmul`.
fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        let mut val = 0.0f32;
        for (&a, &b) in row.iter().zip(x) {
            val += a * b;
        }
        *o = val;
    }
}

/// A float LLaMA with its run state: borrowed weights, owned activations and KV cache.
/// `M` picks the math library ([`PortableMath`] unless built with
/// [`FloatLlama::with_math`]).
#[derive(Debug)]
pub struct FloatLlama<'a, M: Math = PortableMath> {
    model: &'a FloatModel,
    math: PhantomData<M>,
    /// Residual stream `(dim)`.
    x: Vec<f32>,
    /// Scratch `(dim)`.
    xb: Vec<f32>,
    /// Scratch `(dim)`.
    xb2: Vec<f32>,
    /// FFN gate `(hidden_dim)`.
    hb: Vec<f32>,
    /// FFN up `(hidden_dim)`.
    hb2: Vec<f32>,
    /// Query `(dim)`.
    q: Vec<f32>,
    /// Attention scores `(n_heads, seq_len)`.
    att: Vec<f32>,
    /// Logits `(vocab_size)`.
    logits: Vec<f32>,
    /// Key cache `(layer, seq_len, kv_dim)`.
    key_cache: Vec<f32>,
    /// Value cache `(layer, seq_len, kv_dim)`.
    value_cache: Vec<f32>,
}

impl<'a> FloatLlama<'a, PortableMath> {
    /// Allocates the run state for `model` (KV cache for `config.seq_len` positions),
    /// with the portable `libm` math.
    pub fn new(model: &'a FloatModel) -> Self {
        Self::with_math(model)
    }
}

impl<'a, M: Math> FloatLlama<'a, M> {
    /// Like [`FloatLlama::new`] with the math library `M`, e.g.
    /// `FloatLlama::<PlatformMath>::with_math(&model)`.
    pub fn with_math(model: &'a FloatModel) -> Self {
        let c = &model.config;
        let cache = c.n_layers * c.seq_len * c.kv_dim();
        Self {
            model,
            math: PhantomData,
            x: vec![0.0; c.dim],
            xb: vec![0.0; c.dim],
            xb2: vec![0.0; c.dim],
            hb: vec![0.0; c.hidden_dim],
            hb2: vec![0.0; c.hidden_dim],
            q: vec![0.0; c.dim],
            att: vec![0.0; c.n_heads * c.seq_len],
            logits: vec![0.0; c.vocab_size],
            key_cache: vec![0.0; cache],
            value_cache: vec![0.0; cache],
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &FloatConfig {
        &self.model.config
    }

    /// Runs one position: feeds `token` at `pos` (positions `0..pos` must have been
    /// fed before, in order) and returns the logits `(vocab_size)`.
    ///
    /// # Panics
    /// If `token >= vocab_size` or `pos >= seq_len`.
    pub fn forward(&mut self, token: u32, pos: usize) -> &[f32] {
        let m = self.model;
        let c = &m.config;
        assert!(
            (token as usize) < c.vocab_size,
            "token {token} out of vocabulary"
        );
        assert!(
            pos < c.seq_len,
            "position {pos} beyond seq_len {}",
            c.seq_len
        );
        let (dim, hidden, head_size, kv_dim) = (c.dim, c.hidden_dim, c.head_size(), c.kv_dim());
        let kv_mul = c.n_heads / c.n_kv_heads;
        let t = token as usize;
        self.x
            .copy_from_slice(&m.token_embedding[t * dim..(t + 1) * dim]);

        for (l, w) in m.layers.iter().enumerate() {
            rmsnorm::<M>(&mut self.xb, &self.x, &w.rms_att, c.norm_eps);
            let loff = l * c.seq_len * kv_dim;
            let kpos = loff + pos * kv_dim;
            matmul(&mut self.q, &self.xb, &w.wq);
            matmul(&mut self.key_cache[kpos..kpos + kv_dim], &self.xb, &w.wk);
            matmul(&mut self.value_cache[kpos..kpos + kv_dim], &self.xb, &w.wv);
            if let Some(b) = &w.qkv_bias {
                let add = |v: &mut [f32], b: &[f32]| v.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                add(&mut self.q, &b.q);
                add(&mut self.key_cache[kpos..kpos + kv_dim], &b.k);
                add(&mut self.value_cache[kpos..kpos + kv_dim], &b.v);
            }

            // RoPE: rotate pairs (i, i+1) of q, and of k while i < kv_dim.
            for i in (0..dim).step_by(2) {
                let head_dim = i % head_size;
                let freq = 1.0
                    / M::powf(c.rope_theta, head_dim as f32 / head_size as f32)
                    / c.rope_freq_factor(head_dim / 2);
                let val = pos as f32 * freq;
                let fcr = M::cosf(val);
                let fci = M::sinf(val);
                let rotate = |vec: &mut [f32]| {
                    let (v0, v1) = (vec[i], vec[i + 1]);
                    vec[i] = v0 * fcr - v1 * fci;
                    vec[i + 1] = v0 * fci + v1 * fcr;
                };
                rotate(&mut self.q);
                if i < kv_dim {
                    rotate(&mut self.key_cache[kpos..kpos + kv_dim]);
                }
            }

            // Multi-head attention over positions 0..=pos.
            let scale = M::sqrtf(head_size as f32);
            for h in 0..c.n_heads {
                let q = &self.q[h * head_size..(h + 1) * head_size];
                let att = &mut self.att[h * c.seq_len..h * c.seq_len + pos + 1];
                let koff = (h / kv_mul) * head_size;
                for (t, a) in att.iter_mut().enumerate() {
                    let k0 = loff + t * kv_dim + koff;
                    let k = &self.key_cache[k0..k0 + head_size];
                    let mut score = 0.0f32;
                    for (&qi, &ki) in q.iter().zip(k) {
                        score += qi * ki;
                    }
                    *a = score / scale;
                }
                softmax::<M>(att);
                let xb = &mut self.xb[h * head_size..(h + 1) * head_size];
                xb.fill(0.0);
                for (t, &a) in att.iter().enumerate() {
                    let v0 = loff + t * kv_dim + koff;
                    let v = &self.value_cache[v0..v0 + head_size];
                    for (o, &vi) in xb.iter_mut().zip(v) {
                        *o += a * vi;
                    }
                }
            }
            matmul(&mut self.xb2, &self.xb, &w.wo);
            for (x, &d) in self.x.iter_mut().zip(&self.xb2) {
                *x += d;
            }

            // SwiGLU FFN.
            rmsnorm::<M>(&mut self.xb, &self.x, &w.rms_ffn, c.norm_eps);
            matmul(&mut self.hb, &self.xb, &w.w1);
            matmul(&mut self.hb2, &self.xb, &w.w3);
            for (g, &u) in self.hb.iter_mut().zip(&self.hb2) {
                let mut val = *g;
                val *= 1.0 / (1.0 + M::expf(-val));
                val *= u;
                *g = val;
            }
            debug_assert_eq!(self.hb.len(), hidden);
            matmul(&mut self.xb, &self.hb, &w.w2);
            for (x, &d) in self.x.iter_mut().zip(&self.xb) {
                *x += d;
            }
        }

        let x = self.x.clone();
        rmsnorm::<M>(&mut self.x, &x, &m.rms_final, c.norm_eps);
        let wcls = m.wcls.as_deref().unwrap_or(&m.token_embedding);
        matmul(&mut self.logits, &self.x, wcls);
        &self.logits
    }

    /// run.c's generate loop at temperature 0: feeds `prompt_tokens` (the first is
    /// normally [`BOS`]), then the argmax (lowest index on ties) of each position's
    /// logits, for at most `steps` positions (clamped to `seq_len`, as run.c does;
    /// 0 means `seq_len`), stopping before a generated [`BOS`].
    ///
    /// Returns every token fed or generated, starting with `prompt_tokens`: that is
    /// `prompt_tokens[0]` followed by what run.c prints (see [`decode`]). Returns
    /// an empty vector for an empty prompt.
    pub fn generate_greedy(&mut self, prompt_tokens: &[u32], steps: usize) -> Vec<u32> {
        self.generate(prompt_tokens, steps, argmax)
    }

    /// Like [`FloatLlama::generate_greedy`] but samples each token with run.c's
    /// sampler at `temperature` (> 0) and no top-p (`topp = 1.0`): logits divided by
    /// the temperature, softmax, one `random_f32` coin, inverse CDF.
    pub fn generate_sampled(
        &mut self,
        prompt_tokens: &[u32],
        steps: usize,
        temperature: f32,
        rng: &mut XorShiftRng,
    ) -> Vec<u32> {
        self.generate(prompt_tokens, steps, |logits| {
            let mut p = logits.to_vec();
            for v in &mut p {
                *v /= temperature;
            }
            softmax::<M>(&mut p);
            sample_mult(&p, rng.next_f32())
        })
    }

    fn generate(
        &mut self,
        prompt: &[u32],
        steps: usize,
        mut pick: impl FnMut(&[f32]) -> u32,
    ) -> Vec<u32> {
        let seq_len = self.model.config.seq_len;
        let steps = if steps == 0 || steps > seq_len {
            seq_len
        } else {
            steps
        };
        let Some(&first) = prompt.first() else {
            return Vec::new();
        };
        let mut out = vec![first];
        let mut token = first;
        let mut pos = 0;
        while pos < steps {
            let logits = self.forward(token, pos);
            let next = if pos + 1 < prompt.len() {
                prompt[pos + 1]
            } else {
                pick(logits)
            };
            pos += 1;
            if next == BOS {
                break;
            }
            out.push(next);
            token = next;
        }
        out
    }
}

/// Index of the largest value, lowest index on ties (run.c's `sample_argmax`).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// run.c's `sample_mult`: the first index whose CDF exceeds `coin`, else the last.
fn sample_mult(p: &[f32], coin: f32) -> u32 {
    let mut cdf = 0.0f32;
    for (i, &x) in p.iter().enumerate() {
        cdf += x;
        if coin < cdf {
            return i as u32;
        }
    }
    (p.len() - 1) as u32
}

/// llama2.c's xorshift64* generator (`random_u32`, `random_f32`).
#[derive(Debug, Clone)]
pub struct XorShiftRng {
    state: u64,
}

impl XorShiftRng {
    /// A generator with state `seed` (must be non-zero, as in run.c).
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// run.c's `random_u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// run.c's `random_f32`: uniform in `[0, 1)` with 24 bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}

/// The bytes run.c's `safe_printf(decode(prev, token))` prints for `token`: after
/// [`BOS`] one leading space is stripped; a `<0xAB>` piece is the raw byte; a
/// single byte that is neither printable ASCII nor whitespace prints nothing; the
/// output stops at a NUL byte, as `printf("%s")` does. A byte-level BPE token is
/// its bytes.
pub fn decode_piece(tok: &FloatTokenizer, prev: u32, token: u32) -> Vec<u8> {
    let Some(mut piece) = tok.pieces.get(token as usize).map(Vec::as_slice) else {
        return Vec::new();
    };
    if tok.byte_bpe.is_some() {
        return piece.to_vec();
    }
    if prev == BOS && piece.first() == Some(&b' ') {
        piece = &piece[1..];
    }
    let byte;
    if let Some(b) = parse_byte_piece(piece) {
        byte = [b];
        piece = &byte;
    }
    let piece = match piece.iter().position(|&b| b == 0) {
        Some(n) => &piece[..n],
        None => piece,
    };
    if piece.len() == 1 {
        let b = piece[0];
        let printable =
            (0x20..0x7f).contains(&b) || matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        if !printable {
            return Vec::new();
        }
    }
    piece.to_vec()
}

/// `sscanf(piece, "<0x%02hhX>")`: `<0x` then one or two hex digits.
fn parse_byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let digits: Vec<u8> = rest
        .iter()
        .take(2)
        .map_while(|&c| (c as char).to_digit(16).map(|d| d as u8))
        .collect();
    match digits.as_slice() {
        [a] => Some(*a),
        [a, b] => Some(a * 16 + b),
        _ => None,
    }
}

/// The bytes run.c prints for a token sequence as returned by
/// [`FloatLlama::generate_greedy`]: the pieces of `tokens[1..]`, each decoded after
/// its predecessor (without run.c's final newline).
pub fn decode(tok: &FloatTokenizer, tokens: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in tokens.windows(2) {
        out.extend(decode_piece(tok, w[0], w[1]));
    }
    out
}

/// Samples `samples` texts of at most `steps` positions each from BOS at
/// temperature 1.0 with run.c's sampler (top-p off), sample `i` from a fresh
/// xorshift64* generator seeded with `seed + i`, and joins the decoded texts with
/// `\n`. Sample `i` is byte for byte what upstream llama2.c prints for
/// `run model.bin -z tokenizer.bin -t 1.0 -p 1.0 -s <seed + i> -n <steps>`, so the
/// whole text equals those runs' outputs concatenated, less the last newline.
///
/// Returns the text and the number of generated tokens.
///
/// # Panics
/// If the model has no tokenizer, or `seed + i` is 0 (run.c would seed from the
/// clock).
pub fn sample_text(
    model: &FloatModel,
    seed: u64,
    samples: usize,
    steps: usize,
) -> (Vec<u8>, usize) {
    let tok = model
        .tokenizer
        .as_ref()
        .expect("sample_text needs a tokenizer");
    let mut text = Vec::new();
    let mut n_tokens = 0;
    for i in 0..samples {
        let s = seed + i as u64;
        assert_ne!(s, 0, "seed 0 is not reproducible in run.c");
        let mut rng = XorShiftRng::new(s);
        let mut llama = FloatLlama::new(model);
        let tokens = llama.generate_sampled(&[BOS], steps, 1.0, &mut rng);
        n_tokens += tokens.len() - 1;
        if i > 0 {
            text.push(b'\n');
        }
        text.extend(decode(tok, &tokens));
    }
    (text, n_tokens)
}
