//! The node's embedded database (redb): what a crash or restart must not lose.
//!
//! One file per node role. Tables:
//! - `requests`: request id (32-byte big-endian) → [`RequestRecord`] (JSON), the
//!   operator's write-ahead record of every request it has seen;
//! - `open_requests`: the ids of the requests not finished yet, so a round reads
//!   only those (its cost does not grow with history);
//! - `ours`: request id → [`OurResult`], the validator's own result of a request,
//!   computed once and compared with every version of the result posted for it;
//! - `checks`: (request id, result version) → [`CheckRecord`], the validator's
//!   record of each result that became current (submitted, or installed by a
//!   dispute), and `open_checks` for those not settled yet;
//! - `disputes`: dispute id → [`DisputeRecord`] (JSON), every game this node plays
//!   (the board itself is on chain);
//! - `operators`: the addresses that bonded (for the operators' turn order);
//! - `payloads`: request id → [`RequestEvent`], the validator's copy of the
//!   requests of the models it holds (what it re-executes and challenges with);
//! - `meta`: name → u64, the cursors: the last block whose events of a stream are
//!   recorded.
//!
//! Write-ahead discipline: a record moves to `Submitting` (with the nonce it will
//! use) *before* the transaction is sent, and to `Submitted` (with its hash) after.
//! New events and their stream's cursor are written in one transaction, so an event
//! is never skipped by a cursor that ran ahead of it.
//!
//! A request is recorded with its payload hash (the contract's commitment to its
//! input and callback): if the chain is rolled back past a request and the id is
//! reused for another one, the event differs, and the record is replaced and served
//! again instead of being left stale.
//!
//! A database file that does not open (corrupt, truncated, another version) is a
//! clean error, never a panic.

use std::path::Path;

use alloy::primitives::{Address, Bytes, B256, U256};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::roles::dispute::DisputeRecord;

const REQUESTS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("requests");
const OPEN_REQUESTS: TableDefinition<[u8; 32], ()> = TableDefinition::new("open_requests");
const OURS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("ours");
const CHECKS: TableDefinition<([u8; 32], u32), &[u8]> = TableDefinition::new("checks");
const OPEN_CHECKS: TableDefinition<([u8; 32], u32), ()> = TableDefinition::new("open_checks");
const DISPUTES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("disputes");
const OPERATORS: TableDefinition<[u8; 20], ()> = TableDefinition::new("operators");
const PAYLOADS: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("payloads");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// redb failed: opening (locked by another process, corrupt), a transaction,
    /// a table, storage or a commit. Boxed: redb's errors are large.
    #[error("database: {0}")]
    Redb(Box<redb::Error>),
    /// The file is not a database this node can read (redb gave up on it).
    #[error("database file {0} is corrupt or not a node database")]
    Corrupt(String),
    /// A stored record does not parse (written by an incompatible version).
    #[error("database record: {0}")]
    Record(#[from] serde_json::Error),
    /// Copying the file for a read-only look failed.
    #[error("database copy: {0}")]
    Io(#[from] std::io::Error),
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
    /// Output and proof computed, not submitted.
    Served,
    /// About to send (or sent) the submission with `submit_nonce`; the hash is not
    /// recorded yet. After a crash the chain decides what happened.
    Submitting,
    /// The submission is on chain (or sent with a known hash).
    Submitted,
    /// Final: the result is final on chain.
    Finalized,
    /// Final: this node will not serve it (`error` says why).
    Failed,
    /// Final: not ours to serve (another operator's result, a model we do not
    /// hold, refunded, deadline passed); `error` says why.
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

/// A request as its `AICallbackRequest` event states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestEvent {
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
    /// Block of the event.
    pub block: u64,
}

impl RequestEvent {
    /// The contract's commitment to the request's payload:
    /// `keccak256(abi.encode(keccak256(input), callbackContract, keccak256(callbackData)))`.
    pub fn payload_hash(&self) -> B256 {
        payload_hash(&self.input, self.callback, &self.callback_data)
    }
}

/// AIOracle's payload hash of a request (`payloadHash` on the contract).
pub fn payload_hash(input: &[u8], callback: Address, callback_data: &[u8]) -> B256 {
    let mut enc = Vec::with_capacity(96);
    enc.extend_from_slice(alloy::primitives::keccak256(input).as_slice());
    enc.extend_from_slice(&[0u8; 12]);
    enc.extend_from_slice(callback.as_slice());
    enc.extend_from_slice(alloy::primitives::keccak256(callback_data).as_slice());
    alloy::primitives::keccak256(&enc)
}

/// An operator's record of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: U256,
    /// Model id.
    pub model_id: U256,
    /// The request's payload hash (see the module docs).
    pub payload_hash: B256,
    /// Input bytes (empty for a request this node does not serve: not kept).
    pub input: Bytes,
    /// Callback receiver.
    pub callback: Address,
    /// Callback gas limit.
    pub gas_limit: u64,
    /// Opaque callback data (empty when not kept).
    pub callback_data: Bytes,
    /// Block of the request event.
    pub block: u64,
    /// Current state.
    pub state: RequestState,
    /// Output bytes once served.
    pub output: Option<Bytes>,
    /// What binds the output on chain (one-phase: the final VM state), once served.
    pub proof: Option<Bytes>,
    /// The claim the contract will derive, once served.
    pub claim: Option<B256>,
    /// Nonce reserved for the submission (recorded before sending).
    pub submit_nonce: Option<u64>,
    /// Submission transaction hash.
    pub submit_tx: Option<B256>,
    /// Finalization transaction hash.
    pub finalize_tx: Option<B256>,
    /// Why the request failed or was skipped (or why its result is the error
    /// outcome).
    pub error: Option<String>,
    /// Gas used by this node's transactions for the request.
    pub gas_used: u64,
}

impl RequestRecord {
    /// A fresh record of `e` in state `Seen`.
    pub fn seen(e: &RequestEvent) -> Self {
        RequestRecord {
            id: e.id,
            model_id: e.model_id,
            payload_hash: e.payload_hash(),
            input: e.input.clone(),
            callback: e.callback,
            gas_limit: e.gas_limit,
            callback_data: e.callback_data.clone(),
            block: e.block,
            state: RequestState::Seen,
            output: None,
            proof: None,
            claim: None,
            submit_nonce: None,
            submit_tx: None,
            finalize_tx: None,
            error: None,
            gas_used: 0,
        }
    }

    /// A record of `e`, for a model this node does not serve: final at once, and
    /// without the input and callback data (they are not this node's to keep).
    pub fn not_served(e: &RequestEvent) -> Self {
        RequestRecord {
            input: Bytes::new(),
            callback_data: Bytes::new(),
            state: RequestState::Skipped,
            error: Some(format!("model {} is not served by this node", e.model_id)),
            ..RequestRecord::seen(e)
        }
    }
}

/// The validator's own result of a request (computed once per request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OurResult {
    /// Our output, its proof and claim.
    Served {
        /// Output bytes.
        output: Bytes,
        /// The proof posted with it (one-phase: the final VM state).
        proof: Bytes,
        /// The claim.
        claim: B256,
    },
    /// We could not compute it (a model we do not hold, or an error); the reason.
    Unavailable(String),
}

/// What the validator concluded about one version of a request's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckState {
    /// Recorded, not compared yet.
    Pending,
    /// Equal to our result.
    Agreed,
    /// Differs; the challenge is queued (or sent, hash not recorded yet).
    Challenging,
    /// Differs; our challenge is on chain.
    Challenged,
    /// Mismatch found too late (window closed) or the challenge failed; see `error`.
    Failed,
    /// Not checked: our own result, or a model this node does not hold.
    Skipped,
}

impl CheckState {
    /// Nothing more for this check to do (the games are followed on their own).
    pub fn is_terminal(self) -> bool {
        !matches!(self, CheckState::Pending | CheckState::Challenging)
    }
}

/// A validator's record of one version of a request's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// Request id.
    pub id: U256,
    /// The result's version (0 when submitted, +1 per replacement by a dispute).
    pub version: u32,
    /// Who posted it (the operator, or the winning challenger).
    pub submitter: Address,
    /// Its output.
    pub output: Bytes,
    /// Its claim.
    pub claim: B256,
    /// Block of the event that made it current.
    pub block: u64,
    /// Current state.
    pub state: CheckState,
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
    /// Validator checks that found a mismatch (challenging, challenged or failed).
    pub mismatches: u64,
    /// Last processed block.
    pub last_block: Option<u64>,
}

/// The database of one node.
pub struct Db {
    db: Database,
    /// For a read-only look: the temporary copy the database was opened from.
    _copy: Option<tempfile::TempPath>,
}

/// A table of JSON records by key `K`.
type Records<K> = TableDefinition<'static, K, &'static [u8]>;
/// An index of keys `K` (the open records of a [`Records`] table).
type Index<K> = TableDefinition<'static, K, ()>;

impl Db {
    /// The record under `key` in `table`.
    fn get<K, T>(&self, table: Records<K>, key: K::SelfType<'_>) -> Result<Option<T>, DbError>
    where
        K: redb::Key + 'static,
        T: serde::de::DeserializeOwned,
    {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let v = t.get(key)?;
        Ok(match v {
            Some(v) => Some(serde_json::from_slice(v.value())?),
            None => None,
        })
    }

    /// Every record of `table`, in key order.
    fn all<K, T>(&self, table: Records<K>) -> Result<Vec<T>, DbError>
    where
        K: redb::Key + 'static,
        T: serde::de::DeserializeOwned,
    {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// The records of `table` whose keys are in `index`, in key order.
    fn listed<K, T>(&self, index: Index<K>, table: Records<K>) -> Result<Vec<T>, DbError>
    where
        K: redb::Key + 'static,
        T: serde::de::DeserializeOwned,
    {
        let tx = self.db.begin_read()?;
        let open = tx.open_table(index)?;
        let t = tx.open_table(table)?;
        let mut out = Vec::new();
        for entry in open.iter()? {
            let (k, _) = entry?;
            if let Some(v) = t.get(k.value())? {
                out.push(serde_json::from_slice(v.value())?);
            }
        }
        Ok(out)
    }

    /// Store `record` under `key` in `table`, and list the key in `index` unless the
    /// record is `done`; durably (redb commits are fsynced).
    fn put_listed<K, T>(
        &self,
        table: Records<K>,
        index: Index<K>,
        key: K::SelfType<'_>,
        record: &T,
        done: bool,
    ) -> Result<(), DbError>
    where
        K: redb::Key + 'static,
        for<'a> K::SelfType<'a>: Clone,
        T: Serialize,
    {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(table)?
                .insert(key.clone(), serde_json::to_vec(record)?.as_slice())?;
            let mut open = tx.open_table(index)?;
            if done {
                open.remove(key)?;
            } else {
                open.insert(key, ())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn key(id: U256) -> [u8; 32] {
    id.to_be_bytes::<32>()
}

/// Open `path` with redb, turning a panic on a corrupt file into an error.
fn open_redb(path: &Path, create: bool) -> Result<Database, DbError> {
    let shown = path.display().to_string();
    let opened = std::panic::catch_unwind(|| {
        if create {
            Database::create(path)
        } else {
            Database::open(path)
        }
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)))) => {
            Err(DbError::Corrupt(shown))
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(DbError::Corrupt(shown)),
    }
}

impl Db {
    /// Open (or create) the database at `path`, creating its tables.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let db = open_redb(path, true)?;
        let tx = db.begin_write()?;
        tx.open_table(REQUESTS)?;
        tx.open_table(OPEN_REQUESTS)?;
        tx.open_table(OURS)?;
        tx.open_table(CHECKS)?;
        tx.open_table(OPEN_CHECKS)?;
        tx.open_table(DISPUTES)?;
        tx.open_table(OPERATORS)?;
        tx.open_table(PAYLOADS)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Db { db, _copy: None })
    }

    /// Open a copy of the database at `path` for reading: the file itself is never
    /// written (it may belong to a stopped node whose state must stay as it is).
    pub fn open_read_only(path: &Path) -> Result<Db, DbError> {
        let copy = tempfile::NamedTempFile::new()?.into_temp_path();
        std::fs::copy(path, &copy)?;
        let db = open_redb(&copy, false)?;
        Ok(Db {
            db,
            _copy: Some(copy),
        })
    }

    /// Last block whose events are recorded under `cursor` (e.g. `"requests"`).
    pub fn cursor(&self, cursor: &str) -> Result<Option<u64>, DbError> {
        let tx = self.db.begin_read()?;
        let t = match tx.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(t.get(cursor)?.map(|v| v.value()))
    }

    /// Record that the events of `cursor` are handled up to `block`.
    pub fn set_cursor(&self, cursor: &str, block: u64) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(cursor, block)?;
        tx.commit()?;
        Ok(())
    }

    /// Record request events and move the `requests` cursor to `block`,
    /// atomically. A known request is kept as it is, unless the chain now has
    /// another request under its id (a rollback): then it is replaced.
    /// `served(model)` says whether this node serves a model (the others are
    /// recorded final, without their payload).
    pub fn record_requests(
        &self,
        events: &[RequestEvent],
        block: u64,
        served: impl Fn(U256) -> bool,
    ) -> Result<Vec<U256>, DbError> {
        let mut replaced = Vec::new();
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(REQUESTS)?;
            let mut open = tx.open_table(OPEN_REQUESTS)?;
            for e in events {
                let k = key(e.id);
                let known: Option<RequestRecord> = match t.get(k)? {
                    Some(v) => Some(serde_json::from_slice(v.value())?),
                    None => None,
                };
                match known {
                    Some(r) if r.payload_hash == e.payload_hash() => continue,
                    Some(_) => replaced.push(e.id),
                    None => {}
                }
                let r = if served(e.model_id) {
                    RequestRecord::seen(e)
                } else {
                    RequestRecord::not_served(e)
                };
                t.insert(k, serde_json::to_vec(&r)?.as_slice())?;
                if r.state.is_terminal() {
                    open.remove(k)?;
                } else {
                    open.insert(k, ())?;
                }
            }
            tx.open_table(META)?.insert("requests", block)?;
        }
        tx.commit()?;
        Ok(replaced)
    }

    /// Store a request record (durably: redb commits are fsynced), keeping the index
    /// of open requests.
    pub fn put_request(&self, r: &RequestRecord) -> Result<(), DbError> {
        self.put_listed(REQUESTS, OPEN_REQUESTS, key(r.id), r, r.state.is_terminal())
    }

    /// One request's record.
    pub fn request(&self, id: U256) -> Result<Option<RequestRecord>, DbError> {
        self.get(REQUESTS, key(id))
    }

    /// The requests not finished yet, by id (the serving order: every request has
    /// the same timeout, so by id is by deadline).
    pub fn open_requests(&self) -> Result<Vec<RequestRecord>, DbError> {
        self.listed(OPEN_REQUESTS, REQUESTS)
    }

    /// Every request record, by id.
    pub fn requests(&self) -> Result<Vec<RequestRecord>, DbError> {
        self.all(REQUESTS)
    }

    /// Up to `limit` request records that `keep`, newest (highest id) first: read
    /// from the end of the table, stopping at `limit`, so a long history costs only
    /// what is listed.
    pub fn recent_requests(
        &self,
        limit: usize,
        keep: impl Fn(&RequestRecord) -> bool,
    ) -> Result<Vec<RequestRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REQUESTS)?;
        let mut out = Vec::new();
        for entry in t.iter()?.rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = entry?;
            let r: RequestRecord = serde_json::from_slice(v.value())?;
            if keep(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Record results that became current (known ones are kept) and move `cursor`
    /// to `block`, atomically.
    pub fn record_checks(
        &self,
        records: &[CheckRecord],
        cursor: &str,
        block: u64,
    ) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(CHECKS)?;
            let mut open = tx.open_table(OPEN_CHECKS)?;
            for r in records {
                let k = (key(r.id), r.version);
                if t.get(k)?.is_none() {
                    t.insert(k, serde_json::to_vec(r)?.as_slice())?;
                    if !r.state.is_terminal() {
                        open.insert(k, ())?;
                    }
                }
            }
            tx.open_table(META)?.insert(cursor, block)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Store a check record, keeping the index of open checks.
    pub fn put_check(&self, r: &CheckRecord) -> Result<(), DbError> {
        self.put_listed(
            CHECKS,
            OPEN_CHECKS,
            (key(r.id), r.version),
            r,
            r.state.is_terminal(),
        )
    }

    /// One check record.
    pub fn check(&self, id: U256, version: u32) -> Result<Option<CheckRecord>, DbError> {
        self.get(CHECKS, (key(id), version))
    }

    /// The checks not settled yet.
    pub fn open_checks(&self) -> Result<Vec<CheckRecord>, DbError> {
        self.listed(OPEN_CHECKS, CHECKS)
    }

    /// Every check record, by request id and version.
    pub fn checks(&self) -> Result<Vec<CheckRecord>, DbError> {
        self.all(CHECKS)
    }

    /// Every version of request `id`'s result this node checked, in order.
    pub fn checks_of(&self, id: U256) -> Result<Vec<CheckRecord>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CHECKS)?;
        let mut out = Vec::new();
        for entry in t.range((key(id), 0)..=(key(id), u32::MAX))? {
            let (_, v) = entry?;
            out.push(serde_json::from_slice(v.value())?);
        }
        Ok(out)
    }

    /// Our own result of request `id`, if computed.
    pub fn ours(&self, id: U256) -> Result<Option<OurResult>, DbError> {
        self.get(OURS, key(id))
    }

    /// Store our own result of request `id`.
    pub fn put_ours(&self, id: U256, ours: &OurResult) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        tx.open_table(OURS)?
            .insert(key(id), serde_json::to_vec(ours)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Record the request events of the models this node holds (`served`) and move
    /// `cursor` to `block`, atomically; an id the chain reused for another request
    /// (a rollback) takes the new event.
    pub fn record_payloads(
        &self,
        events: &[RequestEvent],
        cursor: &str,
        block: u64,
        served: impl Fn(U256) -> bool,
    ) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(PAYLOADS)?;
            for e in events.iter().filter(|e| served(e.model_id)) {
                t.insert(key(e.id), serde_json::to_vec(e)?.as_slice())?;
            }
            tx.open_table(META)?.insert(cursor, block)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The request event of `id`, if recorded (by [`Db::record_payloads`], or in an
    /// operator's request record).
    pub fn payload(&self, id: U256) -> Result<Option<RequestEvent>, DbError> {
        let tx = self.db.begin_read()?;
        if let Some(v) = tx.open_table(PAYLOADS)?.get(key(id))? {
            return Ok(Some(serde_json::from_slice(v.value())?));
        }
        let t = tx.open_table(REQUESTS)?;
        let Some(v) = t.get(key(id))? else {
            return Ok(None);
        };
        let r: RequestRecord = serde_json::from_slice(v.value())?;
        Ok(
            (r.state != RequestState::Skipped || !r.input.is_empty()).then(|| RequestEvent {
                id: r.id,
                model_id: r.model_id,
                input: r.input,
                callback: r.callback,
                gas_limit: r.gas_limit,
                callback_data: r.callback_data,
                block: r.block,
            }),
        )
    }

    /// Record operators that bonded and move the `operators` cursor to `block`.
    pub fn record_operators(&self, operators: &[Address], block: u64) -> Result<(), DbError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(OPERATORS)?;
            for a in operators {
                t.insert(a.0 .0, ())?;
            }
            tx.open_table(META)?.insert("operators", block)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every address that bonded.
    pub fn operators(&self) -> Result<Vec<Address>, DbError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(OPERATORS)?;
        let mut out = Vec::new();
        for entry in t.iter()? {
            let (k, _) = entry?;
            out.push(Address::from(k.value()));
        }
        Ok(out)
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
        self.get(DISPUTES, key(id))
    }

    /// Every dispute record, by id.
    pub fn disputes(&self) -> Result<Vec<DisputeRecord>, DbError> {
        self.all(DISPUTES)
    }

    /// Number of dispute records (the games this node plays or played).
    pub fn dispute_count(&self) -> Result<u64, DbError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(DISPUTES)?.len()?)
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
            .filter(|c| {
                matches!(
                    c.state,
                    CheckState::Challenging | CheckState::Challenged | CheckState::Failed
                )
            })
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

    fn event(id: u64, input: &'static [u8]) -> RequestEvent {
        RequestEvent {
            id: U256::from(id),
            model_id: U256::from(1u64),
            input: Bytes::from_static(input),
            callback: Address::ZERO,
            gas_limit: 100_000,
            callback_data: Bytes::new(),
            block: 7,
        }
    }

    #[test]
    fn records_survive_reopening_and_known_requests_are_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let db = Db::open(&path).unwrap();
            assert_eq!(db.cursor("requests").unwrap(), None);
            db.record_requests(&[event(1, b"Lily"), event(2, b"Tom")], 10, |_| true)
                .unwrap();
            let mut r = db.request(U256::from(1u64)).unwrap().unwrap();
            r.state = RequestState::Submitting;
            r.submit_nonce = Some(4);
            db.put_request(&r).unwrap();
            // Seeing the event again (a rescan) must not reset the state.
            let replaced = db
                .record_requests(&[event(1, b"Lily")], 12, |_| true)
                .unwrap();
            assert!(replaced.is_empty());
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

    /// After a rollback the chain reuses an id for another request: the stale
    /// record is replaced (and served again), not kept.
    #[test]
    fn a_request_id_reused_by_another_request_replaces_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.redb")).unwrap();
        db.record_requests(&[event(1, b"Lily")], 3, |_| true)
            .unwrap();
        let mut r = db.request(U256::from(1u64)).unwrap().unwrap();
        r.state = RequestState::Submitted;
        db.put_request(&r).unwrap();
        assert!(db
            .open_requests()
            .unwrap()
            .iter()
            .all(|r| r.state == RequestState::Submitted));
        let replaced = db
            .record_requests(&[event(1, b"Tom")], 4, |_| true)
            .unwrap();
        assert_eq!(replaced, vec![U256::from(1u64)]);
        let r = db.request(U256::from(1u64)).unwrap().unwrap();
        assert_eq!((r.state, &r.input[..]), (RequestState::Seen, &b"Tom"[..]));
    }

    /// Requests for models the node does not serve are recorded final, without
    /// their payload; finished requests leave the open index, so a round reads only
    /// the open ones.
    #[test]
    fn rounds_read_only_open_requests_and_unserved_payloads_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.redb")).unwrap();
        let mut big = event(5, b"x");
        big.callback_data = Bytes::from(vec![7u8; 4096]);
        big.model_id = U256::from(9u64);
        db.record_requests(&[event(1, b"a"), event(2, b"b"), big], 1, |m| {
            m == U256::from(1u64)
        })
        .unwrap();
        let skipped = db.request(U256::from(5u64)).unwrap().unwrap();
        assert_eq!(skipped.state, RequestState::Skipped);
        assert!(skipped.callback_data.is_empty() && skipped.input.is_empty());
        let mut r = db.request(U256::from(1u64)).unwrap().unwrap();
        r.state = RequestState::Finalized;
        db.put_request(&r).unwrap();
        let open: Vec<U256> = db.open_requests().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(open, vec![U256::from(2u64)]);
    }

    #[test]
    fn ids_order_numerically() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("n.redb")).unwrap();
        db.record_requests(
            &[event(300, b"a"), event(2, b"b"), event(1 << 40, b"c")],
            1,
            |_| true,
        )
        .unwrap();
        let ids: Vec<U256> = db.requests().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            vec![U256::from(2u64), U256::from(300u64), U256::from(1u64 << 40)]
        );
    }

    /// A truncated or bit-flipped file is a clean error, never a panic; a read-only
    /// look never changes the file.
    #[test]
    fn a_corrupt_file_is_an_error_and_read_only_opens_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.redb");
        {
            let db = Db::open(&path).unwrap();
            db.record_requests(&[event(1, b"Lily")], 3, |_| true)
                .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let look = Db::open_read_only(&path).unwrap();
        assert_eq!(look.requests().unwrap().len(), 1);
        drop(look);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "read-only left the file as it was"
        );
        for (what, broken) in [
            ("truncated", bytes[..bytes.len() / 3].to_vec()),
            ("header flipped", {
                let mut b = bytes.clone();
                for x in b.iter_mut().take(64) {
                    *x ^= 0xA5;
                }
                b
            }),
            ("empty", Vec::new()),
        ] {
            let p = dir.path().join(format!("{}.redb", what.replace(' ', "-")));
            std::fs::write(&p, &broken).unwrap();
            let opened = Db::open(&p).and_then(|db| db.requests().map(|_| ()));
            assert!(
                opened.is_err() || what == "empty",
                "{what}: opened a broken file"
            );
        }
    }
}
