//! The parameters of a deployment (`oracle deploy --params FILE`, TOML), checked
//! before anything is sent.
//!
//! ```toml
//! submission_bond = "1 eth"        # locked per submitted result
//! challenge_bond = "0.5 eth"       # posted by a challenger
//! challenger_reward_bps = 5000     # share of the reward pot for winners
//! unbond_delay_s = 1209600         # 14 days
//! request_timeout_s = 86400        # time to serve a request
//! parameter_delay_s = 172800       # delay of the owner's parameter changes
//! min_callback_gas_price = "1 gwei"
//! protocol_fee_bps = 0
//! game_max_depth = 32              # one-phase games: traces of at most 2^32 steps
//! game_transition_depth = 28       # two-phase games: one transition of at most 2^28 steps
//! game_clock_s = 3600              # each side's chess clock
//! ```
//!
//! Amounts are wei, or a decimal with a unit (`eth`, `gwei`, `wei`). Every field has
//! the default shown; a file may set any of them.

use alloy::primitives::U256;
use serde::{Deserialize, Serialize};

/// Why parameters are refused.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// The file is not TOML, or has an unknown or mistyped field.
    #[error("parameters file: {0}")]
    Toml(#[from] toml::de::Error),
    /// An amount does not parse.
    #[error("{field}: {value:?} is not an amount (wei, or a decimal with eth / gwei / wei)")]
    Amount {
        /// The field.
        field: &'static str,
        /// Its text.
        value: String,
    },
    /// A value out of its range.
    #[error("{field} = {value}: {why}")]
    Range {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The range it must be in.
        why: &'static str,
    },
}

/// The parameters file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParamsFile {
    /// ETH locked per submitted result.
    pub submission_bond: String,
    /// ETH a challenger posts.
    pub challenge_bond: String,
    /// Share of the reward pot split among the winners of the final claim.
    pub challenger_reward_bps: u32,
    /// Delay between `requestUnbond` and `withdrawBond`, seconds.
    pub unbond_delay_s: u64,
    /// Time an operator has to serve a request, seconds.
    pub request_timeout_s: u64,
    /// Delay of the owner's parameter changes, seconds.
    pub parameter_delay_s: u64,
    /// Floor of the callback gas price.
    pub min_callback_gas_price: String,
    /// Protocol share of model fees, basis points.
    pub protocol_fee_bps: u16,
    /// One-phase games: traces of at most `2^game_max_depth` VM steps.
    pub game_max_depth: u8,
    /// Two-phase games: one transition of at most `2^game_transition_depth` steps.
    pub game_transition_depth: u8,
    /// Each side's chess clock, seconds.
    pub game_clock_s: u32,
}

impl Default for ParamsFile {
    fn default() -> Self {
        ParamsFile {
            submission_bond: "1 eth".into(),
            challenge_bond: "0.5 eth".into(),
            challenger_reward_bps: 5000,
            unbond_delay_s: 14 * 24 * 3600,
            request_timeout_s: 24 * 3600,
            parameter_delay_s: 2 * 24 * 3600,
            min_callback_gas_price: "1 gwei".into(),
            protocol_fee_bps: 0,
            game_max_depth: 32,
            game_transition_depth: 28,
            game_clock_s: 3600,
        }
    }
}

/// Checked parameters, ready to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Wei locked per submitted result.
    pub submission_bond: U256,
    /// Wei a challenger posts.
    pub challenge_bond: U256,
    /// Share of the reward pot, basis points.
    pub challenger_reward_bps: u32,
    /// Seconds.
    pub unbond_delay_s: u64,
    /// Seconds.
    pub request_timeout_s: u64,
    /// Seconds.
    pub parameter_delay_s: u64,
    /// Wei per gas.
    pub min_callback_gas_price: u128,
    /// Basis points.
    pub protocol_fee_bps: u16,
    /// Exponent of the one-phase trace bound.
    pub game_max_depth: u8,
    /// Exponent of the two-phase transition bound.
    pub game_transition_depth: u8,
    /// Seconds.
    pub game_clock_s: u32,
}

impl ParamsFile {
    /// Parse a TOML file's text.
    pub fn parse(text: &str) -> Result<ParamsFile, ParamsError> {
        Ok(toml::from_str(text)?)
    }

    /// Check every value against what the contracts accept (so a deployment never
    /// reverts half-way on a bad parameter).
    pub fn check(&self) -> Result<Params, ParamsError> {
        let range = |field, value: &dyn ToString, why| ParamsError::Range {
            field,
            value: value.to_string(),
            why,
        };
        let submission_bond = amount("submission_bond", &self.submission_bond)?;
        let challenge_bond = amount("challenge_bond", &self.challenge_bond)?;
        if submission_bond.is_zero() || submission_bond > U256::from(u128::MAX >> 32) {
            return Err(range(
                "submission_bond",
                &submission_bond,
                "must be > 0 and fit 96 bits",
            ));
        }
        if challenge_bond.is_zero() || challenge_bond > U256::from(u128::MAX >> 32) {
            return Err(range(
                "challenge_bond",
                &challenge_bond,
                "must be > 0 and fit 96 bits",
            ));
        }
        if self.challenger_reward_bps > 10_000 {
            return Err(range(
                "challenger_reward_bps",
                &self.challenger_reward_bps,
                "at most 10000",
            ));
        }
        const YEAR: u64 = 365 * 24 * 3600;
        if self.request_timeout_s == 0 || self.request_timeout_s > YEAR {
            return Err(range(
                "request_timeout_s",
                &self.request_timeout_s,
                "1 s to 365 days",
            ));
        }
        if self.unbond_delay_s > YEAR {
            return Err(range(
                "unbond_delay_s",
                &self.unbond_delay_s,
                "at most 365 days",
            ));
        }
        if self.parameter_delay_s > 30 * 24 * 3600 {
            return Err(range(
                "parameter_delay_s",
                &self.parameter_delay_s,
                "at most 30 days",
            ));
        }
        let gas_price = amount("min_callback_gas_price", &self.min_callback_gas_price)?;
        if gas_price > U256::from(1000u64) * U256::from(1_000_000_000u64) {
            return Err(range(
                "min_callback_gas_price",
                &gas_price,
                "at most 1000 gwei",
            ));
        }
        if self.protocol_fee_bps > 1000 {
            return Err(range(
                "protocol_fee_bps",
                &self.protocol_fee_bps,
                "at most 1000",
            ));
        }
        for (field, depth) in [
            ("game_max_depth", self.game_max_depth),
            ("game_transition_depth", self.game_transition_depth),
        ] {
            if depth == 0 || depth > 63 {
                return Err(range(field, &depth, "1 to 63"));
            }
        }
        if self.game_clock_s == 0 {
            return Err(range("game_clock_s", &self.game_clock_s, "must be > 0"));
        }
        Ok(Params {
            submission_bond,
            challenge_bond,
            challenger_reward_bps: self.challenger_reward_bps,
            unbond_delay_s: self.unbond_delay_s,
            request_timeout_s: self.request_timeout_s,
            parameter_delay_s: self.parameter_delay_s,
            min_callback_gas_price: gas_price.to::<u128>(),
            protocol_fee_bps: self.protocol_fee_bps,
            game_max_depth: self.game_max_depth,
            game_transition_depth: self.game_transition_depth,
            game_clock_s: self.game_clock_s,
        })
    }
}

/// An amount in wei: an integer (wei), or a decimal followed by `eth`, `gwei` or
/// `wei` (`"0.5 eth"`, `"20gwei"`).
pub fn parse_amount(text: &str) -> Option<U256> {
    let t = text.trim().to_ascii_lowercase();
    let (number, decimals) = if let Some(n) = t.strip_suffix("eth") {
        (n.trim(), 18)
    } else if let Some(n) = t.strip_suffix("gwei") {
        (n.trim(), 9)
    } else if let Some(n) = t.strip_suffix("wei") {
        (n.trim(), 0)
    } else {
        (t.as_str(), 0)
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > decimals
    {
        return None;
    }
    let scale = U256::from(10u64).checked_pow(U256::from(decimals))?;
    let whole = if whole.is_empty() {
        U256::ZERO
    } else {
        whole.parse::<U256>().ok()?
    };
    let frac_value = if frac.is_empty() {
        U256::ZERO
    } else {
        let padded = format!("{frac:0<decimals$}");
        padded.parse::<U256>().ok()?
    };
    whole.checked_mul(scale)?.checked_add(frac_value)
}

fn amount(field: &'static str, text: &str) -> Result<U256, ParamsError> {
    parse_amount(text).ok_or_else(|| ParamsError::Amount {
        field,
        value: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        let eth = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(parse_amount("1 eth"), Some(eth));
        assert_eq!(parse_amount("0.5eth"), Some(eth / U256::from(2u64)));
        assert_eq!(parse_amount("20 gwei"), Some(U256::from(20_000_000_000u64)));
        assert_eq!(parse_amount("12345"), Some(U256::from(12345u64)));
        assert_eq!(parse_amount(".25 ETH"), Some(eth / U256::from(4u64)));
        for bad in [
            "",
            "eth",
            "1.5 wei",
            "-1",
            "1e18",
            "0.0000000001 gwei",
            "1,5 eth",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_pass_and_bad_values_are_named() {
        assert!(ParamsFile::default().check().is_ok());
        let parsed =
            ParamsFile::parse("challenge_bond = \"0.1 eth\"\ngame_clock_s = 60\n").unwrap();
        assert_eq!(parsed.game_clock_s, 60);
        assert!(
            ParamsFile::parse("game_clok_s = 60").is_err(),
            "unknown field"
        );
        for (text, field) in [
            ("game_max_depth = 64", "game_max_depth"),
            ("submission_bond = \"0 eth\"", "submission_bond"),
            ("challenger_reward_bps = 10001", "challenger_reward_bps"),
            (
                "min_callback_gas_price = \"2000 gwei\"",
                "min_callback_gas_price",
            ),
            ("request_timeout_s = 0", "request_timeout_s"),
            ("challenge_bond = \"lots\"", "challenge_bond"),
        ] {
            let e = ParamsFile::parse(text)
                .unwrap()
                .check()
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(field), "{text}: {e}");
        }
    }
}
