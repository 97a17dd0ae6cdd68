//! The oracle's guest program: the integer inference core as an rv32im program run
//! by the fault-proof VM.
//!
//! 1. Read the local data the dispute game provides: the model root (local 1), the
//!    input hash (local 2) and the request parameters (local 3: their canonical
//!    20-byte encoding, `oracle_core::model::request`).
//! 2. Fetch the input bytes by their keccak hash.
//! 3. Fetch the model by walking its Merkle tree from the root: the 40-byte head
//!    `treeRoot || len`, the 64-byte inner nodes, the 4096-byte chunks. Every
//!    preimage is fetched under the keccak key of the hash one level up, and the VM
//!    rejects a preimage that does not hash to its key, so every chunk is checked
//!    against the model root (no prover can feed other weights).
//! 4. Run the request exactly as `oracle run` does, through the core's one entry
//!    point (`oracle_core::model::outcome::run`: the model file says which family
//!    it is and how the parameters read), write the posted bytes to fd 1, commit
//!    their keccak256 as the output and exit 0; for a text model also write
//!    `logits 0x<keccak of all logits>` to fd 2 (for the cross-target golden tests).
//!
//! **Transition modes** (the second phase of the two-phase dispute game, see
//! `docs/dispute.md`): the same ELF runs one transition of the decode-position chain
//! when local 3 is 21 bytes, the 20 request parameters followed by a mode byte.
//! Every mode reads locals 1..3 and the input first, as above.
//! - mode 1, *init*: tokenize, validate, commit `P_0` (`oracle_core::commit::position`);
//! - mode 2, *position*: read the pre-state hash `P_t` from local 4 (`PRE_STATE`),
//!   fetch the state (whose model root must be local 1), its token lists, KV tree
//!   and rows and the model as keccak preimages, run exactly one position and
//!   commit `P_{t+1}`;
//! - mode 3, *output*: read `P_T` from local 4, which must be done, fetch its tokens
//!   and the model's tokenizer, write the text and commit `keccak256(text ‖ "\n")`,
//!   the whole-request output commitment.
//!
//! **Image models** (an image architecture in the model file header, `oracle_core::format`):
//! step 4 runs the seeded image request (`oracle_core::AnyModel::run`; `steps`,
//! guidance and `seed` from the 20 parameter bytes read as image parameters), writes
//! the PNG bytes to fd 1 and commits keccak256 of the posted output
//! (`oracle_core::diffusion::request::posted_output`: the PNG itself up to
//! `OUTPUT_INLINE_LIMIT` bytes, otherwise its keccak256). The transition modes are
//! LLaMA-only (an image model does not load as one: the error outcome).
//!
//! **Rejected requests** (`oracle_core::model::outcome`): a request the model rejects (a
//! prompt longer than the context, parameters out of range, a model file that does
//! not load, an image request with input) is not a failed run but a result, the
//! **error outcome**: the guest writes nothing, commits `keccak256("")` (the empty
//! output) and exits 0, so it is served, disputed and settled like any other. In the
//! transition modes, init commits that same hash `E` for a rejected request, and a
//! position or output transition whose pre-state is `E` commits `E` again (a fixed
//! point), so a rejected request's chain `s_1 .. s_N` is `E` throughout and ends in
//! the error outcome's commitment.
//!
//! **Memory budget.** The heap (from the image's end to `0x7000_0000`) holds the
//! model file plus what serving it needs; a model whose `oracle_core::footprint`
//! exceeds `GUEST_MEMORY_BUDGET` (1 GiB) is refused before its run state is
//! allocated, with the error outcome, so a crafted model ends in a defined result
//! instead of an allocation failure (the node never serves such a model).
//!
//! Exit codes (`oracle_guest_abi::exit_code`): 0 a result (success or the error
//! outcome); 2 local parameters that no game writes (not 20 or 21 bytes, an unknown
//! mode); 5 a malformed preimage; 6 a decode state that cannot be restored, or an
//! output step on a state that is not done; 101 a panic (a bug).
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod syscall;

use alloc::vec;
use alloc::vec::Vec;
use oracle_core::commit::merkle::{chunk_count, Hash, CHUNK_SIZE};
use oracle_core::commit::position::{decode_tokens, tokens_text, Decoder, PositionState};
use oracle_core::diffusion::request::posted_output;
use oracle_core::footprint::GUEST_MEMORY_BUDGET;
use oracle_core::llama::Model;
use oracle_core::model::outcome::{commitment, rejected_commitment, run, text_output, Outcome};
use oracle_core::model::request::TextParams;
use oracle_core::{Exec, Request, RequestParams};
use oracle_guest_abi::exit_code::{BAD_PARAMS, BAD_PREIMAGE, BAD_STATE, PANIC};
use oracle_guest_abi::{keccak_key_from_digest as keccak_key, local_ident, local_key, transition};

const HEX: &[u8; 16] = b"0123456789abcdef";

#[global_allocator]
static HEAP: heap::Bump = heap::Bump::new();

/// Report on fd 2 and exit with `code`.
pub fn fail(code: u32, message: &str) -> ! {
    syscall::write(2, message.as_bytes());
    syscall::exit(code)
}

/// Commit the error outcome (the empty output) and exit 0: the result of a request
/// the model rejects. `why` goes to fd 2 for people reading a trace.
fn reject(why: &str) -> ! {
    syscall::write(2, why.as_bytes());
    syscall::commit_output(&rejected_commitment());
    syscall::exit(0)
}

fn hash32(bytes: &[u8]) -> Hash {
    match bytes.try_into() {
        Ok(h) => h,
        Err(_) => fail(BAD_PREIMAGE, "expected a 32-byte value"),
    }
}

/// Fill `out` (whole chunks, `first` onwards) from the subtree `node` of `height`.
fn fetch_subtree(node: &Hash, height: u32, first: usize, n_chunks: usize, out: &mut [u8]) {
    if first >= n_chunks {
        return;
    }
    if height == 0 {
        let at = first * CHUNK_SIZE;
        if !syscall::preimage_into(&keccak_key(node), &mut out[at..at + CHUNK_SIZE]) {
            fail(BAD_PREIMAGE, "model chunk of the wrong size");
        }
        return;
    }
    let pre = syscall::preimage(&keccak_key(node));
    if pre.len() != 64 {
        fail(BAD_PREIMAGE, "model tree node of the wrong size");
    }
    let half = 1usize << (height - 1);
    fetch_subtree(&hash32(&pre[..32]), height - 1, first, n_chunks, out);
    fetch_subtree(&hash32(&pre[32..]), height - 1, first + half, n_chunks, out);
}

/// The model file committed to by `root`.
fn fetch_model(root: &Hash) -> Vec<u8> {
    let head = syscall::preimage(&keccak_key(root));
    if head.len() != 40 {
        fail(BAD_PREIMAGE, "model root preimage is not 40 bytes");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&head[32..40]);
    let len = u64::from_be_bytes(len);
    if len > GUEST_MEMORY_BUDGET {
        reject("the model is larger than the guest's memory budget");
    }
    let len = len as usize;
    let n = chunk_count(len);
    let height = n.next_power_of_two().trailing_zeros();
    let mut data = vec![0u8; n * CHUNK_SIZE];
    fetch_subtree(&hash32(&head[..32]), height, 0, n, &mut data);
    data.truncate(len);
    data
}

/// The model committed to by `root`, parsed and held to the guest's memory
/// budget (file, decoded copies and one request's run state, computed before the
/// run state is allocated); a file that does not load or needs more rejects the
/// request.
fn load_model(bytes: &[u8]) -> Model<'_> {
    let model = match Model::load(bytes) {
        Ok(m) => m,
        Err(_) => reject("the model file does not load"),
    };
    if !model.footprint().fits(GUEST_MEMORY_BUDGET) {
        reject("the model needs more memory than the guest's budget");
    }
    model
}

/// The keccak preimage of `hash` (the VM checks it against the key).
fn keccak_preimage(hash: &Hash) -> Vec<u8> {
    syscall::preimage(&keccak_key(hash))
}

/// The decode state `P_t` named by local 4; it must commit to the game's model. A
/// pre-state that is the error outcome's commitment `E` (a rejected request) is a
/// fixed point: commit `E` again.
fn pre_state(model_root: &Hash) -> (Hash, PositionState) {
    let hash = hash32(&syscall::preimage(&local_key(local_ident::PRE_STATE)));
    if hash == rejected_commitment() {
        reject("the request was rejected at init");
    }
    match PositionState::decode(&keccak_preimage(&hash)) {
        Ok(state) if &state.model_root == model_root => (hash, state),
        _ => fail(
            BAD_STATE,
            "the pre-state is not a decode state of this model",
        ),
    }
}

/// Mode 1: the request's first decode state `P_0` (the transition modes are the
/// text models': `params` are text parameters).
fn init(model_root: &Hash, params: &[u8], input: &[u8]) -> ! {
    let Some(params) = TextParams::decode(params) else {
        fail(BAD_PARAMS, "request parameters are not 20 bytes")
    };
    let request = Request::new(input, RequestParams::Text(params));
    let bytes = fetch_model(model_root);
    let model = load_model(&bytes);
    match Decoder::start(&model.weights, &model.tokenizer, *model_root, &request) {
        Ok(d) => syscall::commit_output(&d.state().hash()),
        Err(_) => reject("the request was rejected"),
    }
    syscall::exit(0)
}

/// Mode 2: one position, `P_t` → `P_{t+1}`.
fn position(model_root: &Hash) -> ! {
    let (hash, state) = pre_state(model_root);
    let bytes = fetch_model(&state.model_root);
    let model = load_model(&bytes);
    let restored = Decoder::restore(
        &model.weights,
        &model.tokenizer,
        &state.model_root,
        &hash,
        |h| Some(keccak_preimage(h)),
    );
    let mut decoder = match restored {
        Ok(d) => d,
        Err(_) => fail(BAD_STATE, "the pre-state cannot be restored"),
    };
    if decoder.step(Exec::SCALAR).is_err() {
        fail(BAD_STATE, "the position cannot run");
    }
    syscall::commit_output(&decoder.state().hash());
    syscall::exit(0)
}

/// Mode 3: the final state's output commitment.
fn output(model_root: &Hash) -> ! {
    let (_, state) = pre_state(model_root);
    if !state.done {
        fail(BAD_STATE, "the output step needs a done state");
    }
    let tokens = match decode_tokens(&keccak_preimage(&state.tokens_hash)) {
        Ok(t) => t,
        Err(_) => fail(BAD_STATE, "the token list is malformed"),
    };
    let bytes = fetch_model(&state.model_root);
    let model = load_model(&bytes);
    let text = text_output(&tokens_text(&model.tokenizer, &tokens));
    syscall::write(1, &text);
    syscall::commit_output(&commitment(&text));
    syscall::exit(0)
}

#[no_mangle]
extern "C" fn _start() -> ! {
    let model_root = hash32(&syscall::preimage(&local_key(local_ident::MODEL_ROOT)));
    let input_hash = hash32(&syscall::preimage(&local_key(local_ident::INPUT_HASH)));
    let params = syscall::preimage(&local_key(local_ident::SAMPLING_PARAMS));
    let input = syscall::preimage(&keccak_key(&input_hash));
    let (params, mode) = match params.len() {
        20 => (&params[..], None),
        21 => (&params[..20], Some(params[20])),
        _ => fail(BAD_PARAMS, "request parameters are not 20 bytes"),
    };
    match mode {
        None => {}
        Some(transition::INIT) => init(&model_root, params, &input),
        Some(transition::POSITION) => position(&model_root),
        Some(transition::OUTPUT) => output(&model_root),
        Some(_) => fail(BAD_PARAMS, "unknown transition mode"),
    }
    let bytes = fetch_model(&model_root);
    if oracle_core::footprint::check(&bytes, GUEST_MEMORY_BUDGET).is_err() {
        reject("the model does not load, or needs more memory than the guest's budget");
    }
    // The whole request, exactly as `oracle run` runs it (`oracle_core::model::outcome::run`).
    match run(&bytes, Exec::SCALAR, params, &input, |_| {}) {
        Outcome::Text {
            output,
            logits_hash,
            ..
        } => {
            syscall::write(1, &output);
            syscall::commit_output(&commitment(&output));
            // For the cross-target golden tests: the hash of the sampling positions' logits, on fd 2.
            let mut line = Vec::with_capacity(76);
            line.extend_from_slice(b"logits 0x");
            for b in logits_hash {
                line.push(HEX[usize::from(b >> 4)]);
                line.push(HEX[usize::from(b & 15)]);
            }
            line.push(b'\n');
            syscall::write(2, &line);
        }
        Outcome::Image { png } => {
            syscall::write(1, &png);
            syscall::commit_output(&commitment(&posted_output(&png)));
        }
        Outcome::Rejected(_) => reject("the request was rejected"),
    }
    syscall::exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail(PANIC, "guest panic")
}
