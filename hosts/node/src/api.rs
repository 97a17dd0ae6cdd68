//! The node's JSON API, under `/api/` on its HTTP listener (`--http`, the same one
//! as `/metrics`): what this node has recorded, read from its database while it
//! runs, so it answers even when the chain's RPC does not. `oracle status --node`
//! reads it; so can any client.
//!
//! | path | answer |
//! |---|---|
//! | `/api/status` | role, account, oracle, requests per state, checks, disputes, last block |
//! | `/api/requests?state=S&limit=N` | request summaries, newest first (`limit` ≤ 1000, default 100) |
//! | `/api/requests/<id>` | the whole record, its timeline, the checked result versions and its games |
//! | `/api/disputes` | the games this node plays or played, with this node's moves |
//! | `/api/models` | the models this node serves (id, file, root, kind, an image model's steps/seed/guidance, bound) |
//! | `/api/models/<id>/file` | a served model's file (bytes), for a page to re-run a request |
//! | `/api/operators` | the operators this node has seen registered |
//! | `/api/chain` | what the console's chain module needs to ask and watch on chain: chain id, AIOracle, and on a devnet its RPC, Prompt contract and user key |
//!
//! Ids are decimal or `0x` hex. Errors are JSON too: `{"error": "..."}` with 400 for
//! a malformed path or query, 404 for an unknown path or id, 500 when the database
//! cannot be read.

use std::str::FromStr;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::db::{Db, RequestRecord, RequestState};
use crate::serve::models::{ModelKind, ModelSet};

/// Path prefix of the API.
pub const API_PATH: &str = "/api/";

/// Most summaries one `/api/requests` answer holds.
pub const MAX_LIMIT: usize = 1000;

/// What the API reads: the node's database and the models it serves.
#[derive(Clone)]
pub struct Api {
    /// The node's role (`operator`, `validator`).
    pub role: &'static str,
    /// The node's account.
    pub account: Address,
    /// The AIOracle contract it follows.
    pub oracle: Address,
    /// Its database.
    pub db: Arc<Db>,
    /// The models it serves.
    pub models: Arc<ModelSet>,
    /// Positions it runs per text request (the parameters of its requests).
    pub steps: u32,
    /// The core's WebAssembly module (`hosts/wasm`), served to the console for
    /// "verify in this browser", when the node has it.
    pub wasm: Option<Arc<Vec<u8>>>,
    /// The node's image outputs posted as their hash, also served on this listener
    /// (`/outputs/0x<keccak256>.png`) for the console to show them.
    pub outputs: Option<crate::serve::outputs::OutputStore>,
    /// The console's chain module (`hosts/node/console/ask.js` bundled with viem by
    /// `hosts/node/console/build.sh`), when the node has it.
    pub ask: Option<Arc<Vec<u8>>>,
    /// What `/api/chain` tells the console (none: the console cannot ask).
    pub chain: Option<ChainInfo>,
    /// Other nodes of this process whose games are shown beside this node's.
    pub peers: Vec<Peer>,
}

/// Another node of the same process (the devnet's validator and dishonest
/// operator): its games are listed beside this node's, so a page shows both
/// sides' moves of a game, each with its gas.
#[derive(Clone)]
pub struct Peer {
    /// Its role.
    pub role: &'static str,
    /// Its account.
    pub account: Address,
    /// Its database.
    pub db: Arc<Db>,
}

/// What the console's chain module is told (`/api/chain`).
#[derive(Clone, Debug, Serialize)]
pub struct ChainInfo {
    /// The chain's id (a wallet on another chain is asked to switch).
    pub chain_id: u64,
    /// The AIOracle contract.
    pub oracle: Address,
    /// A JSON-RPC URL the page may use itself (the devnet's anvil; CORS open); else
    /// the page reads and signs through an injected EIP-1193 wallet.
    pub rpc: Option<String>,
    /// A Prompt contract to ask through (its callback stores the answer); else the
    /// page asks AIOracle directly, without a callback.
    pub prompt: Option<Address>,
    /// The devnet user's key (one of anvil's public test keys), so the page signs
    /// without a wallet. Only ever set by `oracle devnet`.
    pub devnet_key: Option<String>,
    /// The first block the page reads the oracle's events from (the node's).
    pub from_block: u64,
}

impl Api {
    /// The Content-Security-Policy of the console's pages: nothing but this node,
    /// plus the chain's RPC when the page may use it.
    pub fn csp(&self) -> String {
        let rpc = self
            .chain
            .as_ref()
            .and_then(|c| c.rpc.as_deref())
            .and_then(origin);
        crate::console::csp(rpc.as_deref())
    }
}

/// `scheme://host[:port]` of `url`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
    .then(|| format!("{scheme}://{host}"))
}

/// Where `cargo build -p oracle-wasm --release --target wasm32-unknown-unknown`
/// puts the module (the node's default `--console-wasm`).
pub const DEFAULT_WASM: &str = "target/wasm32-unknown-unknown/release/oracle_wasm.wasm";

/// Where `hosts/node/console/build.sh` puts the chain module (the node's default
/// `--console-ask`).
pub const DEFAULT_ASK: &str = "target/console/ask.js";

/// The console's WebAssembly module: the file `path` names (it must be readable), or
/// the default build's when it exists, or none.
pub fn load_wasm(path: Option<&std::path::Path>) -> anyhow::Result<Option<Arc<Vec<u8>>>> {
    load_asset(path, DEFAULT_WASM, "WebAssembly module", |b| {
        b.starts_with(b"\0asm")
    })
}

/// The console's chain module: the file `path` names (it must be readable), or the
/// default build's when it exists, or none.
pub fn load_ask(path: Option<&std::path::Path>) -> anyhow::Result<Option<Arc<Vec<u8>>>> {
    load_asset(path, DEFAULT_ASK, "JavaScript module", |b| {
        !b.is_empty() && std::str::from_utf8(b).is_ok()
    })
}

fn load_asset(
    path: Option<&std::path::Path>,
    default: &str,
    what: &str,
    valid: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<Option<Arc<Vec<u8>>>> {
    use anyhow::Context;
    let (path, required) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (std::path::PathBuf::from(default), false),
    };
    match std::fs::read(&path) {
        Ok(bytes) if valid(&bytes) => Ok(Some(Arc::new(bytes))),
        Ok(_) => anyhow::bail!("{} is not a {what}", path.display()),
        Err(_) if !required => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("reading the console's {what} {}", path.display()))
        }
    }
}

/// An answer: status and JSON body.
pub type Answer = (StatusCode, Value);

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, json!({ "error": message.into() }))
}

fn ok(value: impl Serialize) -> Answer {
    match serde_json::to_value(value) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding: {e}")),
    }
}

/// A request id from a path segment: decimal or `0x` hex.
pub fn parse_id(text: &str) -> Option<U256> {
    if let Some(hex) = text.strip_prefix("0x") {
        if hex.is_empty() || hex.len() > 64 {
            return None;
        }
        return U256::from_str_radix(hex, 16).ok();
    }
    if text.is_empty() || text.len() > 78 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    U256::from_str(text).ok()
}

/// One `key=value` pair of a query string (no percent-decoding: the API's values
/// are plain words and numbers).
fn query_value<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

impl Api {
    /// Answer `GET path?query` (blocking: reads the database).
    pub fn answer(&self, path: &str, query: Option<&str>) -> Answer {
        let Some(rest) = path.strip_prefix(API_PATH) else {
            return error(StatusCode::NOT_FOUND, "not an API path");
        };
        let rest = rest.trim_end_matches('/');
        let result = match rest.split_once('/') {
            None => match rest {
                "status" => self.status(),
                "requests" => self.requests(query),
                "disputes" => self.disputes(|_| true).map(ok),
                "chain" => Ok(match &self.chain {
                    Some(info) => ok(info),
                    None => error(
                        StatusCode::NOT_FOUND,
                        "this node gives the console no chain access",
                    ),
                }),
                "models" => Ok(self.models()),
                "operators" => self.db.operators().map(ok).map_err(Into::into),
                _ => Ok(error(
                    StatusCode::NOT_FOUND,
                    format!("no such endpoint: {path}"),
                )),
            },
            Some(("models", file)) if file.ends_with("/file") => Ok(error(
                StatusCode::NOT_FOUND,
                format!(
                    "this node serves no model {:?}",
                    file.trim_end_matches("/file")
                ),
            )),
            Some(("requests", id)) => match parse_id(id) {
                Some(id) => self.request(id),
                None => Ok(error(
                    StatusCode::BAD_REQUEST,
                    format!("not a request id: {id:?} (decimal or 0x hex)"),
                )),
            },
            Some(_) => Ok(error(
                StatusCode::NOT_FOUND,
                format!("no such endpoint: {path}"),
            )),
        };
        result.unwrap_or_else(|e: anyhow::Error| {
            tracing::warn!("api {path}: {e:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the database: {e}"),
            )
        })
    }

    fn status(&self) -> anyhow::Result<Answer> {
        let mut value = status_value(&self.db)?;
        value["role"] = json!(self.role);
        value["account"] = json!(self.account);
        value["oracle"] = json!(self.oracle);
        Ok(ok(value))
    }

    fn requests(&self, query: Option<&str>) -> anyhow::Result<Answer> {
        let limit = match query_value(query, "limit") {
            None => 100,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        format!("limit must be 1..={MAX_LIMIT}, not {text:?}"),
                    ))
                }
            },
        };
        let state = match query_value(query, "state") {
            None => None,
            Some(name) => match RequestState::ALL.iter().find(|s| s.name() == name) {
                Some(&s) => Some(s),
                None => {
                    let names: Vec<&str> = RequestState::ALL.iter().map(|s| s.name()).collect();
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        format!("state must be one of {}, not {name:?}", names.join(", ")),
                    ));
                }
            },
        };
        let summaries: Vec<Value> = self
            .db
            .recent_requests(limit, |r| state.is_none_or(|s| r.state == s))?
            .iter()
            .map(summary)
            .collect();
        Ok(ok(summaries))
    }

    fn request(&self, id: U256) -> anyhow::Result<Answer> {
        let Some(record) = self.db.request(id)? else {
            let checks = self.db.checks_of(id)?;
            if checks.is_empty() {
                return Ok(error(
                    StatusCode::NOT_FOUND,
                    format!("this node has no record of request {id}"),
                ));
            }
            // A validator checks results without serving the request.
            return Ok(ok(json!({
                "request": Value::Null,
                "timeline": [],
                "checks": checks,
                "disputes": self.disputes_of(id)?,
            })));
        };
        let params = self
            .models
            .get(&record.model_id)
            .map(|m| hex_bytes(&m.request(&record.input, self.steps).encode_params()));
        Ok(ok(json!({
            "timeline": timeline(&record),
            "params": params,
            "request": record,
            "checks": self.db.checks_of(id)?,
            "disputes": self.disputes_of(id)?,
        })))
    }

    fn disputes_of(&self, id: U256) -> anyhow::Result<Vec<Value>> {
        self.disputes(|d| d.request == id)
    }

    /// The games of this node and its peers that `keep`, each labelled with the node
    /// that plays it (`node`: role, `node_account`).
    fn disputes(
        &self,
        keep: impl Fn(&crate::roles::dispute::DisputeRecord) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let own = Peer {
            role: self.role,
            account: self.account,
            db: self.db.clone(),
        };
        let mut out = Vec::new();
        for node in std::iter::once(&own).chain(&self.peers) {
            for record in node.db.disputes()?.into_iter().filter(|d| keep(d)) {
                let mut value = serde_json::to_value(record)?;
                value["node"] = json!(node.role);
                value["node_account"] = json!(node.account);
                out.push(value);
            }
        }
        Ok(out)
    }

    fn models(&self) -> Answer {
        let models: Vec<Value> = self
            .models
            .values()
            .map(|m| {
                let (kind, chat) = match m.kind {
                    ModelKind::Text { chat, .. } => ("text", chat),
                    ModelKind::TwoPhaseText { chat, .. } => ("text", chat),
                    ModelKind::Image { .. } => ("image", false),
                };
                // The parameters an image request is served with (registered
                // with the model; a request carries only its prompt).
                let image = match m.kind {
                    ModelKind::Image { params, .. } => json!({
                        "steps": params.steps,
                        "seed": params.seed,
                        "guidance": f64::from(params.guidance_q16) / 65536.0,
                    }),
                    _ => Value::Null,
                };
                json!({
                    "id": m.id,
                    "file": m.name,
                    "bytes": m.bytes.len(),
                    "root": m.root,
                    "kind": kind,
                    "game": if m.kind.two_phase() { "two-phase" } else { "one-phase" },
                    "chat": chat,
                    "image": image,
                    "trace_bound": m.kind.trace_bound(),
                })
            })
            .collect();
        ok(models)
    }
}

/// `0x` hex of `bytes`.
fn hex_bytes(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

impl Api {
    /// The bytes of served model `id`'s file, for `GET /api/models/<id>/file`
    /// (`None`: not a model file path, or not a model this node serves).
    pub fn model_file(&self, path: &str) -> Option<Arc<Vec<u8>>> {
        let id = path
            .strip_prefix(API_PATH)?
            .strip_prefix("models/")?
            .strip_suffix("/file")?;
        Some(self.models.get(&parse_id(id)?)?.bytes.clone())
    }
}

/// The database's part of `/api/status`: requests per state (in lifecycle order),
/// checks, mismatches, disputes and the last block processed.
pub fn status_value(db: &Db) -> anyhow::Result<Value> {
    let counts = db.counts()?;
    let requests: serde_json::Map<String, Value> = counts
        .requests
        .iter()
        .map(|(name, n)| ((*name).to_string(), json!(n)))
        .collect();
    Ok(json!({
        "last_block": counts.last_block,
        "requests": requests,
        "checks": counts.checks,
        "mismatches": counts.mismatches,
        "disputes": db.dispute_count()?,
    }))
}

/// One line of `/api/requests`.
pub fn summary(r: &RequestRecord) -> Value {
    json!({
        "id": r.id,
        "model_id": r.model_id,
        "block": r.block,
        "state": r.state.name(),
        "input_bytes": r.input.len(),
        "output_bytes": r.output.as_ref().map(|o| o.len()),
        "claim": r.claim,
        "error": r.error,
    })
}

/// The stages a request's record shows it went through, in order: requested (its
/// event's block), served (output computed), submitted (the transaction), finalized
/// or failed/skipped (with the reason).
pub fn timeline(r: &RequestRecord) -> Vec<Value> {
    let mut out = vec![json!({ "stage": "requested", "block": r.block })];
    if r.output.is_some() {
        out.push(json!({ "stage": "served", "claim": r.claim }));
    }
    if r.submit_tx.is_some() || matches!(r.state, RequestState::Submitted | RequestState::Finalized)
    {
        out.push(json!({ "stage": "submitted", "tx": r.submit_tx }));
    }
    match r.state {
        RequestState::Finalized => {
            out.push(json!({ "stage": "finalized", "tx": r.finalize_tx }));
        }
        RequestState::Failed | RequestState::Skipped => {
            out.push(json!({ "stage": r.state.name(), "reason": r.error }));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::db::{CheckRecord, CheckState, RequestEvent};
    use crate::roles::dispute::DisputeRecord;
    use alloy::primitives::{Bytes, B256};

    fn event(id: u64, model: u64) -> RequestEvent {
        RequestEvent {
            id: U256::from(id),
            model_id: U256::from(model),
            input: Bytes::from_static(b"Once upon a time"),
            callback: Address::repeat_byte(0xCB),
            gas_limit: 100_000,
            callback_data: Bytes::new(),
            block: 10 + id,
        }
    }

    /// A database with three requests (one finalized with its output, one failed,
    /// one seen), a checked result with two versions, a game and an operator.
    pub(crate) fn api() -> (tempfile::TempDir, Api) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("node.redb")).unwrap();
        db.record_requests(&[event(1, 1), event(2, 1), event(3, 1)], 20, |_| true)
            .unwrap();
        let mut done = db.request(U256::from(1u64)).unwrap().unwrap();
        done.output = Some(Bytes::from_static(b"Once upon a time, there was\n"));
        done.claim = Some(B256::repeat_byte(7));
        done.submit_tx = Some(B256::repeat_byte(8));
        done.finalize_tx = Some(B256::repeat_byte(9));
        done.state = RequestState::Finalized;
        db.put_request(&done).unwrap();
        let mut failed = db.request(U256::from(2u64)).unwrap().unwrap();
        failed.state = RequestState::Failed;
        failed.error = Some("the deadline passed".into());
        db.put_request(&failed).unwrap();
        for version in 0..2 {
            db.put_check(&CheckRecord {
                id: U256::from(1u64),
                version,
                submitter: Address::repeat_byte(version as u8 + 1),
                output: Bytes::from_static(b"x"),
                claim: B256::repeat_byte(version as u8),
                block: 30 + u64::from(version),
                state: if version == 0 {
                    CheckState::Challenged
                } else {
                    CheckState::Agreed
                },
                challenge_tx: None,
                error: None,
            })
            .unwrap();
        }
        // A check of a request this node never served (a validator's view).
        db.put_check(&CheckRecord {
            id: U256::from(40u64),
            version: 0,
            submitter: Address::repeat_byte(4),
            output: Bytes::new(),
            claim: B256::ZERO,
            block: 40,
            state: CheckState::Agreed,
            challenge_tx: None,
            error: None,
        })
        .unwrap();
        let mut game = DisputeRecord::ours(
            U256::from(5u64),
            Address::repeat_byte(0x6A),
            false,
            &event(1, 1),
            Bytes::from_static(b"the true output"),
        );
        for (board, lo, hi, action) in [
            ("positions", 0, 16, "deny"),
            ("positions", 0, 8, "agree"),
            ("steps", 0, 1024, "deny"),
        ] {
            game.history.push(crate::roles::dispute::MoveRecord {
                board: board.into(),
                lo,
                hi,
                action: action.into(),
                defender_clock: 118,
                challenger_clock: 120 - hi as u32 / 512,
                gas_used: 80_000 + hi,
            });
        }
        game.moves = 3;
        db.put_dispute(&game).unwrap();
        db.record_operators(&[Address::repeat_byte(0x0B)], 20)
            .unwrap();
        let api = Api {
            role: "validator",
            account: Address::repeat_byte(0xAC),
            oracle: Address::repeat_byte(0x0A),
            db: Arc::new(db),
            models: Arc::new(ModelSet::new()),
            steps: 16,
            wasm: None,
            outputs: None,
            ask: None,
            chain: None,
            peers: Vec::new(),
        };
        (dir, api)
    }

    fn get(api: &Api, path_and_query: &str) -> Answer {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        api.answer(path, query)
    }

    #[test]
    fn status_counts_every_state_and_names_the_node() {
        let (_dir, api) = api();
        let (status, v) = get(&api, "/api/status");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["role"], "validator");
        assert_eq!(v["account"], json!(Address::repeat_byte(0xAC)));
        assert_eq!(v["requests"]["finalized"], 1);
        assert_eq!(v["requests"]["failed"], 1);
        assert_eq!(v["requests"]["seen"], 1);
        assert_eq!(v["requests"]["skipped"], 0);
        assert_eq!(v["checks"], 3);
        assert_eq!(v["disputes"], 1);
        assert_eq!(v["last_block"], 20);
    }

    #[test]
    fn requests_are_listed_newest_first_filtered_and_limited() {
        let (_dir, api) = api();
        let (status, v) = get(&api, "/api/requests");
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&Value> = v.as_array().unwrap().iter().map(|r| &r["id"]).collect();
        assert_eq!(
            ids,
            [
                &json!(U256::from(3u64)),
                &json!(U256::from(2u64)),
                &json!(U256::from(1u64))
            ]
        );
        let (_, v) = get(&api, "/api/requests?state=failed");
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["error"], "the deadline passed");
        let (_, v) = get(&api, "/api/requests?limit=2&state=seen");
        assert_eq!(v.as_array().unwrap().len(), 1);
        let (_, v) = get(&api, "/api/requests?limit=1");
        assert_eq!(v.as_array().unwrap().len(), 1);
        for bad in ["limit=0", "limit=1001", "limit=ten", "state=lost", "state="] {
            let (status, v) = get(&api, &format!("/api/requests?{bad}"));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(v["error"].as_str().unwrap().len() > 10, "{bad}: {v}");
        }
    }

    #[test]
    fn one_request_has_its_record_timeline_checks_and_games() {
        let (_dir, api) = api();
        for id in ["1", "0x1", "0x01"] {
            let (status, v) = get(&api, &format!("/api/requests/{id}"));
            assert_eq!(status, StatusCode::OK, "{id}");
            assert_eq!(v["request"]["state"], "Finalized");
            let stages: Vec<&str> = v["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["stage"].as_str().unwrap())
                .collect();
            assert_eq!(stages, ["requested", "served", "submitted", "finalized"]);
            assert_eq!(v["timeline"][3]["tx"], json!(B256::repeat_byte(9)));
            assert_eq!(v["checks"].as_array().unwrap().len(), 2);
            assert_eq!(v["checks"][1]["version"], 1);
            assert_eq!(v["disputes"][0]["dispute"], json!(U256::from(5u64)));
        }
        let (_, v) = get(&api, "/api/requests/2");
        let last = v["timeline"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(
            last,
            json!({ "stage": "failed", "reason": "the deadline passed" })
        );
        // Known only as a checked result.
        let (status, v) = get(&api, "/api/requests/40");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["request"], Value::Null);
        assert_eq!(v["checks"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_and_unknown_ids_and_paths_are_json_errors() {
        let (_dir, api) = api();
        for (path, want) in [
            ("/api/requests/7", StatusCode::NOT_FOUND),
            ("/api/requests/abc", StatusCode::BAD_REQUEST),
            ("/api/requests/-1", StatusCode::BAD_REQUEST),
            ("/api/requests/0x", StatusCode::BAD_REQUEST),
            ("/api/requests/0xzz", StatusCode::BAD_REQUEST),
            ("/api/requests/1.5", StatusCode::BAD_REQUEST),
            (
                "/api/requests/115792089237316195423570985008687907853269984665640564039457584007913129639936",
                StatusCode::BAD_REQUEST,
            ),
            ("/api/requests/1/extra", StatusCode::BAD_REQUEST),
            ("/api/nothing", StatusCode::NOT_FOUND),
            ("/api/models/1", StatusCode::NOT_FOUND),
            ("/api/", StatusCode::NOT_FOUND),
            ("/metrics", StatusCode::NOT_FOUND),
        ] {
            let (status, v) = get(&api, path);
            assert_eq!(status, want, "{path}: {v}");
            assert!(v["error"].is_string(), "{path}: {v}");
        }
    }

    #[test]
    fn disputes_operators_and_models_are_listed() {
        let (_dir, api) = api();
        let (status, v) = get(&api, "/api/disputes");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v[0]["request"], json!(U256::from(1u64)));
        assert_eq!(v[0]["state"], "Playing");
        assert_eq!(v[0]["history"][2]["board"], "steps");
        assert_eq!(v[0]["history"][2]["hi"], 1024);
        let (_, v) = get(&api, "/api/operators");
        assert_eq!(v, json!([Address::repeat_byte(0x0B)]));
        let (status, v) = get(&api, "/api/models");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v, json!([]));
    }

    /// A peer's games (the devnet's other players) are listed beside the node's
    /// own, each labelled with the player, in `/api/disputes` and in the request's
    /// view, so a page sees both sides of a game.
    #[test]
    fn peers_games_are_listed_beside_the_nodes_own_and_labelled() {
        let (_dir, mut api) = api();
        let peer_dir = tempfile::tempdir().unwrap();
        let peer_db = Db::open(&peer_dir.path().join("liar.redb")).unwrap();
        let mut defended = DisputeRecord::ours(
            U256::from(5u64),
            Address::repeat_byte(0x6A),
            true,
            &event(1, 1),
            Bytes::from_static(b"a lie"),
        );
        defended.moves = 1;
        peer_db.put_dispute(&defended).unwrap();
        api.peers.push(Peer {
            role: "liar",
            account: Address::repeat_byte(0x11),
            db: Arc::new(peer_db),
        });
        let (_, all) = get(&api, "/api/disputes");
        let players: Vec<(&Value, &Value, &Value)> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (&d["node"], &d["node_account"], &d["defending"]))
            .collect();
        assert_eq!(
            players,
            [
                (
                    &json!("validator"),
                    &json!(Address::repeat_byte(0xAC)),
                    &json!(false)
                ),
                (
                    &json!("liar"),
                    &json!(Address::repeat_byte(0x11)),
                    &json!(true)
                ),
            ]
        );
        let (_, one) = get(&api, "/api/requests/1");
        assert_eq!(one["disputes"].as_array().unwrap().len(), 2);
        let (_, other) = get(&api, "/api/requests/3");
        assert_eq!(other["disputes"], json!([]));
    }

    /// `/api/chain` tells the console what it may use (404 without chain access),
    /// and the console's CSP lets the page reach the devnet's RPC origin only.
    #[test]
    fn chain_access_and_the_csp_follow_the_nodes_chain_info() {
        let (_dir, mut api) = api();
        let (status, v) = get(&api, "/api/chain");
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
        assert!(!api.csp().contains("connect-src"), "{}", api.csp());
        api.chain = Some(ChainInfo {
            chain_id: 31337,
            oracle: Address::repeat_byte(0x0A),
            rpc: Some("http://localhost:8545/".into()),
            prompt: Some(Address::repeat_byte(0x0C)),
            devnet_key: Some(format!("0x{}", "ac".repeat(32))),
            from_block: 0,
        });
        let (status, v) = get(&api, "/api/chain");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["chain_id"], 31337);
        assert_eq!(v["prompt"], json!(Address::repeat_byte(0x0C)));
        assert!(
            api.csp()
                .ends_with("; connect-src 'self' http://localhost:8545"),
            "{}",
            api.csp()
        );
        // A URL that is not a plain origin adds nothing to the policy.
        for bad in [
            "localhost:8545",
            "http://evil.example; script-src *",
            "http:///x",
        ] {
            api.chain.as_mut().unwrap().rpc = Some(bad.into());
            assert!(!api.csp().contains("connect-src"), "{bad}: {}", api.csp());
        }
    }

    #[test]
    fn ids_parse_in_decimal_and_hex_only() {
        assert_eq!(parse_id("42"), Some(U256::from(42u64)));
        assert_eq!(parse_id("0x2a"), Some(U256::from(42u64)));
        assert_eq!(parse_id("0x2A"), Some(U256::from(42u64)));
        for bad in ["", "+1", " 1", "1e3", "0x", "0b101", &"f".repeat(65)] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
        assert_eq!(parse_id(&format!("0x{}", "f".repeat(64))), Some(U256::MAX));
    }
}
