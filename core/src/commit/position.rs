//! Decode positions as dispute states: the first phase of the two-phase dispute game
//! bisects over them, the second runs one position in the fault-proof VM.
//!
//! The state after `t` positions, `P_t = keccak256(PositionState::encode())`, is a
//! fixed 165-byte big-endian encoding ([`offset`]) of:
//!
//! | field | bytes | meaning |
//! |---|---|---|
//! | `model_root` | 32 | the model's Merkle root ([`crate::commit::merkle::model_root`]) |
//! | `prompt_hash` | 32 | `keccak256` of the prompt's tokens (BOS first), each `u32` big-endian |
//! | `tokens_hash` | 32 | `keccak256` of every token fed or produced so far (BOS first; the last is the next one to feed), each `u32` big-endian |
//! | `kv_root` | 32 | the KV-cache commitment of positions `< t` ([`KvTree`]) |
//! | `params` | 20 | [`TextParams::encode`]: steps, temperature, top-p, seed |
//! | `rng` | 8 | the sampler's xorshift64* state |
//! | `pos` | 4 | `t`, positions run so far |
//! | `prompt_len` | 4 | prompt tokens, BOS included |
//! | `done` | 1 | 1 once generation stopped (a stop token: BOS for llama2.c vocabularies, a sampled stop token for byte-level BPE; or `min(steps, seq_len)` positions run), else 0 |
//!
//! **KV root.** For each layer `l`, a binary Merkle tree over the positions
//! `0..cap` (`cap = seq_len.next_power_of_two()`): leaf `p` is
//! `keccak256(K[l][p] ‖ V[l][p])` (each row `kv_dim` `i32`s little-endian, as the
//! cache holds them) for `p < t` and `bytes32(0)` for a position not yet run;
//! `node = keccak256(left ‖ right)`. `kv_root = keccak256(layerRoot_0 ‖ … ‖
//! layerRoot_{n_layers-1})`. One row is proven with its layer's sibling path and the
//! list of layer roots.
//!
//! **Transitions.** [`Decoder::start`] maps a request to `P_0` (tokenize, validate);
//! [`Decoder::step`] maps `P_t` to `P_{t+1}` by running exactly one forward pass and
//! one sampling step; a `done` state is a fixed point. [`output_hash`] maps the final
//! state's tokens to `keccak256(text ‖ "\n")`, the output commitment of the
//! whole-request guest. There is one decode loop: [`crate::llama::generate::generate`]
//! runs this decoder too, uncommitted ([`Decoder::uncommitted`]: no KV tree), so
//! running `start`, then `step` `min(steps, seq_len)` times, reproduces `generate`
//! token for token by construction.
//!
//! **Restoring.** [`Decoder::restore`] rebuilds a decoder from `P_t`'s hash and a
//! preimage source (`keccak256(preimage) -> preimage`): the state encoding, the two
//! token lists, the list of layer roots, the inner nodes of every layer tree that
//! cover a position `< t`, and the rows under them. The source is trusted to return
//! a preimage of the key (the fault-proof VM checks every keccak preimage), so
//! restoring hashes nothing; [`Decoder::preimages`] lists exactly what it reads.

use alloc::vec;
use alloc::vec::Vec;

use crate::commit::merkle::{hash_pair, keccak, Hash};
use crate::error::RequestError;
use crate::kernels::Exec;
use crate::llama::generate::encode_prompt;
use crate::llama::sampler::Sampler;
use crate::llama::tokenizer::Tokenizer;
use crate::llama::{LlamaState, LlamaWeights};
use crate::model::request::{Request, TextParams, PARAMS_LEN};
use crate::rng::Rng;

/// Byte offsets of [`PositionState::encode`], one chain of constants.
pub mod offset {
    use crate::model::request::PARAMS_LEN;
    /// Model root (32 bytes).
    pub const MODEL_ROOT: usize = 0;
    /// keccak256 of the prompt tokens (32 bytes).
    pub const PROMPT_HASH: usize = MODEL_ROOT + 32;
    /// keccak256 of the tokens so far (32 bytes).
    pub const TOKENS_HASH: usize = PROMPT_HASH + 32;
    /// KV-cache root (32 bytes).
    pub const KV_ROOT: usize = TOKENS_HASH + 32;
    /// Request parameters (20 bytes).
    pub const PARAMS: usize = KV_ROOT + 32;
    /// Sampler state (u64).
    pub const RNG: usize = PARAMS + PARAMS_LEN;
    /// Positions run (u32).
    pub const POS: usize = RNG + 8;
    /// Prompt tokens (u32).
    pub const PROMPT_LEN: usize = POS + 4;
    /// Done flag (u8).
    pub const DONE: usize = PROMPT_LEN + 4;
    /// Total size.
    pub const SIZE: usize = DONE + 1;
}

/// Why a decode state could not be restored or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// The preimage source has no preimage for a hash the state commits to.
    #[error("no preimage for {0}")]
    MissingPreimage(&'static str),
    /// A preimage or the state encoding is malformed or inconsistent.
    #[error("bad decode state: {0}")]
    BadState(&'static str),
    /// The state belongs to another model than the one given.
    #[error("the decode state commits to another model root")]
    WrongModel,
    /// The request or a forward pass was rejected.
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// The committed decode state after `pos` positions (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionState {
    /// Model root.
    pub model_root: Hash,
    /// keccak256 of the prompt tokens.
    pub prompt_hash: Hash,
    /// keccak256 of the tokens so far.
    pub tokens_hash: Hash,
    /// KV-cache root.
    pub kv_root: Hash,
    /// [`TextParams::encode`].
    pub params: [u8; PARAMS_LEN],
    /// Sampler state.
    pub rng: u64,
    /// Positions run.
    pub pos: u32,
    /// Prompt tokens, BOS included.
    pub prompt_len: u32,
    /// Generation has stopped.
    pub done: bool,
}

impl PositionState {
    /// The fixed encoding (big-endian integers).
    pub fn encode(&self) -> [u8; offset::SIZE] {
        let mut out = [0u8; offset::SIZE];
        out[offset::MODEL_ROOT..offset::PROMPT_HASH].copy_from_slice(&self.model_root);
        out[offset::PROMPT_HASH..offset::TOKENS_HASH].copy_from_slice(&self.prompt_hash);
        out[offset::TOKENS_HASH..offset::KV_ROOT].copy_from_slice(&self.tokens_hash);
        out[offset::KV_ROOT..offset::PARAMS].copy_from_slice(&self.kv_root);
        out[offset::PARAMS..offset::RNG].copy_from_slice(&self.params);
        out[offset::RNG..offset::POS].copy_from_slice(&self.rng.to_be_bytes());
        out[offset::POS..offset::PROMPT_LEN].copy_from_slice(&self.pos.to_be_bytes());
        out[offset::PROMPT_LEN..offset::DONE].copy_from_slice(&self.prompt_len.to_be_bytes());
        out[offset::DONE] = u8::from(self.done);
        out
    }

    /// Parse [`PositionState::encode`]'s output; exactly [`offset::SIZE`] bytes, done
    /// flag 0 or 1.
    pub fn decode(bytes: &[u8]) -> Result<PositionState, PositionError> {
        if bytes.len() != offset::SIZE {
            return Err(PositionError::BadState("state encoding is not 165 bytes"));
        }
        let hash = |at: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&bytes[at..at + 32]);
            h
        };
        let u32_at = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let mut params = [0u8; PARAMS_LEN];
        params.copy_from_slice(&bytes[offset::PARAMS..offset::RNG]);
        let mut rng = [0u8; 8];
        rng.copy_from_slice(&bytes[offset::RNG..offset::POS]);
        let done = match bytes[offset::DONE] {
            0 => false,
            1 => true,
            _ => return Err(PositionError::BadState("done flag is neither 0 nor 1")),
        };
        Ok(PositionState {
            model_root: hash(offset::MODEL_ROOT),
            prompt_hash: hash(offset::PROMPT_HASH),
            tokens_hash: hash(offset::TOKENS_HASH),
            kv_root: hash(offset::KV_ROOT),
            params,
            rng: u64::from_be_bytes(rng),
            pos: u32_at(offset::POS),
            prompt_len: u32_at(offset::PROMPT_LEN),
            done,
        })
    }

    /// `P_t`: keccak256 of the encoding.
    pub fn hash(&self) -> Hash {
        keccak(&self.encode())
    }
}

/// A token list as committed: each id `u32` big-endian.
pub fn encode_tokens(tokens: &[u32]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.to_be_bytes()).collect()
}

/// Parse [`encode_tokens`]' output.
pub fn decode_tokens(bytes: &[u8]) -> Result<Vec<u32>, PositionError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(PositionError::BadState(
            "token list is not a multiple of 4 bytes",
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The text a token list prints (the prompt, then the generated text), as
/// [`crate::llama::generate::generate`] builds it: the printable piece of every token
/// after the first, decoded with its predecessor.
pub fn tokens_text(tokenizer: &Tokenizer<'_>, tokens: &[u32]) -> Vec<u8> {
    let mut text = Vec::new();
    for pair in tokens.windows(2) {
        tokenizer.decode(pair[0], pair[1]).push_printable(&mut text);
    }
    text
}

/// The output commitment of a final token list: `keccak256(text ‖ "\n")`, what
/// the whole-request guest commits.
pub fn output_hash(tokenizer: &Tokenizer<'_>, tokens: &[u32]) -> Hash {
    crate::model::outcome::commitment(&crate::model::outcome::text_output(&tokens_text(
        tokenizer, tokens,
    )))
}

/// The KV-cache commitment: one Merkle tree over positions per layer, kept whole
/// (heap order: node 1 is the root, the leaf of position `p` is `cap + p`).
#[derive(Debug, Clone)]
pub struct KvTree {
    /// log2 of the leaf capacity.
    depth: u32,
    /// Per layer, `2 * cap` hashes (index 0 unused).
    layers: Vec<Vec<Hash>>,
}

impl KvTree {
    /// An empty cache: every leaf `bytes32(0)`. `seq_len` is at most 2^20 (the model
    /// format checks it), so the capacity cannot overflow.
    pub fn new(n_layers: u32, seq_len: u32) -> KvTree {
        let cap = seq_len.clamp(1, 1 << 20).next_power_of_two();
        let depth = cap.trailing_zeros();
        // empty[h]: root of an empty subtree of height h.
        let mut empty = vec![[0u8; 32]; depth as usize + 1];
        for h in 1..empty.len() {
            empty[h] = hash_pair(&empty[h - 1], &empty[h - 1]);
        }
        let mut tree = vec![[0u8; 32]; 2 * cap as usize];
        for (i, node) in tree.iter_mut().enumerate().skip(1) {
            // Node i sits at depth floor(log2 i), height depth - that.
            let height = depth - (usize::BITS - 1 - i.leading_zeros());
            *node = empty[height as usize];
        }
        KvTree {
            depth,
            layers: vec![tree; n_layers as usize],
        }
    }

    /// No commitment: the tree of a decoder that commits to nothing
    /// ([`Decoder::uncommitted`], the one decode loop of `generate`).
    fn none() -> KvTree {
        KvTree {
            depth: 0,
            layers: Vec::new(),
        }
    }

    /// Whether this tree commits to anything (not [`KvTree::none`]).
    fn commits(&self) -> bool {
        !self.layers.is_empty()
    }

    /// Leaves per layer tree.
    pub fn capacity(&self) -> u32 {
        1 << self.depth
    }

    /// Set the leaf of (`layer`, `pos`) and update its path.
    fn set_leaf(&mut self, layer: usize, pos: u32, leaf: Hash) {
        let tree = &mut self.layers[layer];
        let mut i = (1usize << self.depth) + pos as usize;
        tree[i] = leaf;
        while i > 1 {
            i /= 2;
            tree[i] = hash_pair(&tree[2 * i], &tree[2 * i + 1]);
        }
    }

    /// The root of each layer's tree, concatenated (the preimage of the KV root).
    pub fn layer_roots(&self) -> Vec<u8> {
        self.layers.iter().flat_map(|t| t[1]).collect()
    }

    /// The KV root.
    pub fn root(&self) -> Hash {
        keccak(&self.layer_roots())
    }

    /// Whether heap node `i` covers a position below `filled`.
    fn covers_below(&self, i: usize, filled: u32) -> bool {
        let level = usize::BITS - 1 - i.leading_zeros();
        let height = self.depth - level;
        let first = (i - (1usize << level)) << height;
        first < filled as usize
    }

    /// The 64-byte preimages of every inner node covering a position below `filled`.
    fn inner_preimages(&self, filled: u32, out: &mut Vec<Vec<u8>>) {
        for tree in &self.layers {
            for i in 1..(1usize << self.depth) {
                if self.covers_below(i, filled) {
                    let mut node = Vec::with_capacity(64);
                    node.extend_from_slice(&tree[2 * i]);
                    node.extend_from_slice(&tree[2 * i + 1]);
                    out.push(node);
                }
            }
        }
    }
}

/// One KV row as committed: the key row then the value row, `i32` little-endian.
pub fn kv_row_bytes(k: &[i32], v: &[i32]) -> Vec<u8> {
    k.iter().chain(v).flat_map(|x| x.to_le_bytes()).collect()
}

/// A generation that runs one position at a time, committing its state after each.
#[derive(Debug, Clone)]
pub struct Decoder<'a, 'm> {
    weights: &'a LlamaWeights<'m>,
    model_root: Hash,
    params: [u8; PARAMS_LEN],
    /// `min(steps, seq_len)`.
    steps: u32,
    prompt: Vec<u32>,
    prompt_hash: Hash,
    tokens: Vec<u32>,
    llama: LlamaState,
    sampler: Sampler,
    kv: KvTree,
    pos: u32,
    done: bool,
    stops: Stops,
}

/// When a decode stops on a token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stops {
    /// llama2.c's vocabularies: at BOS, sampled or forced by the prompt (as `run.c`).
    Bos(u32),
    /// Byte-level BPE vocabularies: at a sampled stop token (a chat prompt holds
    /// end-of-turn tokens, so the prompt's never stop it).
    Sampled(Vec<u32>),
}

impl Stops {
    fn of(tokenizer: &Tokenizer<'_>, bos: u32) -> Stops {
        match tokenizer {
            Tokenizer::SentencePiece(_) => Stops::Bos(bos),
            Tokenizer::ByteBpe(t) => Stops::Sampled(t.stops().to_vec()),
        }
    }

    /// Whether `next` ends the decode (`forced`: the prompt gives it).
    fn stops(&self, next: u32, forced: bool) -> bool {
        match self {
            Stops::Bos(bos) => next == *bos,
            Stops::Sampled(ids) => !forced && ids.contains(&next),
        }
    }
}

impl<'a, 'm> Decoder<'a, 'm> {
    /// `P_0` of a request: validate it and tokenize the prompt (the errors of
    /// [`crate::llama::generate::generate`], which runs this same decoder).
    pub fn start(
        weights: &'a LlamaWeights<'m>,
        tokenizer: &Tokenizer<'_>,
        model_root: Hash,
        request: &Request<'_>,
    ) -> Result<Decoder<'a, 'm>, PositionError> {
        let kv = KvTree::new(weights.config.n_layers, weights.config.seq_len);
        Ok(Decoder::begin(weights, tokenizer, model_root, request, kv)?)
    }

    /// A decoder of `request` that commits to nothing (no KV tree; its
    /// [`Decoder::state`] is not a position state of the game): the decode loop of
    /// [`crate::llama::generate::generate`], so a request decodes through one loop
    /// whether or not its positions are committed.
    pub fn uncommitted(
        weights: &'a LlamaWeights<'m>,
        tokenizer: &Tokenizer<'_>,
        request: &Request<'_>,
    ) -> Result<Decoder<'a, 'm>, RequestError> {
        Decoder::begin(weights, tokenizer, [0; 32], request, KvTree::none())
    }

    fn begin(
        weights: &'a LlamaWeights<'m>,
        tokenizer: &Tokenizer<'_>,
        model_root: Hash,
        request: &Request<'_>,
        kv: KvTree,
    ) -> Result<Decoder<'a, 'm>, RequestError> {
        let c = weights.config;
        let params = request.text_params()?;
        let prompt = encode_prompt(tokenizer, &c, request.prompt, &params)?;
        let steps = params.steps.min(c.seq_len);
        let mut tokens = Vec::with_capacity(steps as usize + 1);
        tokens.push(prompt[0]);
        Ok(Decoder {
            weights,
            model_root,
            params: params.encode(),
            steps,
            prompt_hash: keccak(&encode_tokens(&prompt)),
            tokens,
            prompt,
            llama: LlamaState::new(&c),
            sampler: Sampler::new(params.sampling, c.vocab_size as usize),
            kv,
            pos: 0,
            done: false,
            stops: Stops::of(tokenizer, c.bos),
        })
    }

    /// Rebuild the decoder of state `state_hash` from a preimage source (see the
    /// module docs); `model_root` must be the root of `weights`' file.
    pub fn restore(
        weights: &'a LlamaWeights<'m>,
        tokenizer: &Tokenizer<'_>,
        model_root: &Hash,
        state_hash: &Hash,
        mut fetch: impl FnMut(&Hash) -> Option<Vec<u8>>,
    ) -> Result<Decoder<'a, 'm>, PositionError> {
        let c = weights.config;
        let state = fetch(state_hash).ok_or(PositionError::MissingPreimage("the state"))?;
        let state = PositionState::decode(&state)?;
        if &state.model_root != model_root {
            return Err(PositionError::WrongModel);
        }
        let Some(params) = TextParams::decode(&state.params) else {
            return Err(PositionError::BadState("parameters"));
        };
        params.sampling.validate()?;
        if params.steps == 0 {
            return Err(RequestError::ZeroSteps.into());
        }
        let steps = params.steps.min(c.seq_len);
        let prompt =
            fetch(&state.prompt_hash).ok_or(PositionError::MissingPreimage("the prompt tokens"))?;
        let prompt = decode_tokens(&prompt)?;
        let tokens =
            fetch(&state.tokens_hash).ok_or(PositionError::MissingPreimage("the tokens"))?;
        let tokens = decode_tokens(&tokens)?;
        let pos = state.pos;
        let consistent = !prompt.is_empty()
            && prompt.len() == state.prompt_len as usize
            && prompt.len() <= c.seq_len as usize
            && pos <= steps
            && (state.done || pos < steps)
            && (tokens.len() == pos as usize + 1 || (state.done && tokens.len() == pos as usize))
            && !tokens.is_empty()
            && tokens.iter().all(|&t| t < c.vocab_size);
        if !consistent {
            return Err(PositionError::BadState(
                "token lists, position and steps disagree",
            ));
        }
        let mut decoder = Decoder {
            weights,
            model_root: state.model_root,
            params: state.params,
            steps,
            prompt_hash: state.prompt_hash,
            prompt,
            tokens,
            llama: LlamaState::new(&c),
            sampler: Sampler::with_rng(
                params.sampling,
                c.vocab_size as usize,
                Rng::from_state(state.rng),
            ),
            kv: KvTree::new(c.n_layers, c.seq_len),
            pos,
            done: state.done,
            stops: Stops::of(tokenizer, c.bos),
        };
        let roots =
            fetch(&state.kv_root).ok_or(PositionError::MissingPreimage("the layer roots"))?;
        if roots.len() != 32 * c.n_layers as usize {
            return Err(PositionError::BadState("layer roots of the wrong length"));
        }
        for (l, root) in roots.chunks_exact(32).enumerate() {
            decoder.kv.layers[l][1].copy_from_slice(root);
            decoder.load_subtree(l, 1, &mut fetch)?;
        }
        Ok(decoder)
    }

    /// Fill heap node `i` of layer `l`'s tree (its hash already set) and the cache
    /// rows under it, for the positions below `pos`.
    fn load_subtree(
        &mut self,
        l: usize,
        i: usize,
        fetch: &mut impl FnMut(&Hash) -> Option<Vec<u8>>,
    ) -> Result<(), PositionError> {
        if !self.kv.covers_below(i, self.pos) {
            return Ok(());
        }
        let hash = self.kv.layers[l][i];
        let cap = 1usize << self.kv.depth;
        if i >= cap {
            let pos = (i - cap) as u32;
            let row = fetch(&hash).ok_or(PositionError::MissingPreimage("a KV row"))?;
            let (k, v) = self
                .llama
                .kv_row_mut(l as u32, pos)
                .ok_or(PositionError::BadState("KV row outside the cache"))?;
            let kv_dim = k.len();
            if row.len() != 8 * kv_dim {
                return Err(PositionError::BadState("KV row of the wrong length"));
            }
            for (x, b) in k.iter_mut().chain(v.iter_mut()).zip(row.chunks_exact(4)) {
                *x = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            return Ok(());
        }
        let node = fetch(&hash).ok_or(PositionError::MissingPreimage("a KV tree node"))?;
        if node.len() != 64 {
            return Err(PositionError::BadState("KV tree node is not 64 bytes"));
        }
        self.kv.layers[l][2 * i].copy_from_slice(&node[..32]);
        self.kv.layers[l][2 * i + 1].copy_from_slice(&node[32..]);
        self.load_subtree(l, 2 * i, fetch)?;
        self.load_subtree(l, 2 * i + 1, fetch)
    }

    /// Run the positions from the start whose next token the prompt gives (and that
    /// neither stop the decode nor reach the step limit) together, with
    /// [`LlamaState::prefill_cache`]: the same state as that many
    /// [`Decoder::step_with`] calls (which compute no logits for them either).
    /// Returns the number of positions run (0 once past the start or for a
    /// one-token prompt).
    pub fn prefill(&mut self, exec: Exec) -> Result<u32, RequestError> {
        if self.done || self.pos != 0 {
            return Ok(0);
        }
        let forced = self.prompt[1..]
            .iter()
            .take_while(|&&next| !self.stops.stops(next, true))
            .count()
            .min(self.steps.saturating_sub(1) as usize);
        if forced < 2 {
            return Ok(0);
        }
        self.llama
            .prefill_cache(self.weights, exec, &self.prompt[..forced])?;
        for pos in 0..forced as u32 {
            self.commit_kv_rows(pos)?;
            self.tokens.push(self.prompt[pos as usize + 1]);
        }
        self.pos = forced as u32;
        Ok(forced as u32)
    }

    /// Set the KV tree's leaves of position `pos` from the cache (every layer's key
    /// and value rows), when the decoder commits.
    fn commit_kv_rows(&mut self, pos: u32) -> Result<(), RequestError> {
        if !self.kv.commits() {
            return Ok(());
        }
        for l in 0..self.weights.config.n_layers {
            let leaf = match self.llama.kv_row(l, pos) {
                Some((k, v)) => keccak(&kv_row_bytes(k, v)),
                None => return Err(RequestError::PositionOutOfRange(pos)),
            };
            self.kv.set_leaf(l as usize, pos, leaf);
        }
        Ok(())
    }

    /// Run one position (one iteration of the decode loop): feed the last token
    /// at `pos`, commit its KV rows, take the prompt's next token or sample one,
    /// stop at a stop token or after `min(steps, seq_len)` positions. A done decoder does
    /// not change.
    pub fn step(&mut self, exec: Exec) -> Result<(), PositionError> {
        Ok(self.step_with(exec, |_| {})?)
    }

    /// [`Decoder::step`], handing the position's logits to `on_logits` (the
    /// logits hash of `generate`) when it samples its next token. A position whose
    /// next token the prompt gives computes no logits
    /// ([`LlamaState::advance`]), so `on_logits` is not called for it.
    pub fn step_with(
        &mut self,
        exec: Exec,
        on_logits: impl FnOnce(&[i32]),
    ) -> Result<(), RequestError> {
        if self.done {
            return Ok(());
        }
        let c = self.weights.config;
        let pos = self.pos;
        let token = self.tokens.last().copied().unwrap_or(c.bos);
        let (next, forced) = match self.prompt.get(pos as usize + 1) {
            Some(&forced) => {
                self.llama.advance(self.weights, exec, token, pos)?;
                (forced, true)
            }
            None => {
                let logits = self.llama.forward(self.weights, exec, token, pos)?;
                on_logits(logits);
                (self.sampler.sample(logits), false)
            }
        };
        self.commit_kv_rows(pos)?;
        self.pos = pos + 1;
        if self.stops.stops(next, forced) {
            self.done = true;
        } else {
            self.tokens.push(next);
        }
        if self.pos >= self.steps {
            self.done = true;
        }
        Ok(())
    }

    /// The committed state.
    pub fn state(&self) -> PositionState {
        PositionState {
            model_root: self.model_root,
            prompt_hash: self.prompt_hash,
            tokens_hash: keccak(&encode_tokens(&self.tokens)),
            kv_root: self.kv.root(),
            params: self.params,
            rng: self.sampler.rng().state(),
            pos: self.pos,
            prompt_len: self.prompt.len() as u32,
            done: self.done,
        }
    }

    /// Every token fed or produced so far, BOS first.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// [`Decoder::tokens`], taken.
    pub fn into_tokens(self) -> Vec<u32> {
        self.tokens
    }

    /// Prompt tokens, BOS included.
    pub fn prompt_len(&self) -> usize {
        self.prompt.len()
    }

    /// Positions run.
    pub fn pos(&self) -> u32 {
        self.pos
    }

    /// Whether generation has stopped.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Positions a full run takes at most: `min(steps, seq_len)`, the length `T`
    /// of the phase-1 chain `P_0..P_T`.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Every preimage [`Decoder::restore`] reads for the current state: the state
    /// encoding, the prompt tokens, the tokens, the layer roots, the inner nodes
    /// covering a position `< pos` and the rows of those positions.
    pub fn preimages(&self) -> Vec<Vec<u8>> {
        let c = self.weights.config;
        let mut out = vec![
            self.state().encode().to_vec(),
            encode_tokens(&self.prompt),
            encode_tokens(&self.tokens),
            self.kv.layer_roots(),
        ];
        self.kv.inner_preimages(self.pos, &mut out);
        for l in 0..c.n_layers {
            for p in 0..self.pos {
                if let Some((k, v)) = self.llama.kv_row(l, p) {
                    out.push(kv_row_bytes(k, v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_encoding_round_trips_and_is_165_bytes() {
        assert_eq!(offset::SIZE, 165);
        let s = PositionState {
            model_root: [1; 32],
            prompt_hash: [2; 32],
            tokens_hash: [3; 32],
            kv_root: [4; 32],
            params: [5; PARAMS_LEN],
            rng: 0x0102_0304_0506_0708,
            pos: 9,
            prompt_len: 3,
            done: true,
        };
        let e = s.encode();
        assert_eq!(&e[offset::RNG..offset::POS], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&e[offset::POS..offset::PROMPT_LEN], &[0, 0, 0, 9]);
        assert_eq!(e[offset::DONE], 1);
        assert_eq!(PositionState::decode(&e), Ok(s));
        let mut bad = e;
        bad[offset::DONE] = 2;
        assert!(PositionState::decode(&bad).is_err());
        assert!(PositionState::decode(&e[..164]).is_err());
    }

    #[test]
    fn empty_kv_tree_root_is_the_zero_tree() {
        let t = KvTree::new(2, 5);
        assert_eq!(t.capacity(), 8);
        let z1 = hash_pair(&[0; 32], &[0; 32]);
        let z2 = hash_pair(&z1, &z1);
        let z3 = hash_pair(&z2, &z2);
        let mut roots = Vec::new();
        roots.extend_from_slice(&z3);
        roots.extend_from_slice(&z3);
        assert_eq!(t.root(), keccak(&roots));
    }

    #[test]
    fn kv_tree_leaf_updates_match_a_recomputed_tree() {
        let mut t = KvTree::new(1, 4);
        let leaves = [keccak(b"a"), keccak(b"b"), keccak(b"c")];
        for (p, leaf) in leaves.iter().enumerate() {
            t.set_leaf(0, p as u32, *leaf);
        }
        let want = hash_pair(
            &hash_pair(&leaves[0], &leaves[1]),
            &hash_pair(&leaves[2], &[0; 32]),
        );
        assert_eq!(t.layers[0][1], want);
        assert!(t.covers_below(3, 3)); // node 3 covers positions 2..4
        assert!(!t.covers_below(7, 3)); // leaf of position 3
        let mut nodes = Vec::new();
        t.inner_preimages(3, &mut nodes);
        assert_eq!(nodes.len(), 3);
    }

    #[test]
    fn token_lists_are_big_endian() {
        assert_eq!(encode_tokens(&[1, 0x0203]), [0, 0, 0, 1, 0, 0, 2, 3]);
        assert_eq!(
            decode_tokens(&[0, 0, 0, 1, 0, 0, 2, 3]),
            Ok(vec![1, 0x0203])
        );
        assert!(decode_tokens(&[0, 1]).is_err());
    }
}
