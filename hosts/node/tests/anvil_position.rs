//! The two-phase game (`PositionGame`) on a real anvil through [`PositionGameClient`] and
//! the node's honest strategy ([`decide`]): `devnet::deploy` with `two_phase`, a request of 64 greedy positions (N = 66), an
//! honest operator and a challenger whose phase-1 commitments depart at index 30, synthetic
//! commitments. Phase 1 must end at (29, 30); both sides post their transition claims; the
//! phase-2 `DisputeGame` must carry the right players, claims and local data (params ‖ mode 2,
//! `s_29`). Its outcome (a timeout) must come back through the parent's status and AIOracle.

use alloy::{
    primitives::{keccak256, Address, B256},
    providers::ProviderBuilder,
};
use oracle_contracts::{
    devnet::{greedy_params, transact, DevnetConfig},
    game::{game_kind, Bisection, GameClient, GameKind, PositionGameClient, Side, Status},
    testing::{advance, challenge, deploy_bonded, now, request, spawn_anvil, submit},
    PreimageOracle,
};
use oracle_fpvm::layout::state as off;
use oracle_fpvm::state::state_hash;
use oracle_node::strategy::{decide, Action};

const INPUT: &[u8] = b"Once upon a time";
const GOOD: &[u8] = b"Once upon a time there was a cat.\n";
const BAD: &[u8] = b"Once upon a time there was a lie.\n";
const LIE_FROM: u64 = 30;

/// A synthetic phase-1 chain: `s_0` the request commitment, `s_N` the output hash.
struct Chain {
    start: B256,
    n: u64,
    output: B256,
    seed: &'static [u8],
    /// Below this index the chain is the honest one.
    lie_from: u64,
}

impl Chain {
    fn at(&self, i: u64) -> B256 {
        if i == 0 {
            return self.start;
        }
        if i >= self.n {
            return self.output;
        }
        let seed: &[u8] = if i < self.lie_from {
            b"honest"
        } else {
            self.seed
        };
        keccak256([seed, &i.to_be_bytes()].concat())
    }
}

/// A halted 245-byte VM state (exited 0 after `steps`) whose output field is `output`.
fn transition_state(output: B256, steps: u64) -> Vec<u8> {
    let mut s = vec![0u8; off::SIZE];
    s[off::MEM_ROOT] = 0x42;
    s[off::OUTPUT..off::OUTPUT + 32].copy_from_slice(output.as_slice());
    s[off::STEP..off::STEP + 8].copy_from_slice(&steps.to_be_bytes());
    s[off::STATUS] = 1;
    s
}

fn hash_of(state: &[u8]) -> B256 {
    let enc: [u8; off::SIZE] = state.try_into().expect("state size");
    B256::from(state_hash(&enc))
}

#[tokio::test(flavor = "current_thread")]
async fn phase_one_and_transition_claims_create_the_right_vm_game() {
    let anvil = spawn_anvil(0, &[]).unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let a = anvil.addresses();
    let (deployer, operator, challenger, user, bystander) = (a[0], a[1], a[2], a[3], a[4]);

    let config = DevnetConfig {
        two_phase: true,
        sampling_params: greedy_params(64),
        ..Default::default()
    };
    let (d, oracle) = deploy_bonded(&provider, deployer, operator, &config)
        .await
        .unwrap();

    // request, submit the honest output, challenge with a lie (two-phase: the claims are the output
    // hashes, computed on chain; the proofs are empty)
    let id = request(&oracle, d.model_id, INPUT, Address::ZERO, user)
        .await
        .unwrap();
    submit(&oracle, id, GOOD, &[], operator).await.unwrap();
    let (did, _) = challenge(&oracle, id, INPUT, BAD, &[], challenger)
        .await
        .unwrap();
    assert_eq!(
        oracle.getResult(id).call().await.unwrap().claim,
        keccak256(GOOD)
    );
    assert_eq!(
        oracle.getDispute(did).call().await.unwrap().claim,
        keccak256(BAD)
    );
    let game_address = oracle.getDispute(did).call().await.unwrap().game;
    assert_eq!(
        game_kind(&provider, game_address).await.unwrap(),
        GameKind::Positions
    );
    let game = PositionGameClient::new(game_address, provider.clone());

    // the chain's view of the request
    let n = game.length().await.unwrap();
    assert_eq!(n, 66, "N = T + 2");
    let start = keccak256(
        [
            config.model.modelRoot.as_slice(),
            keccak256(INPUT).as_slice(),
            &config.sampling_params,
        ]
        .concat(),
    );
    assert_eq!(game.start_hash().await.unwrap(), start);
    assert_eq!(
        game.sampling_params().await.unwrap(),
        config.sampling_params
    );
    assert_eq!(game.side_of(operator).await.unwrap(), Some(Side::Defender));
    assert_eq!(
        game.side_of(challenger).await.unwrap(),
        Some(Side::Challenger)
    );
    let honest = Chain {
        start,
        n,
        output: keccak256(GOOD),
        seed: b"honest",
        lie_from: n + 1,
    };
    let liar = Chain {
        start,
        n,
        output: keccak256(BAD),
        seed: b"lie",
        lie_from: LIE_FROM,
    };

    // phase 1 and the claims, each side playing `decide` from its own chain
    let (mut moves, mut claims) = (0u32, 0u32);
    let mut claimed = Vec::new();
    while game.transition_game().await.unwrap().is_none() {
        let s = game.state().await.unwrap();
        assert_eq!(s.status, Status::InProgress);
        let side = s.to_move;
        let (chain, from) = match side {
            Side::Defender => (&honest, operator),
            Side::Challenger => (&liar, challenger),
        };
        let t = now(&provider).await.unwrap();
        assert_eq!(
            decide(&s, side.other(), t, |_| Ok::<_, std::convert::Infallible>(
                B256::ZERO
            ))
            .unwrap(),
            Action::Wait
        );
        match decide(&s, side, t, |i| {
            Ok::<_, std::convert::Infallible>(chain.at(i))
        })
        .unwrap()
        {
            Action::Move {
                agree, mid_hash, ..
            } => {
                game.make_move(from, agree, mid_hash).await.unwrap();
                moves += 1;
            }
            Action::Step { pre } => {
                assert_eq!((pre, s.hi), (LIE_FROM - 1, LIE_FROM), "the first lie");
                let state = transition_state(chain.at(pre + 1), 1000 + u64::from(claims));
                game.claim_transition(from, state.clone()).await.unwrap();
                claimed.push((side, state));
                claims += 1;
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
    assert!(moves <= 8, "ceil(log2 66) + 1 = 8 moves, made {moves}");
    assert_eq!(claims, 2);
    let s = game.state().await.unwrap();
    assert_eq!((s.lo, s.hi), (LIE_FROM - 1, LIE_FROM));
    assert_eq!(s.lo_hash, honest.at(LIE_FROM - 1));
    println!(
        "phase 1 (N = {n}): {moves} moves, then 2 transition claims; hi owned by the {:?}",
        s.hi_owner
    );

    // the phase-2 game
    let child_address = game.transition_game().await.unwrap().expect("child");
    assert_eq!(
        game_kind(&provider, child_address).await.unwrap(),
        GameKind::Vm
    );
    let owner = s.hi_owner;
    let state_of = |side: Side| {
        claimed
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, st)| st.clone())
            .unwrap()
    };
    let (owner_state, other_state) = (state_of(owner), state_of(owner.other()));
    let (hi_owner_claim, other_claim) = game.transition_claims().await.unwrap();
    assert_eq!(hi_owner_claim, hash_of(&owner_state));
    assert_eq!(other_claim, hash_of(&other_state));
    let child = GameClient::new(child_address, provider.clone());
    let p = child.params().await.unwrap();
    let addr = |side: Side| match side {
        Side::Defender => operator,
        Side::Challenger => challenger,
    };
    assert_eq!(p.requestId, id);
    assert_eq!(p.submitter, addr(owner));
    assert_eq!(p.submitterClaim, hi_owner_claim);
    assert_eq!(p.submitterOutputHash, s.hi_hash);
    assert_eq!(p.challenger, addr(owner.other()));
    assert_eq!(p.challengerClaim, other_claim);
    let chain_of = |side: Side| match side {
        Side::Defender => &honest,
        Side::Challenger => &liar,
    };
    assert_eq!(p.challengerOutputHash, chain_of(owner.other()).at(LIE_FROM));
    let cs = child.state().await.unwrap();
    assert_eq!(cs.lo_hash, config.model.programHash);
    assert_eq!(cs.hi_hash, hi_owner_claim);

    // its local data: model root, input hash, params ‖ mode 2 (a position), s_29
    let preimages = PreimageOracle::new(d.preimage_oracle, &provider);
    let local = |ident: u64| {
        let preimages = &preimages;
        async move {
            let key = preimages.localKey(ident).call().await.unwrap();
            let key = preimages
                .localize(key, child_address, B256::ZERO)
                .call()
                .await
                .unwrap();
            let r = preimages.localData(key).call().await.unwrap();
            assert!(r.set, "local {ident} set");
            r.digest
        }
    };
    assert_eq!(local(1).await, keccak256(config.model.modelRoot));
    assert_eq!(local(2).await, keccak256(keccak256(INPUT)));
    assert_eq!(
        local(3).await,
        keccak256([config.sampling_params.as_slice(), &[2u8]].concat())
    );
    assert_eq!(local(4).await, keccak256(honest.at(LIE_FROM - 1)));

    // phase 2 decided by a timeout (the phase-2 challenger never moves): the owner of hiHash wins,
    // and the parent reports it in its own roles
    advance(&provider, u64::from(cs.challenger_clock) + 1)
        .await
        .unwrap();
    // (from an account of its own: the default fillers may take a nonce for a call that fails)
    assert!(
        game.claim_timeout(bystander).await.is_err(),
        "timeouts are claimed on the child"
    );
    child.claim_timeout(user).await.unwrap();
    let expected = match owner {
        Side::Defender => Status::DefenderWins,
        Side::Challenger => Status::ChallengerWins,
    };
    assert_eq!(game.state().await.unwrap().status, expected);
    transact(oracle.resolveDispute(did).from(user), "resolveDispute")
        .await
        .unwrap();
}
