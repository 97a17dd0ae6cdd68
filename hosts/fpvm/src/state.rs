//! The VM state outside memory, its fixed-layout encoding and its hash.

use crate::hash::{keccak256, Hash};
use crate::layout::{hash_status, state as off, status};

/// CPU and syscall state: everything in the encoding except the memory root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CpuState {
    /// Program counter.
    pub pc: u32,
    /// Registers x0..x31 (x0 stays 0).
    pub regs: [u32; 32],
    /// Executed steps.
    pub step: u64,
    /// [`crate::layout::status`] value.
    pub status: u8,
    /// Exit code or panic code.
    pub exit_code: u32,
    /// Current preimage key.
    pub preimage_key: [u8; 32],
    /// Read offset into the current preimage stream.
    pub preimage_offset: u32,
    /// Output commitment.
    pub output: [u8; 32],
}

impl CpuState {
    /// Whether the VM has halted (exited or panicked).
    pub fn halted(&self) -> bool {
        self.status != status::RUNNING
    }

    /// The [`crate::layout::state`] encoding with the given memory root.
    pub fn encode(&self, mem_root: &Hash) -> [u8; off::SIZE] {
        let mut b = [0u8; off::SIZE];
        b[off::MEM_ROOT..off::MEM_ROOT + 32].copy_from_slice(mem_root);
        b[off::PREIMAGE_KEY..off::PREIMAGE_KEY + 32].copy_from_slice(&self.preimage_key);
        b[off::OUTPUT..off::OUTPUT + 32].copy_from_slice(&self.output);
        b[off::PC..off::PC + 4].copy_from_slice(&self.pc.to_be_bytes());
        b[off::PREIMAGE_OFFSET..off::PREIMAGE_OFFSET + 4]
            .copy_from_slice(&self.preimage_offset.to_be_bytes());
        b[off::STEP..off::STEP + 8].copy_from_slice(&self.step.to_be_bytes());
        b[off::EXIT_CODE..off::EXIT_CODE + 4].copy_from_slice(&self.exit_code.to_be_bytes());
        b[off::STATUS] = self.status;
        for (i, r) in self.regs.iter().enumerate() {
            b[off::REGS + 4 * i..off::REGS + 4 * i + 4].copy_from_slice(&r.to_be_bytes());
        }
        b
    }

    /// Decodes an encoding; `None` unless it is exactly [`off::SIZE`] bytes.
    /// Returns the CPU state and the memory root.
    pub fn decode(b: &[u8]) -> Option<(CpuState, Hash)> {
        if b.len() != off::SIZE {
            return None;
        }
        let u32_at = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let b32 = |o: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&b[o..o + 32]);
            h
        };
        let mut step = [0u8; 8];
        step.copy_from_slice(&b[off::STEP..off::STEP + 8]);
        let mut regs = [0u32; 32];
        for (i, r) in regs.iter_mut().enumerate() {
            *r = u32_at(off::REGS + 4 * i);
        }
        let s = CpuState {
            pc: u32_at(off::PC),
            regs,
            step: u64::from_be_bytes(step),
            status: b[off::STATUS],
            exit_code: u32_at(off::EXIT_CODE),
            preimage_key: b32(off::PREIMAGE_KEY),
            preimage_offset: u32_at(off::PREIMAGE_OFFSET),
            output: b32(off::OUTPUT),
        };
        Some((s, b32(off::MEM_ROOT)))
    }
}

/// The status byte put in front of a state hash, from the encoding's STATUS and EXIT_CODE.
pub fn vm_status(status_byte: u8, exit_code: u32) -> u8 {
    match status_byte {
        status::RUNNING => hash_status::UNFINISHED,
        status::EXITED if exit_code == 0 => hash_status::VALID,
        status::EXITED => hash_status::INVALID,
        _ => hash_status::PANIC,
    }
}

/// State hash: keccak256(encoding) with byte 0 replaced by the VM status.
/// `encoded` must be a state encoding (its STATUS and EXIT_CODE are read).
pub fn state_hash(encoded: &[u8; off::SIZE]) -> Hash {
    let mut h = keccak256(encoded);
    let exit = u32::from_be_bytes([
        encoded[off::EXIT_CODE],
        encoded[off::EXIT_CODE + 1],
        encoded[off::EXIT_CODE + 2],
        encoded[off::EXIT_CODE + 3],
    ]);
    h[0] = vm_status(encoded[off::STATUS], exit);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_roundtrip() {
        let mut s = CpuState {
            pc: 0x1_0000,
            step: 0x0102_0304_0506_0708,
            ..Default::default()
        };
        s.regs[5] = 0xdead_beef;
        s.preimage_key[0] = 2;
        s.exit_code = 7;
        s.status = status::EXITED;
        let root = [9u8; 32];
        let enc = s.encode(&root);
        assert_eq!(&enc[off::PC..off::PC + 4], &[0, 1, 0, 0]);
        assert_eq!(CpuState::decode(&enc), Some((s, root)));
        assert_eq!(state_hash(&enc)[0], hash_status::INVALID);
        assert!(CpuState::decode(&enc[1..]).is_none());
    }
}
