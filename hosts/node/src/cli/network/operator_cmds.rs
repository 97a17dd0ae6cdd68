//! Operators' commands: `oracle bond --amount`, `oracle unbond`, `oracle withdraw`
//! (the free bond once the unbond delay passed, and everything credited: fees,
//! rewards, refunds) and `oracle balance`. Each call is simulated first, so a refused
//! one is explained and never sent.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use anyhow::{bail, Context, Result};
use oracle_contracts::AIOracle;

use super::params::parse_amount;
use super::{ChainArgs, KeyArgs, Session};
use crate::chain::{chain_now, transact};

/// Arguments of `oracle bond`.
#[derive(Debug, clap::Args)]
pub struct BondArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// How much to add to the bond: wei, or a decimal with eth / gwei.
    #[arg(long)]
    pub amount: String,
}

/// Arguments of `oracle unbond`, `oracle withdraw` and `oracle balance`.
#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Send `call` after simulating it; `what` names it in errors.
async fn send<P: Provider, D: alloy::contract::CallDecoder>(
    call: alloy::contract::CallBuilder<P, D>,
    what: &str,
) -> Result<()> {
    transact(&call, what).await.map(|_| ())
}

/// `oracle bond`: add to the caller's bond (registers it as an operator, cancels a
/// pending unbond).
pub async fn bond(args: &BondArgs) -> Result<()> {
    let amount = parse_amount(&args.amount)
        .with_context(|| format!("--amount {:?} is not an amount", args.amount))?;
    if amount.is_zero() {
        bail!("--amount must be more than 0");
    }
    let s = Session::open(&args.chain, &args.key).await?;
    let have = s.provider.get_balance(s.account).await?;
    if have < amount {
        bail!(
            "{} has {have} wei, less than the {amount} wei to bond (nothing was sent)",
            s.account
        );
    }
    let oracle = AIOracle::new(s.deployment.oracle()?, &s.provider);
    send(oracle.bond().value(amount).from(s.account), "bond").await?;
    print_balance(&s, &oracle).await
}

/// `oracle unbond`: stop submitting and start the unbond delay.
pub async fn unbond(args: &AccountArgs) -> Result<()> {
    let s = Session::open(&args.chain, &args.key).await?;
    let oracle = AIOracle::new(s.deployment.oracle()?, &s.provider);
    send(oracle.requestUnbond().from(s.account), "requestUnbond").await?;
    print_balance(&s, &oracle).await
}

/// `oracle withdraw`: the free bond (once unbonding and its delay passed) and every
/// ETH credit (fees, rewards, refunds).
pub async fn withdraw(args: &AccountArgs) -> Result<()> {
    let s = Session::open(&args.chain, &args.key).await?;
    let oracle = AIOracle::new(s.deployment.oracle()?, &s.provider);
    let op = oracle.getOperator(s.account).call().await?;
    let now = chain_now(&s.provider).await?;
    let mut did = false;
    let free = op.bond.to::<U256>() - op.locked.to::<U256>();
    if op.unbondAt.to::<u64>() != 0 && !free.is_zero() {
        if now < op.unbondAt.to::<u64>() {
            eprintln!(
                "the bond can be withdrawn in {} s (unbond delay)",
                op.unbondAt.to::<u64>() - now
            );
        } else {
            send(oracle.withdrawBond().from(s.account), "withdrawBond").await?;
            eprintln!("withdrew the free bond: {free} wei");
            did = true;
        }
    } else if op.unbondAt.to::<u64>() == 0 && !op.bond.is_zero() {
        eprintln!("the bond stays: run `oracle unbond` first, then withdraw after the delay");
    }
    let credit = oracle.balanceOf(s.account, Address::ZERO).call().await?;
    if !credit.is_zero() {
        send(oracle.withdraw(Address::ZERO).from(s.account), "withdraw").await?;
        eprintln!("withdrew credits (fees, rewards, refunds): {credit} wei");
        did = true;
    }
    if !did {
        eprintln!("nothing to withdraw now");
    }
    print_balance(&s, &oracle).await
}

/// `oracle balance`.
pub async fn balance(args: &AccountArgs) -> Result<()> {
    let s = Session::open(&args.chain, &args.key).await?;
    let oracle = AIOracle::new(s.deployment.oracle()?, &s.provider);
    print_balance(&s, &oracle).await
}

async fn print_balance<P: Provider>(
    s: &Session,
    oracle: &AIOracle::AIOracleInstance<P>,
) -> Result<()> {
    let op = oracle.getOperator(s.account).call().await?;
    let credit = oracle.balanceOf(s.account, Address::ZERO).call().await?;
    let eth = s.provider.get_balance(s.account).await?;
    println!("account   {}", s.account);
    println!(
        "bond      {} wei ({} locked behind results not final)",
        op.bond, op.locked
    );
    match op.unbondAt.to::<u64>() {
        0 => println!(
            "status    bonded{}",
            if op.bond.is_zero() { " (no bond)" } else { "" }
        ),
        at => println!("status    unbonding, withdrawable from {at} (unix time)"),
    }
    println!("credit    {credit} wei (fees, rewards, refunds: `oracle withdraw`)");
    println!("wallet    {eth} wei");
    Ok(())
}
