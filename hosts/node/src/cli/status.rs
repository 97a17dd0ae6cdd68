//! `oracle status`: requests seen / served / pending / finalized / failed, from a
//! node's database.
//!
//! It reads a copy of the database file, so it never writes to a node's database
//! (redb locks its file for one process, and a stopped node's state must stay as it
//! is); a running node reports the same figures on its `/metrics` endpoint
//! (`oracle_requests{state}`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::db::{Db, RequestState};

/// Arguments of `oracle status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The node's database file.
    #[arg(long, default_value = "operator.redb")]
    pub db: PathBuf,
    /// List every request, not only the totals.
    #[arg(long)]
    pub list: bool,
    /// Print one request's whole record (JSON).
    #[arg(long)]
    pub request: Option<u64>,
}

/// Print the totals (and the requests with `--list`).
pub fn run(args: &StatusArgs) -> Result<()> {
    if !args.db.exists() {
        anyhow::bail!("{} does not exist", args.db.display());
    }
    let db =
        Db::open_read_only(&args.db).with_context(|| format!("opening {}", args.db.display()))?;
    if let Some(id) = args.request {
        let record = db
            .request(alloy::primitives::U256::from(id))?
            .with_context(|| format!("no request {id} in {}", args.db.display()))?;
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    let counts = db.counts()?;
    let get = |s: RequestState| {
        counts
            .requests
            .iter()
            .find(|(n, _)| *n == s.name())
            .map_or(0, |(_, c)| *c)
    };
    let seen: u64 = counts.requests.iter().map(|(_, c)| c).sum();
    let pending = get(RequestState::Seen)
        + get(RequestState::Served)
        + get(RequestState::Submitting)
        + get(RequestState::Submitted);
    println!("database      {}", args.db.display());
    match counts.last_block {
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
    if counts.checks > 0 {
        println!("checked       {}", counts.checks);
        println!("mismatches    {}", counts.mismatches);
    }
    let disputes = db.dispute_count()?;
    if disputes > 0 {
        println!("disputes      {disputes}");
    }
    if args.list {
        for r in db.requests()? {
            println!(
                "request {} model {} {}{}",
                r.id,
                r.model_id,
                r.state.name(),
                r.error.map(|e| format!(": {e}")).unwrap_or_default()
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
    Ok(())
}
