//! The Solidity twin in an in-process EVM (revm): `PreimageOracle` and `RISCV`
//! deployed from the creation bytecode embedded in this folder
//! (`*.initcode.hex`, written by `update.sh` from `forge build`; the forge test
//! `contracts/test/vm/Artifacts.t.sol` fails while they are stale), plus helpers to run
//! one witness through `RISCV.step` and compare it with the Rust reference.
#![allow(dead_code)]

use oracle_fpvm::hash::keccak256;
use oracle_fpvm::preimage::local_key;
use oracle_fpvm::witness::Witness;
use oracle_fpvm::PreimageOracle;
use revm::context::result::{ExecutionResult, Output};
use revm::context::{CfgEnv, Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::hardfork::SpecId;
use revm::primitives::{Address, Bytes, TxKind, U256};
use revm::{ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

/// Creation bytecode of `contracts/src/vm/RISCV.sol:RISCV` (hex).
pub const RISCV_INITCODE: &str = include_str!("RISCV.initcode.hex");
/// Creation bytecode of `contracts/src/vm/PreimageOracle.sol:PreimageOracle` (hex).
pub const ORACLE_INITCODE: &str = include_str!("PreimageOracle.initcode.hex");

/// The account that deploys and that plays the dispute game (writes local data and
/// calls the oracle-aware `step`).
pub const GAME: Address = Address::new([0x9a; 20]);
/// The dispute (local context) of the tests.
pub const LOCAL_CONTEXT: [u8; 32] = [0x5c; 32];

/// Which `step` entry point to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `step(bytes,bytes)`: no oracle (local keys revert 7).
    Plain,
    /// `step(bytes,bytes,bytes32)`: local keys from the PreimageOracle.
    WithOracle,
}

/// What one EVM call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The post-state hash, and the gas of the call minus the intrinsic gas.
    Ok { post: [u8; 32], gas: u64 },
    /// `WitnessError(code)`.
    Revert(u8),
    /// Any other failure (a bug).
    Other(String),
}

impl Outcome {
    /// The post-state hash; panics with `what` otherwise.
    pub fn post(&self, what: &str) -> [u8; 32] {
        match self {
            Outcome::Ok { post, .. } => *post,
            o => panic!("{what}: EVM step failed: {o:?}"),
        }
    }
}

/// An EVM with the two contracts deployed.
pub struct Evm {
    evm: MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>,
    /// Address of RISCV.
    pub riscv: Address,
    /// Address of PreimageOracle.
    pub oracle: Address,
    /// The dispute (local context) that `step` and `load_local` use.
    pub local_context: [u8; 32],
}

fn selector(sig: &str) -> [u8; 4] {
    let h = keccak256(sig.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

fn word(v: usize) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&(v as u64).to_be_bytes());
    w
}

/// ABI encoding of `bytes` (length word, then the data padded to 32 bytes).
fn tail(b: &[u8]) -> Vec<u8> {
    let mut out = word(b.len()).to_vec();
    out.extend_from_slice(b);
    out.resize(32 + b.len().div_ceil(32) * 32, 0);
    out
}

/// Calldata of `sig(bytes, bytes[, bytes32])`, with `pre` static words in front.
pub fn calldata(
    sig: &str,
    pre: &[[u8; 32]],
    a: &[u8],
    b: &[u8],
    post: Option<[u8; 32]>,
) -> Vec<u8> {
    let heads = pre.len() + 2 + post.is_some() as usize;
    let ta = tail(a);
    let tb = tail(b);
    let mut out = selector(sig).to_vec();
    for w in pre {
        out.extend_from_slice(w);
    }
    out.extend_from_slice(&word(32 * heads));
    out.extend_from_slice(&word(32 * heads + ta.len()));
    if let Some(w) = post {
        out.extend_from_slice(&w);
    }
    out.extend(ta);
    out.extend(tb);
    out
}

/// Intrinsic gas of a call with this calldata (Cancun: no EIP-7623 floor).
fn intrinsic(data: &[u8]) -> u64 {
    21_000
        + data
            .iter()
            .map(|&b| if b == 0 { 4u64 } else { 16 })
            .sum::<u64>()
}

fn decode_hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).expect("embedded bytecode is hex")
}

impl Evm {
    /// Deploys PreimageOracle, then RISCV(oracle).
    pub fn new() -> Self {
        let ctx = Context::mainnet()
            .with_db(CacheDB::<EmptyDB>::default())
            .with_cfg({
                let mut cfg = CfgEnv::new_with_spec(SpecId::CANCUN);
                cfg.disable_nonce_check = true;
                cfg
            });
        let mut e = Evm {
            evm: ctx.build_mainnet(),
            riscv: Address::ZERO,
            oracle: Address::ZERO,
            local_context: LOCAL_CONTEXT,
        };
        e.oracle = e.create(decode_hex(ORACLE_INITCODE));
        let mut init = decode_hex(RISCV_INITCODE);
        let mut arg = [0u8; 32];
        arg[12..].copy_from_slice(e.oracle.as_slice());
        init.extend_from_slice(&arg);
        e.riscv = e.create(init);
        e
    }

    fn tx(&self, kind: TxKind, data: Vec<u8>) -> TxEnv {
        TxEnv::builder()
            .caller(GAME)
            .kind(kind)
            .data(Bytes::from(data))
            .gas_limit(30_000_000)
            .gas_price(0)
            .value(U256::ZERO)
            .build_fill()
    }

    fn create(&mut self, init: Vec<u8>) -> Address {
        let tx = self.tx(TxKind::Create, init);
        match self.evm.transact_commit(tx).expect("deploy") {
            ExecutionResult::Success {
                output: Output::Create(_, Some(addr)),
                ..
            } => addr,
            r => panic!("deploy failed: {r:?}"),
        }
    }

    /// A state-changing call from [`GAME`]; panics unless it succeeds.
    pub fn call_commit(&mut self, to: Address, data: Vec<u8>) -> Vec<u8> {
        let tx = self.tx(TxKind::Call(to), data);
        match self.evm.transact_commit(tx).expect("call") {
            ExecutionResult::Success { output, .. } => output.into_data().to_vec(),
            r => panic!("call failed: {r:?}"),
        }
    }

    /// A call from [`GAME`] whose effects are dropped; returns the outcome.
    pub fn call(&mut self, to: Address, data: Vec<u8>) -> Outcome {
        let gas0 = intrinsic(&data);
        let tx = self.tx(TxKind::Call(to), data);
        let r = self.evm.transact(tx).expect("call").result;
        match r {
            ExecutionResult::Success { output, gas, .. } => {
                let out = output.into_data();
                if out.len() != 32 {
                    return Outcome::Other(format!("return of {} bytes", out.len()));
                }
                let mut post = [0u8; 32];
                post.copy_from_slice(&out);
                Outcome::Ok {
                    post,
                    gas: gas.total_gas_spent() - gas0,
                }
            }
            ExecutionResult::Revert { output, .. } => {
                if output.len() == 36 && output[..4] == selector("WitnessError(uint8)") {
                    Outcome::Revert(output[35])
                } else {
                    Outcome::Other(format!("revert {}", hex::encode(&output)))
                }
            }
            r => Outcome::Other(format!("{r:?}")),
        }
    }

    /// Writes local data `ident` for [`Evm::local_context`] as the game.
    pub fn load_local(&mut self, ident: u64, data: &[u8]) {
        let mut id = [0u8; 32];
        id[24..].copy_from_slice(&ident.to_be_bytes());
        let mut out = selector("loadLocalData(uint64,bytes32,bytes)").to_vec();
        out.extend_from_slice(&id);
        out.extend_from_slice(&self.local_context);
        out.extend_from_slice(&word(96));
        out.extend(tail(data));
        self.call_commit(self.oracle, out);
    }

    /// Writes the three local keys of a request from a Rust oracle.
    pub fn load_request(&mut self, oracle: &dyn PreimageOracle) {
        for ident in 1..=3 {
            if let Some(data) = oracle.get(local_key(ident)) {
                self.load_local(ident, &data);
            }
        }
    }

    /// Runs `state, proof` through `step`.
    pub fn step_raw(&mut self, entry: Entry, state: &[u8], proof: &[u8]) -> Outcome {
        let data = match entry {
            Entry::Plain => calldata("step(bytes,bytes)", &[], state, proof, None),
            Entry::WithOracle => calldata(
                "step(bytes,bytes,bytes32)",
                &[],
                state,
                proof,
                Some(self.local_context),
            ),
        };
        self.call(self.riscv, data)
    }

    /// Runs a witness through the oracle-aware `step`.
    pub fn step(&mut self, w: &Witness) -> Outcome {
        self.step_raw(Entry::WithOracle, &w.state, &w.proof)
    }

    /// `verifyStep(claimedPre, state, proof, local_context)`.
    pub fn verify_step(&mut self, pre: [u8; 32], state: &[u8], proof: &[u8]) -> Outcome {
        let data = calldata(
            "verifyStep(bytes32,bytes,bytes,bytes32)",
            &[pre],
            state,
            proof,
            Some(self.local_context),
        );
        self.call(self.riscv, data)
    }
}

/// Gas samples per instruction class, and the median/max table.
#[derive(Default)]
pub struct GasTable(pub std::collections::BTreeMap<&'static str, Vec<u64>>);

impl GasTable {
    /// Adds one sample.
    pub fn add(&mut self, class: &'static str, gas: u64) {
        self.0.entry(class).or_default().push(gas);
    }

    /// (class, count, median, max) rows.
    pub fn rows(&mut self) -> Vec<(&'static str, usize, u64, u64)> {
        self.0
            .iter_mut()
            .map(|(k, v)| {
                v.sort_unstable();
                (*k, v.len(), v[v.len() / 2], *v.last().unwrap())
            })
            .collect()
    }

    /// A markdown table of [`Self::rows`], plus all samples together.
    pub fn markdown(&mut self) -> String {
        let mut s = String::from(
            "| class | steps | median gas | max gas |\n| --- | ---: | ---: | ---: |\n",
        );
        let mut all = Vec::new();
        for (k, n, med, max) in self.rows() {
            s += &format!("| {k} | {n} | {med} | {max} |\n");
            all.extend_from_slice(&self.0[k]);
        }
        all.sort_unstable();
        if !all.is_empty() {
            s += &format!(
                "| **all** | {} | {} | {} |\n",
                all.len(),
                all[all.len() / 2],
                all.last().unwrap()
            );
        }
        s
    }
}
