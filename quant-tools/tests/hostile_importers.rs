//! The hostile checkpoints, tokenizers and `.pth` files of `tests/hostile/` are
//! refused by the importers (and the exporter) with the error they were crafted
//! for, never a panic, on a small stack, allocating at most a small multiple of
//! their bytes. Each finding of the crafted-input review is one of them: a
//! deep-cloning pickle memo, a stride-0 view, a recursive drop, a 32-byte value
//! per GGUF array byte, aliased GGUF tensors, a RoPE table sized by the header.

use oracle_core::quant::QType;
use oracle_quant::checkpoint::{self, tokenizer, CheckpointError};
use oracle_quant::diffusion::pickle;
use oracle_quant::diffusion::pth::{self, parse_state_dict};
use oracle_quant::export::{export, QuantOptions};
use oracle_tests::counting_alloc::{alloc_peak, CountingAlloc};
use oracle_tests::hostile::{committed, tok512, Class, Committed};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// What an importer may allocate for `len` bytes of input: 8 per byte, and for
/// a `.pth` file its design bounds, 64 per byte for the zip entries and tensors
/// (`pth::BUDGET_FACTOR`) plus 32 per pickle byte for the values it builds
/// (`pickle::BUILD_FACTOR`).
fn bound(class: Class, len: u64) -> usize {
    let per_byte = if class == Class::Pth {
        pth::BUDGET_FACTOR + pickle::BUILD_FACTOR
    } else {
        8
    };
    (per_byte * len + (16 << 20)) as usize
}

/// Bytes of a file, or of a folder's files.
fn input_len(c: &Committed) -> u64 {
    if c.path.is_dir() {
        std::fs::read_dir(&c.path)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(&c.path).map(|m| m.len()).unwrap_or(0)
    }
}

/// Run `f` on a thread with a 1 MiB stack (a recursion the input controls
/// overflows it); its result and its peak allocation.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> (T, usize) {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || alloc_peak(f))
        .expect("spawn")
        .join()
        .expect("no panic")
}

/// Check every file of `class` with `import`.
fn check_class(
    class: Class,
    import: impl Fn(&Committed) -> Result<(), String> + Send + Sync + Clone + 'static,
) {
    let files = committed(class);
    assert!(!files.is_empty(), "no {class:?} files");
    for c in files {
        let len = input_len(&c);
        let (import, file) = (import.clone(), c.clone());
        let (result, peak) = on_small_stack(move || import(&file));
        let err = result.expect_err(&format!("{}: {} was accepted", c.path.display(), c.what));
        assert!(
            err.contains(c.error),
            "{}: error {err:?} lacks {:?}",
            c.path.display(),
            c.error
        );
        assert!(
            peak <= bound(class, len),
            "{}: {peak} bytes allocated for {len} bytes ({err})",
            c.path.display()
        );
    }
}

/// Import a checkpoint with tok512 and export it as Q8.
fn convert(c: &Committed) -> Result<(), String> {
    let bytes = std::fs::read(&c.path).map_err(|e| e.to_string())?;
    let mut model = checkpoint::parse_bytes(&bytes, None).map_err(|e| e.to_string())?;
    model.tokenizer = Some(tokenizer::load(&tok512()).map_err(|e| e.to_string())?);
    export(&model, QuantOptions::for_type(QType::Q8), |_, _| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn hostile_llama2c_checkpoints_are_refused() {
    check_class(Class::Llama2c, convert);
}

#[test]
fn hostile_gguf_checkpoints_are_refused() {
    check_class(Class::Gguf, convert);
}

#[test]
fn hostile_safetensors_folders_are_refused() {
    check_class(Class::Safetensors, |c| {
        checkpoint::load(&c.path, None)
            .map(|_| ())
            .map_err(|e: CheckpointError| e.to_string())
    });
}

#[test]
fn hostile_tokenizers_are_refused() {
    check_class(Class::Tokenizer, |c| {
        tokenizer::load(&c.path)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
}

#[test]
fn hostile_pth_files_are_refused() {
    check_class(Class::Pth, |c| {
        let bytes = std::fs::read(&c.path).map_err(|e| e.to_string())?;
        parse_state_dict(&bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
}
