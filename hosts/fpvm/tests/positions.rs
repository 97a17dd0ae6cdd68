//! The guest's transition modes (the second phase of the two-phase dispute game):
//! in the VM, the init transition commits the native `P_0`, one position from `P_t`
//! commits the native `P_{t+1}` (for positions inside the prompt, after it, and the
//! last), and the output transition commits the whole request's output hash, for
//! both bundled models, greedy and seeded. Prints the VM steps of each transition
//! (the phase-2 trace length).

use std::sync::{Arc, OnceLock};

use oracle_core::merkle::{keccak, model_root, to_hex, Hash};
use oracle_core::position::Decoder;
use oracle_core::quant::QType;
use oracle_core::{Exec, Model, Request, SamplingParams};
use oracle_fpvm::preimage::{init_oracle, output_oracle, position_oracle, InMemoryOracle};
use oracle_fpvm::{DebugSink, Vm};
use oracle_tests::LLAMA_FIXTURES;

fn guest_elf() -> &'static [u8] {
    static ELF: OnceLock<Vec<u8>> = OnceLock::new();
    ELF.get_or_init(oracle_tests::guest_elf)
}

/// Run the guest on `oracle` to its exit: (exit code, output commitment, steps).
fn run(oracle: InMemoryOracle) -> (u32, Hash, u64) {
    let mut vm = Vm::from_elf(guest_elf(), Arc::new(oracle)).expect("guest loads");
    vm.debug = DebugSink::Buffer(Vec::new());
    vm.run(u64::MAX).expect("no host error");
    assert_eq!(vm.cpu.status, 1, "exited");
    (vm.cpu.exit_code, vm.cpu.output, vm.cpu.step)
}

#[test]
fn each_transition_in_the_vm_commits_the_native_state() {
    let seeded = SamplingParams {
        temperature_q16: 52429,
        top_p_q16: 58982,
        seed: 11,
    };
    for fixture in LLAMA_FIXTURES {
        let bytes = fixture.model_file(QType::Q8);
        let root = model_root(&bytes);
        let model = Model::load(&bytes).unwrap();
        for sampling in [SamplingParams::GREEDY, seeded] {
            let request = Request {
                prompt: b"Once upon a time",
                steps: 24,
                sampling,
            };
            let label = format!("{} seed {}", fixture.name, sampling.seed);
            // Native chain P_0..P_T, keeping the decoders to serve as checkpoints.
            let mut decoders =
                vec![Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap()];
            while decoders.len() <= 24 {
                let mut d = decoders.last().unwrap().clone();
                d.step(Exec::default()).unwrap();
                decoders.push(d);
            }
            let (code, out, steps) = run(init_oracle(&bytes, &request));
            assert_eq!((code, out), (0, decoders[0].state().hash()), "{label} init");
            eprintln!("{label}: init {steps} steps");
            // Inside the prompt (forced tokens), right after it, and the last.
            for t in [0usize, 3, 5, 14, 23] {
                let (code, out, steps) = run(position_oracle(&bytes, &request, &decoders[t]));
                assert_eq!(
                    (code, to_hex(&out)),
                    (0, to_hex(&decoders[t + 1].state().hash())),
                    "{label} position {t}"
                );
                eprintln!("{label}: position {t} {steps} steps");
            }
            let native = model.generate(Exec::default(), &request, |_| {}).unwrap();
            let mut text = native.text.clone();
            text.push(b'\n');
            let last = decoders.last().unwrap();
            assert!(last.done());
            let (code, out, steps) = run(output_oracle(&bytes, &request, last));
            assert_eq!((code, out), (0, keccak(&text)), "{label} output");
            eprintln!("{label}: output {steps} steps");
        }
    }
}

#[test]
fn transitions_refuse_bad_pre_states() {
    let bytes = LLAMA_FIXTURES[1].model_file(QType::Q8);
    let root = model_root(&bytes);
    let model = Model::load(&bytes).unwrap();
    let request = Request {
        prompt: b"Hi",
        steps: 6,
        sampling: SamplingParams::GREEDY,
    };
    let d = Decoder::start(&model.weights, &model.tokenizer, root, &request).unwrap();
    // The output step of a state that is not done.
    let (code, _, _) = run(output_oracle(&bytes, &request, &d));
    assert_eq!(code, 6);
    // A pre-state of another model root than the game's (local 1).
    let other = Decoder::start(&model.weights, &model.tokenizer, [9; 32], &request).unwrap();
    let (code, _, _) = run(position_oracle(&bytes, &request, &other));
    assert_eq!(code, 6);
    // An unknown mode byte.
    let mut oracle = init_oracle(&bytes, &request);
    let mut params = request.encode_params().to_vec();
    params.push(9);
    oracle.insert_local(oracle_fpvm::layout::local_ident::SAMPLING_PARAMS, params);
    let (code, _, _) = run(oracle);
    assert_eq!(code, 2);
}

/// `fpvm run --position T` prints the native `P_{T+1}` and the VM's output
/// commitment, and they agree; `--output-step` commits what the whole run commits.
#[test]
fn cli_runs_one_position_and_the_output_step() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("stories-q8.bin");
    std::fs::write(&model, LLAMA_FIXTURES[0].model_file(QType::Q8)).unwrap();
    let elf = dir.path().join("guest.elf");
    std::fs::write(&elf, guest_elf()).unwrap();
    let run = |extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_fpvm"))
            .args(["run", "--prompt", "Lily", "--steps", "12", "--model"])
            .arg(&model)
            .arg("--elf")
            .arg(&elf)
            .args(extra)
            .output()
            .expect("run fpvm");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let field = |text: &str, name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line[name.len()..].trim().to_string()
    };
    let err = run(&["--position", "4"]);
    assert_eq!(
        field(&err, "output commitment:"),
        field(&err, "native P_5:")
    );
    let out = run(&["--output-step"]);
    let whole = run(&[]);
    assert_eq!(
        field(&out, "native output:"),
        field(&out, "output commitment:")
    );
    assert_eq!(
        field(&out, "output commitment:"),
        field(&whole, "output commitment:")
    );
}
