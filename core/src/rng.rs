//! The seeded integer PRNG every random draw of the core comes from: sampling
//! (`crate::llama::sampler`) and diffusion noise (`crate::diffusion::noise`).

/// xorshift64* (as in llama2.c): 64-bit state, 32-bit outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Seed the generator; a zero seed (a fixed point of xorshift) is replaced by a
    /// constant.
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: if seed == 0 {
                0x9E37_79B9_7F4A_7C15
            } else {
                seed
            },
        }
    }

    /// A generator resumed from a raw [`Rng::state`] (a decode checkpoint), taken as
    /// is.
    pub fn from_state(state: u64) -> Rng {
        Rng { state }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// The raw state (committed in dispute checkpoints).
    pub fn state(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn rng_matches_llama2c_sequence() {
        // llama2.c: random_u32 with state 42.
        let mut r = Rng::new(42);
        let first: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        let mut s: u64 = 42;
        let mut want = Vec::new();
        for _ in 0..3 {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            want.push((s.wrapping_mul(0x2545F4914F6CDD1D) >> 32) as u32);
        }
        assert_eq!(first, want);
    }
}
