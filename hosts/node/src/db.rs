//! The node's embedded database (redb): what a crash or restart must not lose.
//!
//! One file per node role. Tables:
//! - `requests`: request id (32-byte big-endian) → [`RequestRecord`] (JSON), the
//!   operator's write-ahead record of every request it has seen;
//! - `checks`: request id → [`CheckRecord`] (JSON), the validator's record of every
//!   submitted result it re-executed;
//! - `disputes`: dispute id → [`DisputeRecord`] (JSON), every game this node plays
//!   (the board itself is on chain);
//! - `meta`: name → u64, e.g. `last_block`, the last block whose events are
//!   recorded.
//!
//! Write-ahead discipline: a record moves to `Submitting` (with the nonce it will
//! use) *before* the transaction is sent, and to `Submitted` (with its hash) after.
//! New events and the block cursor are written in one transaction, so a request is
//! never skipped by a cursor that ran ahead of it.

use std::path::Path;

use alloy::primitives::{Address, Bytes, B256, U256};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::dispute::DisputeRecord;

const REQUESTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("requests");
const CHECKS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("checks");
const DISPUTES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("disputes");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed: opening (locked by another process, corrupt), a transaction,
    /// a table, storage or a commit. Boxed: redb's errors are large.
    #[error("database: {0}")]
    Redb(Box<redb::Error>),
    /// A stored record does not parse (written by an incompatible version).
    #[error("database record: {0}")]
    Record(#[from] serde_json::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(Box::new(e.into()))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Where a request stands for this operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestState {
    /// The event is recorded; nothing computed yet.
    Seen,
    /// Output and claim computed, not submitted.
    Served,
    /// About to send (or sent) the submission with `submit_nonce`; the hash is not
    /// recorded yet. After a crash the chain decides what happened.
    Submitting,
    /// The submission is on chain (or sent with a known hash).
    Submitted,
    /// Final: the result is final on chain.
    Finalized,
    /// Final: this node will not serve it (`error` says why: bad input, ...).
    Failed,
    /// Final: not ours to serve (another operator's result, a model we do not
    /// hold, refunded); `error` says why.
    Skipped,
}

impl RequestState {
    /// All states, in lifecycle order.
    pub const ALL: [RequestState; 7] = [
        RequestState::Seen,
        RequestState::Served,
        RequestState::Submitting,
        RequestState::Submitted,
        RequestState::Finalized,
        RequestState::Failed,
        RequestState::Skipped,
    ];

    /// Nothing more to do.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestState::Finalized | RequestState::Failed | RequestState::Skipped
        )
    }

    /// Lower-case name (for logs, metrics and `oracle status`).
    pub fn name(self) -> &'static str {
        match self {
            RequestState::Seen => "seen",
            RequestState::Served => "served",
            RequestState::Submitting => "submitting",
            RequestState::Submitted => "submitted",
            RequestState::Finalized => "finalized",
            RequestState::Failed => "failed",
            RequestState::Skipped => "skipped",
        }
    }
}

/// An operator's record of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: U256,
    /// Model id.
    pub model_id: U256,
    /// Input bytes (the prompt).
    pub input: Bytes,
    /// Callback receiver.
    pub callback: Address,
    /// Callback gas limit.
    pub gas_limit: u64,
    /// Opaque callback data.
    pub callback_data: Bytes,
    /// Block of the request event.
    pub block: u64,
    /// Current state.
    pub state: RequestState,
    /// Output bytes once served.
    pub output: Option<Bytes>,
    /// Claim (final VM state hash) once served.
    pub claim: Option<B256>,
    /// Nonce reserved for the submission (recorded before sending).
    pub submit_nonce: Option<u64>,
    /// Submission transaction hash.
    pub submit_tx: Option<B256>,
    /// Finalization transaction hash.
    pub finalize_tx: Option<B256>,
    /// Why the request failed or was skipped.
    pub error: Option<String>,
    /// Gas used by this node's transactions for the request.
    pub gas_used: u64,
}

impl RequestRecord {
    /// A fresh record in state `Seen`.
    pub fn seen(
        id: U256,
        model_id: U256,
        input: Bytes,
        callback: Address,
        gas_limit: u64,
        callback_data: Bytes,
        block: u64,
    ) -> Self {
        RequestRecord {
            id,
            model_id,
            input,
            callback,
            gas_limit,
            callback_data,
            block,
            state: RequestState::Seen,
            output: None,
            claim: None,
            submit_nonce: None,
            submit_tx: None,
            finalize_tx: None,
            error: None,
            gas_used: 0,
        }
    }
}

/// What the validator concluded about one submitted result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckState {
    /// Recorded, not re-executed yet.
    Pending,
    /// Re-executed: output and claim agree.
    Agreed,
    /// Mismatch; about to send (or sent) the challenge, hash not recorded yet.
    Challenging,
    /// Mismatch; the challenge is on chain.
    Challenged,
    /// Mismatch, but the contract has no dispute game factory (`DisputesDisabled`).
    DisputesDisabled,
    /// Mismatch found too late (window closed) or the challenge failed; see `error`.
    Failed,
    /// Not checked: our own result, or a model this node does not hold.
    Skipped,
}

impl CheckState {
    /// Nothing more for this validator to do (`Challenged` is terminal until the
    /// node plays the bisection game).
    pub fn is_terminal(self) -> bool {
        !matches!(self, CheckState::Pending | CheckState::Challenging)
    }
}

/// A validator's record of one submitted result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Request id.
    pub id: U256,
    /// Who submitted the result.
    pub submitter: Address,
    /// The submitted output.
    pub output: Bytes,
    /// The submitted claim.
    pub claim: B256,
    /// Block of the `ResultSubmitted` event.
    pub block: u64,
    /// Current state.
    pub state: CheckState,
    /// Our output, when it differs.
    pub our_output: Option<Bytes>,
    /// Our claim, when it differs.
    pub our_claim: Option<B256>,
    /// Challenge transaction hash.
    pub challenge_tx: Option<B256>,
    /// Why the check failed or was skipped, or what the challenge ran into.
    pub error: Option<String>,
}

/// Requests per state, for `oracle status` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `(state name, count)` for every request state, in lifecycle order.
    pub requests: Vec<(&'static str, u64)>,
    /// Validator checks recorded.
    pub checks: u64,
    /// Validator checks that found a mismatch (challenged, disabled or failed).
    pub mismatches: u64,
    /// Last processed block.
    pub last_block: Option<u64>,
}

/// The database of one node.
pub struct Db {
    db: Database,
}

fn key(id: U256) -> [u8; 32] {
    id.to_be_bytes::<32>()
}

impl Db {
    /// Open (or create) the database at `path`, creating its tables.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(REQUESTS)?;
        tx.open_table(CHECKS)?;
        tx.open_table(DISPUTES)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Db { db })
    }

    /// Last block whose events are recorded under `cursor` (e.g. `"requests"`).
    pub fn cursor(&self, cursor: &str) -> Result<Option<u64>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        Ok(t.get(cursor)?.map(|v| v.value()))
    }

    /// Record new requests (those already known are left as they are) and move the
    /// `requests` cursor to `block`, atomically.
    pub fn record_requests(&self, records: &[RequestRecord], block: u64) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(REQUESTS)?;
            for r in records {
                let k = key(r.id);
                if t.get(k)?.is_none() {
                    t.insert(k, serde_json::to_vec(r)?.as_slice())?;
                }
            }
            let mut m = tx.open_table(META)?;
            m.insert("requests", block)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Record new results to check (known ones are kept) and move the `results`
    /// cursor to `block`, atomically.
    pub fn record_checks(&self, records: &[CheckRecord], block: u64) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(CHECKS)?;
            for r in records {
                let k = key(r.id);
                if t.get(k)?.is_none() {
                    t.insert(k, serde_json::to_vec(r)?.as_slice())?;
                }
            }
            let mut m = tx.open_table(META)?;
            m.insert("results", block)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Store a request record (durably: redb commits are fsynced).
    pub fn put_request(&self, r: &RequestRecord) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(REQUESTS)?
            .insert(key(r.id), serde_json::to_vec(r)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Store a check record.
    pub fn put_check(&self, r: &CheckRecord) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(CHECKS)?
            .insert(key(r.id), serde_json::to_vec(r)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// One request's record.
    pub fn request(&self, id: U256) -> Result<Option<RequestRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REQUESTS)?;
        let v = t.get(key(id))?;
        Ok(match v {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Every request record, by id.
    pub fn requests(&self) -> Result<Vec<RequestRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REQUESTS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Every check record, by request id.
    pub fn checks(&self) -> Result<Vec<CheckRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CHECKS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Number of dispute records (the games this node plays or played).
    pub fn dispute_count(&self) -> Result<u64, DbError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(DISPUTES)?.len()?)
    }

    /// Record that the events of `cursor` are handled up to `block`.
    pub fn set_cursor(&self, cursor: &str, block: u64) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(cursor, block)?;
        tx.commit()?;
        Ok(())
    }

    /// One check's record.
    pub fn check(&self, id: U256) -> Result<Option<CheckRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CHECKS)?;
        let v = t.get(key(id))?;
        Ok(match v {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Store a dispute record.
    pub fn put_dispute(&self, r: &DisputeRecord) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(DISPUTES)?
            .insert(key(r.dispute), serde_json::to_vec(r)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// One dispute's record.
    pub fn dispute(&self, id: U256) -> Result<Option<DisputeRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DISPUTES)?;
        let v = t.get(key(id))?;
        Ok(match v {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Every dispute record, by id.
    pub fn disputes(&self) -> Result<Vec<DisputeRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(DISPUTES)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Requests per state, checks and the cursor.
    pub fn counts(&self) -> Result<Counts, DbError> {
        let requests = self.requests()?;
        let checks = self.checks()?;
        let per_state = RequestState::ALL
            .iter()
            .map(|s| {
                let n = requests.iter().filter(|r| r.state == *s).count();
                (s.name(), u64::try_from(n).unwrap_or(u64::MAX))
            })
            .collect();
        let mismatches = checks
            .iter()
            .filter(|c| c.our_claim.is_some() || c.our_output.is_some())
            .count();
        Ok(Counts {
            requests: per_state,
            checks: u64::try_from(checks.len()).unwrap_or(u64::MAX),
            mismatches: u64::try_from(mismatches).unwrap_or(u64::MAX),
            last_block: self.cursor("requests")?.or(self.cursor("results")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> RequestRecord {
        RequestRecord::seen(
            U256::from(id),
            U256::from(1u64),
            Bytes::from_static(b"Lily"),
            Address::ZERO,
            100_000,
            Bytes::new(),
            7,
        )
    }

    #[test]
    fn records_survive_reopening_and_known_requests_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let db = Db::open(&path).unwrap();
            assert_eq!(db.cursor("requests").unwrap(), None);
            db.record_requests(&[record(1), record(2)], 10).unwrap();
            let mut r = db.request(U256::from(1u64)).unwrap().unwrap();
            r.state = RequestState::Submitting;
            r.submit_nonce = Some(4);
            db.put_request(&r).unwrap();
            // Seeing the event again (a rescan) must not reset the state.
            db.record_requests(&[record(1)], 12).unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.cursor("requests").unwrap(), Some(12));
        let r = db.request(U256::from(1u64)).unwrap().unwrap();
        assert_eq!(r.state, RequestState::Submitting);
        assert_eq!(r.submit_nonce, Some(4));
        let counts = db.counts().unwrap();
        assert_eq!(counts.requests[0], ("seen", 1));
        assert_eq!(counts.requests[2], ("submitting", 1));
        assert_eq!(db.requests().unwrap().len(), 2);
        assert_eq!(db.dispute_count().unwrap(), 0);
    }

    #[test]
    fn ids_order_numerically() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.redb")).unwrap();
        db.record_requests(&[record(300), record(2), record(1 << 40)], 1)
            .unwrap();
        let ids: Vec<U256> = db.requests().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            vec![U256::from(2u64), U256::from(300u64), U256::from(1u64 << 40)]
        );
    }
}
