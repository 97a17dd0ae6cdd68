//! A whole dispute game on a real anvil, against a real guest trace: the stories260K W8 model,
//! the real guest ELF, a short greedy request. Results and challenges carry their 245-byte final
//! VM state (`Vm::encode_state`), which binds the claim to the output on chain. The honest side
//! answers every bisection query from `oracle_fpvm` checkpoints and proves the final step with an
//! `fpvm` witness executed by `RISCV.step` through the game; the liar follows the true trace up to
//! a point and its own after it. Two games: an honest operator against a lying challenger, and a lying operator
//! against an honest challenger. Each must end with the honest side winning, AIOracle applying
//! the outcome (the honest output is what finalizes) and the bonds moving to the winner. Prints
//! the moves and the gas per side (receipts' `gasUsed`, 21,000 base included). A third game: the
//! challenger stops answering and the operator wins on time (`claimTimeout`).

use std::sync::Arc;

use alloy::{
    primitives::{keccak256, Address, Bytes, B256, U256},
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
};
use oracle_contracts::{
    devnet::{transact, DevnetConfig},
    game::{Bisection, GameClient, Side, Status},
    testing::{advance, challenge, deploy_bonded, now, request, spawn_anvil, submit},
    AIOracle,
};
use oracle_core::llama::Model;
use oracle_core::quant::QType;
use oracle_core::{Exec, Request, SamplingParams};
use oracle_fpvm::layout::state as off;
use oracle_fpvm::state::state_hash;
use oracle_fpvm::{Checkpoints, SharedOracle, Vm};
use oracle_node::strategy::{decide, Action};
use oracle_tests::{guest_elf, LLAMA_FIXTURES};
use oracle_vm_host::guest_oracle;

const PROMPT: &[u8] = b"Once upon a time";
const POSITIONS: u32 = 4;

/// The true trace of the request, answered from checkpoints.
struct Trace {
    cp: Checkpoints,
    total: u64,
    final_state: Vec<u8>,
    final_hash: B256,
    output: Vec<u8>,
}

impl Trace {
    fn hash_at(&self, i: u64) -> B256 {
        if i >= self.total {
            return self.final_hash;
        }
        let mut vm = self.cp.vm_at(i).expect("replay from a checkpoint");
        B256::from(vm.state_hash())
    }
}

/// A liar: the true trace below `from`, its own running states from there, its claim at `top`.
struct Liar<'a> {
    truth: &'a Trace,
    from: u64,
    top: u64,
    final_state: Vec<u8>,
    final_hash: B256,
    output: Vec<u8>,
}

impl Liar<'_> {
    fn new(truth: &Trace, from: u64, top: u64) -> Liar<'_> {
        let output = b"Once upon a time there was a lie.\n".to_vec();
        let mut fs = truth.final_state.clone();
        fs[off::OUTPUT..off::OUTPUT + 32].copy_from_slice(keccak256(&output).as_slice());
        let enc: [u8; off::SIZE] = fs.as_slice().try_into().expect("state size");
        Liar {
            truth,
            from,
            top,
            final_hash: B256::from(state_hash(&enc)),
            final_state: fs,
            output,
        }
    }

    fn hash_at(&self, i: u64) -> B256 {
        if i < self.from {
            return self.truth.hash_at(i);
        }
        if i >= self.top {
            return self.final_hash;
        }
        let mut h = keccak256([b"lie".as_slice(), &i.to_be_bytes()].concat());
        h.0[0] = 3; // a running state
        h
    }
}

fn true_trace(model: &[u8], elf: &[u8]) -> (Trace, B256) {
    let request = Request::text(PROMPT, POSITIONS, SamplingParams::GREEDY);
    let loaded = Model::load(model).expect("model loads");
    let mut output = loaded
        .generate(Exec::default(), &request, |_| {})
        .expect("native run")
        .text;
    output.push(b'\n');
    let oracle: SharedOracle = Arc::new(guest_oracle(model, &request));
    let mut vm = Vm::from_elf(elf, oracle).expect("guest loads");
    let program = B256::from(vm.state_hash());
    let cp = Checkpoints::record(&mut vm, 1 << 20, u64::MAX).expect("guest runs");
    assert_eq!((vm.cpu.status, vm.cpu.exit_code), (1, 0), "guest exits 0");
    assert_eq!(
        vm.cpu.output,
        *keccak256(&output),
        "VM output = native output"
    );
    let trace = Trace {
        total: vm.cpu.step,
        final_state: vm.encode_state().to_vec(),
        final_hash: B256::from(vm.state_hash()),
        output,
        cp,
    };
    (trace, program)
}

/// What the games of the test share: the chain, the model, the players and the true trace.
struct Setup<'a, P> {
    provider: &'a P,
    oracle: &'a AIOracle::AIOracleInstance<P>,
    model_id: U256,
    user: Address,
    operator: Address,
    challenger: Address,
    truth: &'a Trace,
}

impl<P: Provider> Setup<'_, P> {
    /// A request by the user, the operator's submission of `submitted` (output, final state) and
    /// the challenger's challenge with `challenged`: the request id, the dispute id and the
    /// challenge's receipt. The claims are the final states' hashes, computed on chain.
    async fn dispute(
        &self,
        (output, state): (&[u8], &[u8]),
        (ch_output, ch_state): (&[u8], &[u8]),
    ) -> (U256, U256, TransactionReceipt) {
        let oracle = self.oracle;
        let id = request(oracle, self.model_id, PROMPT, Address::ZERO, self.user)
            .await
            .unwrap();
        submit(oracle, id, output, state, self.operator)
            .await
            .unwrap();
        let (did, r) = challenge(oracle, id, PROMPT, ch_output, ch_state, self.challenger)
            .await
            .unwrap();
        (id, did, r)
    }
}

/// Gas and transactions of one side.
#[derive(Default, Debug)]
struct Tally {
    txs: u64,
    gas: u64,
}

#[tokio::test(flavor = "current_thread")]
async fn whole_game_against_the_real_guest_trace() {
    let elf = guest_elf();
    let model = LLAMA_FIXTURES[0].model_file(QType::Q8);
    let (truth, program) = true_trace(&model, &elf);
    println!(
        "stories260K W8, {POSITIONS} greedy positions: {} VM steps, {} checkpoints",
        truth.total,
        truth.cp.len()
    );

    let anvil = spawn_anvil(0, &[]).unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let accounts = anvil.addresses();
    let (deployer, operator, challenger, user) =
        (accounts[0], accounts[1], accounts[2], accounts[3]);

    let mut config = DevnetConfig::default();
    config.model.modelRoot = B256::from(oracle_core::commit::merkle::model_root(&model));
    config.model.programHash = program;
    config.sampling_params = Request::text(PROMPT, POSITIONS, SamplingParams::GREEDY)
        .encode_params()
        .to_vec();
    let depth = config.game_max_depth;
    let top = 1u64 << depth;
    assert!(truth.total < top, "the trace fits the bound");
    let (d, oracle) = deploy_bonded(&provider, deployer, operator, &config)
        .await
        .unwrap();
    let setup = Setup {
        provider: &provider,
        oracle: &oracle,
        model_id: d.model_id,
        user,
        operator,
        challenger,
        truth: &truth,
    };

    // game 1: honest operator, lying challenger (departs a third of the way in);
    // game 2: lying operator (departs 1000 steps before the end), honest challenger
    for (what, lie_from, operator_honest, honest_side) in [
        (
            "honest operator vs lying challenger",
            truth.total / 3,
            true,
            Side::Defender,
        ),
        (
            "lying operator vs honest challenger",
            truth.total - 1000,
            false,
            Side::Challenger,
        ),
    ] {
        let liar = Liar::new(&truth, lie_from, top);
        let (winner, def, chal) = play_one(&setup, &liar, operator_honest).await;
        assert_eq!(winner, honest_side);
        report(what, depth, &def, &chal);
    }

    // game 3: the challenger stops answering after its challenge; the operator claims the timeout
    let liar = Liar::new(&truth, truth.total - 1000, top);
    silent_challenger_loses_on_time(&setup, &liar).await;
}

async fn silent_challenger_loses_on_time<P: Provider + Clone>(
    setup: &Setup<'_, P>,
    liar: &Liar<'_>,
) {
    let &Setup {
        provider,
        oracle,
        user,
        operator,
        truth,
        ..
    } = setup;
    let (id, did, _) = setup
        .dispute(
            (&truth.output, &truth.final_state),
            (&liar.output, &liar.final_state),
        )
        .await;
    // the claims are the hashes of the posted final states
    assert_eq!(
        oracle.getResult(id).call().await.unwrap().claim,
        truth.final_hash
    );
    assert_eq!(
        oracle.getDispute(did).call().await.unwrap().claim,
        liar.final_hash
    );
    let game = GameClient::of_dispute(oracle, did, provider.clone())
        .await
        .unwrap();
    let hash_at = |i: u64| Ok::<_, std::convert::Infallible>(truth.hash_at(i));
    let s = game.state().await.unwrap();
    assert_eq!(
        decide(&s, Side::Defender, now(provider).await.unwrap(), hash_at).unwrap(),
        Action::Wait
    );
    let clock = s.challenger_clock;
    advance(provider, u64::from(clock) + 1).await.unwrap();
    let s = game.state().await.unwrap();
    assert_eq!(
        decide(&s, Side::Defender, now(provider).await.unwrap(), hash_at).unwrap(),
        Action::ClaimTimeout
    );
    let r = game.claim_timeout(operator).await.unwrap();
    println!(
        "silent challenger: claimTimeout after {clock} s, {} gas",
        r.gas_used
    );
    assert_eq!(game.state().await.unwrap().winner(), Some(Side::Defender));
    transact(oracle.resolveDispute(did).from(user), "resolveDispute")
        .await
        .unwrap();
}

fn report(what: &str, depth: u8, def: &Tally, chal: &Tally) {
    println!(
        "{what} (depth {depth}): {} transactions; defender {} txs {} gas, challenger {} txs {} gas (challenge included), total {} gas",
        def.txs + chal.txs,
        def.txs,
        def.gas,
        chal.txs,
        chal.gas,
        def.gas + chal.gas
    );
}

/// Request, submit, challenge, play to the end, resolve, finalize. Returns the winner and the
/// gas per side.
async fn play_one<P: Provider + Clone>(
    setup: &Setup<'_, P>,
    liar: &Liar<'_>,
    operator_honest: bool,
) -> (Side, Tally, Tally) {
    let &Setup {
        provider,
        oracle,
        model_id,
        user,
        operator,
        challenger,
        truth,
    } = setup;
    let (mut def, mut chal) = (Tally::default(), Tally::default());
    let (honest, lying) = (
        (truth.output.as_slice(), truth.final_state.as_slice()),
        (liar.output.as_slice(), liar.final_state.as_slice()),
    );
    let (submitted, challenged) = if operator_honest {
        (honest, lying)
    } else {
        (lying, honest)
    };
    let (id, did, r) = setup.dispute(submitted, challenged).await;
    chal.txs += 1;
    chal.gas += r.gas_used;
    println!(
        "challenge (opens the game, writes its local data): {} gas",
        r.gas_used
    );

    let game = GameClient::of_dispute(oracle, did, provider.clone())
        .await
        .unwrap();
    assert_eq!(game.side_of(operator).await.unwrap(), Some(Side::Defender));

    loop {
        let s = game.state().await.unwrap();
        if s.status != Status::InProgress {
            break;
        }
        let me = s.to_move;
        let honest = (me == Side::Defender) == operator_honest;
        let from = if me == Side::Defender {
            operator
        } else {
            challenger
        };
        let action = decide(&s, me, 0, |i| {
            Ok::<_, std::convert::Infallible>(if honest {
                truth.hash_at(i)
            } else {
                liar.hash_at(i)
            })
        })
        .unwrap();
        let r = match action {
            Action::Move {
                agree, mid_hash, ..
            } => game.make_move(from, agree, mid_hash).await.unwrap(),
            Action::Step { pre } => {
                // the step is the true one whoever sends it: the chain executes it
                let w = truth.cp.witness_at(pre).expect("witness from checkpoints");
                let r = game.step(from, w.state, w.proof).await.unwrap();
                println!("final step from {pre}: {} gas", r.gas_used);
                r
            }
            other => panic!("unexpected action {other:?}"),
        };
        let t = if me == Side::Defender {
            &mut def
        } else {
            &mut chal
        };
        t.txs += 1;
        t.gas += r.gas_used;
    }
    let winner = game.state().await.unwrap().winner().expect("over");

    transact(oracle.resolveDispute(did).from(user), "resolveDispute")
        .await
        .unwrap();
    let window = oracle
        .getModel(model_id)
        .call()
        .await
        .unwrap()
        .challengeWindow;
    advance(provider, u64::from(window) + 1).await.unwrap();
    // the honest output finalizes
    let finalize = oracle
        .finalize(
            id,
            keccak256(PROMPT),
            Address::ZERO,
            Bytes::new(),
            Bytes::from(truth.output.clone()),
        )
        .from(user);
    transact(finalize, "finalize").await.unwrap();
    assert_eq!(
        oracle.getResult(id).call().await.unwrap().outputHash,
        keccak256(&truth.output)
    );
    if winner == Side::Challenger {
        // the honest challenger's held bond and its share of the pot (the slashed submission bond)
        let bond = U256::from(oracle.challengeBond().call().await.unwrap());
        let share = oracle.getPot(id).call().await.unwrap().share;
        let owed = oracle.claimableReward(did).call().await.unwrap();
        assert_eq!(owed, bond + U256::from(share));
        assert!(share > 0);
        transact(oracle.claimReward(did).from(user), "claimReward")
            .await
            .unwrap();
        assert_eq!(
            oracle.claimableReward(did).call().await.unwrap(),
            U256::ZERO
        );
    }
    (winner, def, chal)
}
