//! Dispute games played by the node on a real chain (anvil, the real contracts and
//! game factory, the real guest and stories260K): a lying operator loses to the
//! validator at one VM step executed on chain and the true result is delivered; a
//! lying challenger loses to the operator; a player that stops answering loses on
//! time. The liars are the test-only switches (`--corrupt-output-for-tests`,
//! `--challenge-correct-for-tests`): they answer another prompt, with a consistent
//! VM trace, so the game must bisect down to the step where the traces part.

mod common;

use std::process::Stdio;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use common::{append, assets, start_anvil, status, wait_for, Chain, Proc, GAME_CLOCK, STEPS};
use oracle_contracts::game::{Bisection, GameClient, PositionGameClient, Side, Status};
use oracle_contracts::testing::advance;
use oracle_contracts::{AIOracle, DisputeGame, Prompt};
use oracle_core::llama::Model;
use oracle_core::{Exec, Request, SamplingParams};

/// AIOracle numbers disputes from 1.
const FIRST_DISPUTE: U256 = U256::from_limbs([1, 0, 0, 0]);

/// Long enough for re-execution, the whole game and a second window.
const FINAL: Duration = Duration::from_secs(240);

/// What `oracle run` prints for `prompt` (the honest output).
fn honest_output(prompt: &str) -> Vec<u8> {
    let (model, _) = assets();
    let model = Model::load(model).unwrap();
    let request = Request::text(
        prompt.as_bytes(),
        STEPS.parse().unwrap(),
        SamplingParams::GREEDY,
    );
    let mut text = model
        .generate(Exec::default(), &request, |_| {})
        .unwrap()
        .text;
    text.push(b'\n');
    text
}

/// The game of the first dispute: its state.
async fn game_state(chain: &Chain) -> oracle_contracts::game::GameState {
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let game = GameClient::of_dispute(&oracle, FIRST_DISPUTE, &chain.provider)
        .await
        .unwrap();
    game.state().await.unwrap()
}

/// The result the Prompt contract received for `prompt`.
async fn delivered(chain: &Chain, prompt: &str) -> Vec<u8> {
    let p = Prompt::new(chain.prompt, &chain.provider);
    let r = p
        .getAIResult(chain.model_id, prompt.to_string())
        .call()
        .await
        .unwrap();
    r.into_bytes()
}

/// Assert that operator 1 (the liar) has less bond than `before`.
async fn assert_slashed(chain: &Chain, before: U256) {
    assert!(
        operator_bond(chain, 1).await < before,
        "the liar's bond is slashed"
    );
}

async fn operator_bond(chain: &Chain, account: usize) -> U256 {
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    oracle
        .getOperator(chain.accounts[account].0)
        .call()
        .await
        .unwrap()
        .bond
        .to::<U256>()
}

/// A lying operator is challenged; the validator is killed mid-game and restarted
/// (it resumes from its database); the game ends at one step executed on chain; the
/// operator loses its bond and the Prompt contract receives the true text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_operator_loses_its_game_and_the_true_result_is_delivered() {
    let chain = Chain::new(20).await;
    let bond_before = operator_bond(&chain, 1).await;
    let mut liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
        Stdio::null(),
    );
    let log = chain.path("validator.log");
    let spawn_validator =
        |log: &std::path::Path| chain.spawn("validator", 3, "val.redb", &[], append(log));
    let mut validator = spawn_validator(&log);
    let prompt = "Once upon a time";
    let id = chain.ask(prompt).await;
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the first moves", FINAL, || {
        text().matches("the midpoint").count() >= 3
    })
    .await;
    // a real kill mid-game: the restarted validator carries on from its database
    validator.crash();
    validator = spawn_validator(&log);

    chain.wait_final(id, FINAL).await;
    assert_eq!(delivered(&chain, prompt).await, honest_output(prompt));
    assert_eq!(chain.resolutions().await, vec![(FIRST_DISPUTE, true)]);
    let state = game_state(&chain).await;
    assert_eq!(state.status, Status::ChallengerWins);
    assert_eq!(state.hi - state.lo, 1, "decided at one step: {state:?}");
    assert!(
        text().contains("executing it on chain"),
        "the validator executed the final step: {}",
        text()
    );
    assert_slashed(&chain, bond_before).await;
    validator.stop();
    liar.stop();
}

/// The two-phase game: a lying operator whose text differs from the truth from
/// one token on (its chain of position states is true up to that position and
/// consistent after it) is challenged; phase 1 finds the position of the lie, and
/// the VM game of that one token's forward pass, from the agreed state before it,
/// settles the dispute at one step executed on chain, with the validator killed
/// and restarted in the middle of that game. The operator loses its bond and the
/// Prompt contract receives the true text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_token_lie_is_found_at_its_position_and_settled_by_that_token_alone() {
    let chain = Chain::two_phase(20).await;
    let bond_before = operator_bond(&chain, 1).await;
    // the liar answers slowly (a poll every 1.5 s), so the validator can be killed
    // in the middle of the phase-2 game
    let mut liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests", "--poll-ms", "1500"],
        Stdio::null(),
    );
    let log = chain.path("validator.log");
    let restarted_log = chain.path("validator-restarted.log");
    let spawn_validator = |log: &std::path::Path| {
        let file = std::fs::File::create(log).unwrap();
        chain.spawn("validator", 3, "val.redb", &[], file)
    };
    let mut validator = spawn_validator(&log);
    let prompt = "Once upon a time";
    let started = std::time::Instant::now();
    let id = chain.ask(prompt).await;
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    wait_for("the validator's claim of the transition", FINAL, || {
        read(&log).contains("phase 1 settled")
    })
    .await;
    // a real kill mid-game: the restarted validator finds the game in its database
    // and the phase-2 game on chain, records its trace of the transition again and
    // plays on
    validator.crash();
    validator = spawn_validator(&restarted_log);
    wait_for("the dispute's resolution", FINAL, || {
        read(&restarted_log).contains("WON in")
    })
    .await;
    let resolved = started.elapsed();
    chain.wait_final(id, FINAL).await;
    let restarted = read(&restarted_log);
    assert!(
        restarted.contains("recorded our trace of transition"),
        "the restarted validator rebuilt its phase-2 trace: {restarted}"
    );
    let text = read(&log) + &restarted;
    assert_eq!(delivered(&chain, prompt).await, honest_output(prompt));
    assert_eq!(chain.resolutions().await, vec![(FIRST_DISPUTE, true)]);

    // Where the liar lied: the middle of the generated part (its switch's rule).
    let (model, _) = assets();
    let model = Model::load(model).unwrap();
    let steps: u32 = STEPS.parse().unwrap();
    let prompt_len = model
        .tokenizer
        .encode(prompt.as_bytes(), Some(model.config.bos), None)
        .len() as u32;
    let stop = model
        .generate(
            Exec::default(),
            &Request::text(prompt.as_bytes(), steps, SamplingParams::GREEDY),
            |_| {},
        )
        .unwrap()
        .tokens
        .len() as u32
        - 1;
    let lie_at = (prompt_len - 1) + (stop.max(prompt_len) - prompt_len) / 2;

    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let game = oracle.getDispute(FIRST_DISPUTE).call().await.unwrap().game;
    let positions = PositionGameClient::new(game, chain.provider.clone());
    let phase1 = positions.state().await.unwrap();
    assert_eq!(phase1.status, Status::ChallengerWins);
    assert_eq!(
        (phase1.lo, phase1.hi),
        (u64::from(lie_at) + 1, u64::from(lie_at) + 2),
        "phase 1 ends at the transition of position {lie_at}: {phase1:?}"
    );
    let child = positions
        .transition_game()
        .await
        .unwrap()
        .expect("a VM game");
    let vm = GameClient::new(child, chain.provider.clone());
    let phase2 = vm.state().await.unwrap();
    // the VM game's defender is whoever owned the disputed commitment at the end of
    // phase 1: either side, depending on the moves
    let validator_side = vm.side_of(chain.accounts[3].0).await.unwrap();
    assert!(validator_side.is_some());
    assert_eq!(phase2.winner(), validator_side, "{phase2:?}");
    assert_eq!(phase2.hi - phase2.lo, 1, "decided at one step: {phase2:?}");
    let child_depth = DisputeGame::new(child, &chain.provider)
        .MAX_DEPTH()
        .call()
        .await
        .unwrap();
    assert_eq!(
        child_depth,
        oracle_contracts::devnet::DevnetConfig::default().game_transition_depth,
        "the phase-2 game is bounded by the transition depth"
    );
    assert!(
        text.contains(&format!("phase 1 settled on transition {}", lie_at + 1)),
        "{text}"
    );
    // the last step was executed on chain (by whichever side was to move)
    let steps = chain
        .provider
        .get_logs(
            &Filter::new()
                .address(child)
                .event_signature(DisputeGame::StepVerified::SIGNATURE_HASH)
                .from_block(0),
        )
        .await
        .unwrap();
    assert_eq!(steps.len(), 1, "one step verified on chain");
    let games = [game, child];
    let phase1_len = positions.length().await.unwrap();
    let (liar_gas, liar_txs) = chain.gas_of(chain.accounts[1].0, &games).await;
    let (honest_gas, honest_txs) = chain.gas_of(chain.accounts[3].0, &games).await;
    eprintln!(
        "two-phase game, {STEPS} positions: phase 1 ended at index {} of {}; phase-2 trace {} steps; \
         honest challenger {honest_txs} game txs, {honest_gas} gas (+ the challenge); \
         liar {liar_txs} txs, {liar_gas} gas; request to resolution {:.1} s",
        phase1.lo,
        phase1_len,
        phase2.lo + 1,
        resolved.as_secs_f64()
    );
    assert!(honest_gas < 5_000_000, "honest side within 5M gas");
    // One token's forward pass, not the whole request (~100M steps for 16 positions).
    assert!(phase2.lo < 30_000_000, "{phase2:?}");
    assert_slashed(&chain, bond_before).await;
    validator.stop();
    liar.stop();
}

/// A correct result challenged with a false claim (one-phase game): the operator defends and wins,
/// and the correct result is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_operator_defends_against_a_lying_challenger() {
    honest_operator_vs_lying_challenger(Chain::new(20).await).await;
}

/// The same in a two-phase game: the liar's chain is wrong from one position on;
/// phase 1 ends at that position (a range of one index) and its VM game decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_operator_defends_a_two_phase_game_against_a_lying_challenger() {
    honest_operator_vs_lying_challenger(Chain::two_phase(20).await).await;
}

async fn honest_operator_vs_lying_challenger(chain: Chain) {
    let log = chain.path("operator.log");
    let mut operator = chain.spawn(
        "operator",
        1,
        "op.redb",
        &[],
        std::fs::File::create(&log).unwrap(),
    );
    let mut liar = chain.spawn(
        "validator",
        3,
        "liar.redb",
        &["--fault-challenge-correct-for-tests"],
        std::fs::File::create(chain.path("liar.log")).unwrap(),
    );
    let prompt = "Lily went";
    let id = chain.ask(prompt).await;
    chain.wait_final(id, FINAL).await;
    assert_eq!(delivered(&chain, prompt).await, honest_output(prompt));
    assert_eq!(chain.resolutions().await, vec![(FIRST_DISPUTE, false)]);
    let state = game_state(&chain).await;
    assert_eq!(state.status, Status::DefenderWins);
    assert_eq!(state.hi - state.lo, 1, "decided at one step: {state:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("WON"), "{text}");
    liar.stop();
    operator.stop();
}

/// A lying operator that stops answering once challenged loses on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_that_stops_answering_loses_on_time() {
    let chain = Chain::new(20).await;
    let mut liar = chain.spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
        Stdio::null(),
    );
    let mut validator = chain.spawn("validator", 3, "val.redb", &[], Stdio::null());
    let prompt = "The cat";
    let id = chain.ask(prompt).await;
    let oracle = AIOracle::new(chain.oracle, &chain.provider);
    let started = std::time::Instant::now();
    while oracle.getRequest(id).call().await.unwrap().status != 3 {
        assert!(started.elapsed() < FINAL, "no challenge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    liar.stop();
    // once the validator has moved, the liar's clock runs: advance the chain past it
    let game = GameClient::of_dispute(&oracle, FIRST_DISPUTE, &chain.provider)
        .await
        .unwrap();
    while game.state().await.unwrap().to_move != Side::Defender {
        assert!(started.elapsed() < FINAL, "the validator never moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    advance(&chain.provider, u64::from(GAME_CLOCK) + 5)
        .await
        .unwrap();
    chain.wait_final(id, FINAL).await;
    assert_eq!(chain.resolutions().await, vec![(FIRST_DISPUTE, true)]);
    let state = game_state(&chain).await;
    assert_eq!(state.status, Status::ChallengerWins);
    assert!(
        state.hi - state.lo > 1,
        "decided by the clock, not a step: {state:?}"
    );
    assert_eq!(delivered(&chain, prompt).await, honest_output(prompt));
    validator.stop();
}

/// A node serving other sampling parameters than the dispute game checks (here 8
/// positions where the factory holds 16) refuses the model: its claims would lose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_model_the_game_checks_with_other_parameters() {
    let chain = Chain::new(20).await;
    let log = chain.path("operator.log");
    let cmd = chain.node("operator", 1, "op.redb", &[]);
    let args: Vec<_> = cmd
        .get_args()
        .map(|a| if a == STEPS { "8".into() } else { a.to_owned() })
        .collect();
    let mut node = Proc(
        std::process::Command::new(cmd.get_program())
            .args(args)
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the refusal", FINAL, || {
        text().contains("would lose every dispute")
    })
    .await;
    assert!(text().contains("--steps 8"), "{}", text());
    node.stop();
}

/// A one-phase claim whose VM trace is longer than the factory's trace bound could
/// not be revealed in a game: the operator stops its VM run at the bound, does not
/// post the result, and records why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_does_not_post_a_claim_past_the_trace_bound() {
    let mut config = Chain::config(20, false, STEPS);
    // 2^20 steps, where a request of STEPS positions takes about 100M.
    config.game_max_depth = 20;
    let chain = Chain::stories(start_anvil(0, &[]), config).await;
    let log = chain.path("operator.log");
    let mut operator = chain.spawn(
        "operator",
        1,
        "op.redb",
        &[],
        std::fs::File::create(&log).unwrap(),
    );
    let id = chain.ask("Lily went").await;
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the operator gives the request up", FINAL, || {
        text().contains("failed: the guest did not halt within")
    })
    .await;
    operator.stop();
    assert!(chain.submissions(id).await.is_empty(), "nothing was posted");
    let s = status(&chain.path("op.redb"));
    assert!(
        s.contains(&format!(
            "request {id} model 1 failed: the guest did not halt within the dispute game's trace bound of 1048576 VM steps"
        )),
        "{s}"
    );
}

/// A chat model (the tiny Qwen2 with its byte-level BPE vocabulary and ChatML
/// template, registered with the chat flag in its parameters): a lying operator's
/// reply is challenged, the two-phase game (whose VM runs read the chat flag from
/// the request's parameters and tokenize the rendered template in the guest)
/// settles it, the liar is slashed and the true reply is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lie_about_a_chat_reply_loses_and_the_true_reply_is_delivered() {
    const CHAT_STEPS: &str = "64";
    let steps: u32 = CHAT_STEPS.parse().unwrap();
    let model = oracle_tests::LLAMA_FIXTURES
        .iter()
        .find(|f| f.name == "tiny-qwen2-bpe")
        .unwrap()
        .model_file(oracle_core::quant::QType::Q8);
    let (_, guest) = assets();
    let mut config = Chain::config(20, true, CHAT_STEPS);
    config.sampling_params = oracle_contracts::devnet::greedy_chat_params(steps, true);
    config.game_clock = GAME_CLOCK;
    let chain = Chain::deploy(start_anvil(0, &[]), "qwen-chat.bin", &model, guest, config).await;
    let bond_before = operator_bond(&chain, 1).await;
    let spawn = |role: &str, account: usize, db: &str, extra: &[&str], log: &str| {
        let file = std::fs::File::create(chain.path(log)).unwrap();
        common::Proc(
            chain
                .node_steps(role, account, db, CHAT_STEPS, extra)
                .stderr(file)
                .spawn()
                .unwrap(),
        )
    };
    let mut liar = spawn(
        "operator",
        1,
        "liar.redb",
        &["--fault-wrong-output-for-tests"],
        "liar.log",
    );
    let mut validator = spawn("validator", 3, "val.redb", &[], "validator.log");
    let prompt = "Hi!";
    let id = chain.ask(prompt).await;
    chain.wait_final(id, FINAL).await;

    let m = Model::load(&model).unwrap();
    let params = oracle_core::RequestParams::Text(oracle_core::model::request::TextParams {
        steps,
        sampling: SamplingParams::GREEDY,
        chat: true,
    });
    let mut want = m
        .generate(
            Exec::default(),
            &Request::new(prompt.as_bytes(), params),
            |_| {},
        )
        .unwrap()
        .text;
    want.push(b'\n');
    assert!(want.starts_with(b"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"));
    // The random model's reply holds partial UTF-8 sequences; Prompt stores the
    // result as a Solidity `string`, which the client reads lossily.
    assert_eq!(
        String::from_utf8_lossy(&delivered(&chain, prompt).await),
        String::from_utf8_lossy(&want),
        "{}",
        chain.log_tails()
    );
    assert_eq!(chain.resolutions().await, vec![(FIRST_DISPUTE, true)]);
    assert_slashed(&chain, bond_before).await;
    validator.stop();
    liar.stop();
}
