//! Choosing the next token: greedy, or temperature / top-p sampling driven by a
//! seeded integer PRNG ([`crate::rng::Rng`]). Every step is integer arithmetic, so a seed gives the same
//! tokens everywhere.

use alloc::vec::Vec;

use crate::error::RequestError;
use crate::fixed::{sat_i32, FRAC, ONE};
use crate::math::softmax_q30;
use crate::rng::Rng;

/// Sampling parameters in fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingParams {
    /// Temperature in Q16; `0` means greedy.
    pub temperature_q16: u32,
    /// Top-p in Q16, `(0, 65536]`; `65536` (or `0`) disables the nucleus cut.
    pub top_p_q16: u32,
    /// PRNG seed.
    pub seed: u64,
}

impl SamplingParams {
    /// Greedy decoding (argmax, lowest index on ties).
    pub const GREEDY: SamplingParams = SamplingParams {
        temperature_q16: 0,
        top_p_q16: ONE as u32,
        seed: 0,
    };

    /// Check ranges: temperature at most 100, top-p at most 1.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.temperature_q16 > 100 << FRAC {
            return Err(RequestError::BadSampling("temperature must be at most 100"));
        }
        if self.top_p_q16 > ONE as u32 {
            return Err(RequestError::BadSampling("top-p must be in [0, 1]"));
        }
        Ok(())
    }
}

/// Index of the largest logit, the lowest index among equals.
pub fn argmax(logits: &[i32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// A sampler with its scratch buffers.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    scaled: Vec<i32>,
    probs: Vec<u32>,
    order: Vec<u32>,
}

impl Sampler {
    /// A sampler over a vocabulary of `vocab` tokens.
    pub fn new(params: SamplingParams, vocab: usize) -> Sampler {
        Sampler {
            params,
            rng: Rng::new(params.seed),
            scaled: alloc::vec![0; vocab],
            probs: alloc::vec![0; vocab],
            order: Vec::with_capacity(vocab),
        }
    }

    /// A sampler resumed with a given generator (from a decode checkpoint).
    pub fn with_rng(params: SamplingParams, vocab: usize, rng: Rng) -> Sampler {
        Sampler {
            rng,
            ..Sampler::new(params, vocab)
        }
    }

    /// The PRNG (its state is part of a decode checkpoint).
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// Pick the next token from Q16 logits.
    pub fn sample(&mut self, logits: &[i32]) -> u32 {
        let t = self.params.temperature_q16;
        if t == 0 {
            return argmax(logits);
        }
        for (s, &l) in self.scaled.iter_mut().zip(logits) {
            // l / T in Q16: (l << 16) / T, |l << 16| < 2^47.
            *s = sat_i32((i64::from(l) << FRAC) / i64::from(t));
        }
        softmax_q30(&self.scaled, &mut self.probs);
        let top_p = self.params.top_p_q16;
        if top_p == 0 || top_p >= ONE as u32 {
            let total: u64 = self.probs.iter().map(|&p| u64::from(p)).sum();
            let target = (u64::from(self.rng.next_u32()) * total) >> 32;
            return pick(
                self.probs
                    .iter()
                    .copied()
                    .enumerate()
                    .map(|(i, p)| (i as u32, p)),
                target,
            );
        }
        // Nucleus: most probable first (lowest index on ties), keep the shortest
        // prefix whose mass exceeds top_p, sample inside it.
        self.order.clear();
        self.order.extend(0..self.probs.len() as u32);
        let probs = &self.probs;
        self.order
            .sort_unstable_by(|&a, &b| probs[b as usize].cmp(&probs[a as usize]).then(a.cmp(&b)));
        let cutoff = u64::from(top_p) << 14; // Q16 -> Q30
        let mut kept = 0usize;
        let mut mass: u64 = 0;
        for &id in &self.order {
            mass += u64::from(probs[id as usize]);
            kept += 1;
            if mass > cutoff {
                break;
            }
        }
        let target = (u64::from(self.rng.next_u32()) * mass) >> 32;
        pick(
            self.order[..kept]
                .iter()
                .map(|&id| (id, probs[id as usize])),
            target,
        )
    }
}

/// The first candidate whose cumulative mass exceeds `target` (the last one if
/// rounding leaves `target` beyond the total).
fn pick(candidates: impl Iterator<Item = (u32, u32)>, target: u64) -> u32 {
    let mut cdf: u64 = 0;
    let mut last = 0;
    for (id, p) in candidates {
        cdf += u64::from(p);
        last = id;
        if target < cdf {
            return id;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_prefers_lowest_index() {
        assert_eq!(argmax(&[1, 5, 5, 2]), 1);
        assert_eq!(argmax(&[-3]), 0);
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_p() {
        let logits: Vec<i32> = (0..50).map(|i| (i % 7) << 16).collect();
        let params = SamplingParams {
            temperature_q16: ONE as u32,
            top_p_q16: 65536,
            seed: 7,
        };
        let a: Vec<u32> = {
            let mut s = Sampler::new(params, 50);
            (0..20).map(|_| s.sample(&logits)).collect()
        };
        let b: Vec<u32> = {
            let mut s = Sampler::new(params, 50);
            (0..20).map(|_| s.sample(&logits)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().collect::<alloc::collections::BTreeSet<_>>().len() > 1);
        // A tiny top-p keeps only the best tokens (logit 6: indices 6, 13, ...).
        let mut s = Sampler::new(
            SamplingParams {
                top_p_q16: 1,
                ..params
            },
            50,
        );
        for _ in 0..20 {
            assert_eq!(s.sample(&logits), 6);
        }
    }
}
