//! Fault injection, for tests only: the ways a dishonest operator or challenger
//! misbehaves, so that the honest roles can be shown to win against them. The
//! hidden `--fault-*-for-tests` flags that turn them on exist only in a build with
//! the `test-faults` cargo feature (`.ci/test` builds the tests' `oracle` with it);
//! in any other build [`FaultArgs`] is empty, [`Faults`] is always the default and
//! every branch on it is dead. A node with a fault on logs loudly.
//!
//! Every lie is *bound*: the contracts refuse a claim that does not commit to the
//! output it is posted with, so a liar posts a wrong output together with a claim
//! of its own that does commit to it, and loses the dispute game at the step (or
//! position) where its claim departs from the truth:
//! - one-phase (text or image): the honest VM trace, ending in a fabricated final
//!   state whose output field is the wrong output's hash
//!   ([`crate::roles::dispute::Trace::claiming`]); the liar loses at the last step;
//! - two-phase text: a chain whose token at one position is replaced
//!   ([`crate::serve::positions`]), or, for a rejected request, the honest chain of the
//!   error outcome with a non-empty output at its end; the liar loses at that
//!   position's (or the output transition's) VM game.

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

/// How this node lies (tests only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Operator: post a wrong output (with a bound claim) for every request.
    pub wrong_output: bool,
    /// Operator: post a wrong output with the *honest* claim (one-phase: the true
    /// final VM state). The contract must refuse it (`UnboundClaim`).
    pub honest_claim: bool,
    /// Validator: challenge correct results with a wrong output.
    pub challenge_correct: bool,
    /// Validator: challenge only the results of this address, with a wrong output
    /// (a sock puppet of that operator).
    pub puppet_of: Option<Address>,
    /// Never move in a game this node defends (lose on purpose, on time).
    pub throw_games: bool,
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }

    /// Whether this node serves wrong outputs (as operator).
    pub fn serves_wrong(&self) -> bool {
        self.wrong_output || self.honest_claim
    }

    /// Whether this node, as validator, challenges the result of `submitter` with
    /// a wrong output whatever its own check says.
    pub fn challenges_with_a_lie(&self, submitter: Address) -> bool {
        self.challenge_correct || self.puppet_of == Some(submitter)
    }

    /// Log what is on.
    pub fn announce(&self, role: &str) {
        if self.any() {
            tracing::warn!("{role}: TEST FAULTS ARE ON ({self:?}): this node is dishonest");
        }
    }
}

/// The hidden command-line switches of the faults (tests only; none without the
/// `test-faults` feature).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FaultArgs {
    /// Test only: post wrong outputs (bound to claims of their own).
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub fault_wrong_output_for_tests: bool,
    /// Test only: post wrong outputs with the honest claim (refused on chain).
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub fault_honest_claim_for_tests: bool,
    /// Test only: challenge correct results with a wrong output.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub fault_challenge_correct_for_tests: bool,
    /// Test only: challenge every result of this operator with a wrong output.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub fault_puppet_of_for_tests: Option<Address>,
    /// Test only: never move in a game this node defends.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub fault_throw_games_for_tests: bool,
}

impl FaultArgs {
    /// The faults these switches turn on.
    #[cfg(feature = "test-faults")]
    pub fn faults(&self) -> Faults {
        Faults {
            wrong_output: self.fault_wrong_output_for_tests,
            honest_claim: self.fault_honest_claim_for_tests,
            challenge_correct: self.fault_challenge_correct_for_tests,
            puppet_of: self.fault_puppet_of_for_tests,
            throw_games: self.fault_throw_games_for_tests,
        }
    }

    /// No faults: this build has no `test-faults` feature.
    #[cfg(not(feature = "test-faults"))]
    pub fn faults(&self) -> Faults {
        Faults::default()
    }
}

/// The wrong output a liar posts instead of `honest` (never the error outcome, so a
/// rejected request gets a non-empty lie).
pub fn wrong_output(honest: &[u8]) -> Vec<u8> {
    let mut out = honest.to_vec();
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out.extend_from_slice(b" (a lie)\n");
    out
}

/// The wrong output a lying challenger (or a sock puppet) posts instead of
/// `honest`: another lie than an operator's [`wrong_output`], so a puppet's claim
/// differs from the operator's it challenges.
pub fn challenger_lie(honest: &[u8]) -> Vec<u8> {
    let mut out = honest.to_vec();
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out.extend_from_slice(b" (another lie)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        faults: FaultArgs,
    }

    #[test]
    fn the_fault_switches_exist_only_with_the_test_faults_feature() {
        let parsed = Cli::try_parse_from(["oracle", "--fault-wrong-output-for-tests"]);
        if cfg!(feature = "test-faults") {
            assert!(parsed.unwrap().faults.faults().wrong_output);
        } else {
            let e = parsed.err().expect("a production build refuses the switch");
            assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        }
        assert!(!Cli::try_parse_from(["oracle"])
            .unwrap()
            .faults
            .faults()
            .any());
    }

    #[test]
    fn lies_differ_from_the_truth_and_from_the_error_outcome() {
        assert_eq!(wrong_output(b"Hi\n"), b"Hi (a lie)\n");
        assert!(!wrong_output(b"").is_empty());
        assert_ne!(wrong_output(b"x"), b"x");
        assert_ne!(challenger_lie(b"Hi\n"), wrong_output(b"Hi\n"));
        let puppet = Faults {
            puppet_of: Some(Address::repeat_byte(7)),
            ..Faults::default()
        };
        assert!(puppet.challenges_with_a_lie(Address::repeat_byte(7)));
        assert!(!puppet.challenges_with_a_lie(Address::repeat_byte(8)));
        assert!(!Faults::default().any());
    }
}
