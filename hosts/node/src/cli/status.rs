//! `oracle status`: requests seen / served / pending / finalized / failed, from a
//! running node's JSON API (`--node http://ADDR`, the node's `--http` listener) or
//! from a stopped node's database file.
//!
//! A database file is read from a copy, so it never writes to a node's database
//! (redb locks its file for one process, and a stopped node's state must stay as it
//! is); a running node holds that lock, which is why it is read through its API.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::api::{status_value, summary, timeline};
use crate::db::{Db, RequestState};

/// Arguments of `oracle status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A stopped node's database file (ignored with --node).
    #[arg(long, default_value = "operator.redb")]
    pub db: PathBuf,
    /// A running node's HTTP address (its `--http`), e.g. http://127.0.0.1:9100:
    /// read through its JSON API instead of a database file.
    #[arg(long)]
    pub node: Option<String>,
    /// List every request, not only the totals.
    #[arg(long)]
    pub list: bool,
    /// Print one request's whole record (JSON).
    #[arg(long)]
    pub request: Option<u64>,
}

/// Print the totals (and the requests with `--list`).
pub fn run(args: &StatusArgs) -> Result<()> {
    let source = match &args.node {
        Some(url) => Source::Node(url.trim_end_matches('/').to_string()),
        None => {
            if !args.db.exists() {
                bail!("{} does not exist", args.db.display());
            }
            let db = Db::open_read_only(&args.db)
                .with_context(|| format!("opening {}", args.db.display()))?;
            Source::Db(args.db.display().to_string(), db)
        }
    };
    if let Some(id) = args.request {
        println!("{}", serde_json::to_string_pretty(&source.request(id)?)?);
        return Ok(());
    }
    print_status(&source.name(), &source.status()?);
    if args.list {
        for r in source.requests()? {
            println!(
                "request {} model {} {}{}",
                number(&r["id"]),
                number(&r["model_id"]),
                text(&r["state"]),
                r["error"]
                    .as_str()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
        if let Source::Db(_, db) = &source {
            for d in db.disputes()? {
                let side = if d.defending {
                    "defending"
                } else {
                    "challenging"
                };
                let path: Vec<String> = d
                    .history
                    .iter()
                    .map(|m| format!("{} {}..{} {}", m.board, m.lo, m.hi, m.action))
                    .collect();
                println!(
                    "dispute {} request {} {side} {:?}, {} moves{}{}",
                    d.dispute,
                    d.request,
                    d.state,
                    d.moves,
                    if path.is_empty() { "" } else { ": " },
                    path.join(" → ")
                );
            }
            for c in db.checks()? {
                println!(
                    "result {} version {} by {} {:?}{}",
                    c.id,
                    c.version,
                    c.submitter,
                    c.state,
                    c.error.map(|e| format!(": {e}")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// Where the figures come from.
enum Source {
    /// A running node's API base URL.
    Node(String),
    /// A database file (its name, opened).
    Db(String, Db),
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Node(url) => format!("node          {url}"),
            Source::Db(path, _) => format!("database      {path}"),
        }
    }

    fn status(&self) -> Result<Value> {
        match self {
            Source::Node(url) => get_json(&format!("{url}/api/status")),
            Source::Db(_, db) => status_value(db),
        }
    }

    fn requests(&self) -> Result<Vec<Value>> {
        match self {
            Source::Node(url) => {
                let list = get_json(&format!(
                    "{url}/api/requests?limit={}",
                    crate::api::MAX_LIMIT
                ))?;
                match list {
                    Value::Array(items) => Ok(items.into_iter().rev().collect()),
                    other => bail!("{url}/api/requests: not a list: {other}"),
                }
            }
            Source::Db(_, db) => Ok(db.requests()?.iter().map(summary).collect()),
        }
    }

    fn request(&self, id: u64) -> Result<Value> {
        match self {
            Source::Node(url) => get_json(&format!("{url}/api/requests/{id}")),
            Source::Db(path, db) => {
                let record = db
                    .request(alloy::primitives::U256::from(id))?
                    .with_context(|| format!("no request {id} in {path}"))?;
                let mut value = serde_json::to_value(&record)?;
                value["timeline"] = Value::Array(timeline(&record));
                Ok(value)
            }
        }
    }
}

/// GET `url` and parse its JSON body; an API error's message becomes the error.
fn get_json(url: &str) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let response = client
            .get(url)
            .send()
            .await
            .with_context(|| format!("reaching {url} (is the node running with --http?)"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?;
        let value: Value = serde_json::from_slice(&body)
            .with_context(|| format!("{url} answered HTTP {status} without JSON"))?;
        if !status.is_success() {
            bail!(
                "{url}: HTTP {status}: {}",
                value["error"].as_str().unwrap_or("no message")
            );
        }
        Ok(value)
    })
}

/// A JSON id (a `U256`, which serde writes as `0x` hex) in decimal, as the chain's
/// tools print it.
fn number(v: &Value) -> String {
    v.as_str()
        .and_then(crate::api::parse_id)
        .map_or_else(|| text(v), |n| n.to_string())
}

/// A JSON number or string as printed text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The totals of a `/api/status` value.
fn print_status(source: &str, status: &Value) {
    let get = |s: RequestState| status["requests"][s.name()].as_u64().unwrap_or(0);
    let seen: u64 = RequestState::ALL.iter().map(|&s| get(s)).sum();
    let pending = get(RequestState::Seen)
        + get(RequestState::Served)
        + get(RequestState::Submitting)
        + get(RequestState::Submitted);
    println!("{source}");
    if let Some(role) = status["role"].as_str() {
        println!("role          {role} {}", text(&status["account"]));
    }
    match status["last_block"].as_u64() {
        Some(b) => println!("last block    {b}"),
        None => println!("last block    none"),
    }
    println!("seen          {seen}");
    println!(
        "served        {}",
        get(RequestState::Submitted) + get(RequestState::Finalized)
    );
    println!("pending       {pending}");
    println!("finalized     {}", get(RequestState::Finalized));
    println!("failed        {}", get(RequestState::Failed));
    println!("skipped       {}", get(RequestState::Skipped));
    let checks = status["checks"].as_u64().unwrap_or(0);
    if checks > 0 {
        println!("checked       {checks}");
        println!(
            "mismatches    {}",
            status["mismatches"].as_u64().unwrap_or(0)
        );
    }
    let disputes = status["disputes"].as_u64().unwrap_or(0);
    if disputes > 0 {
        println!("disputes      {disputes}");
    }
}
