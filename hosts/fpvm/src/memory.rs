//! Sparse, merkleized 32-bit memory.
//!
//! Storage is a flat table of 2^20 optional 4 KiB pages (a page that was never written
//! reads as zeros), so a load or store is two indexed loads: no hashing, no maps. Each
//! page carries two dirty bits, set on every store:
//! - `MERKLE_DIRTY`: its subtree hashes are stale; [`Memory::root`] recomputes only
//!   those pages and their ancestors (lazily, when a root or proof is asked for);
//! - `SNAP_DIRTY`: written since the last checkpoint (see [`crate::checkpoint`]).
//!
//! The Merkle tree is binary over 32-byte leaves, depth 27 (see
//! [`crate::layout::memory`]). A leaf is the 32 raw memory bytes (not hashed); an
//! inner node is `keccak256(left ‖ right)`; the hash of an all-zero subtree of height
//! h is `ZERO[h]`, precomputed. Levels 0..7 lie inside a page (128 leaves), levels
//! 7..27 form the page tree (2^20 pages).

use crate::hash::{hash_pair, Hash};
use crate::layout::memory::{LEAF_SIZE, PROOF_SIZE, TREE_DEPTH};
use std::collections::HashMap;
use std::sync::OnceLock;

/// log2 of the page size.
pub const PAGE_BITS: u32 = 12;
/// Bytes per page.
pub const PAGE_SIZE: usize = 1 << PAGE_BITS;
/// Number of pages in the 32-bit address space.
pub const PAGE_COUNT: usize = 1 << (32 - PAGE_BITS);
/// Tree levels inside one page (leaf level 0 to page root level 7).
pub const PAGE_LEVELS: usize = PAGE_BITS as usize - 5;
/// Tree levels above the page roots.
pub const PAGE_TREE_LEVELS: usize = TREE_DEPTH - PAGE_LEVELS;

/// One page of memory.
pub type Page = [u8; PAGE_SIZE];

const MERKLE_DIRTY: u8 = 1;
const SNAP_DIRTY: u8 = 2;
const ALL_DIRTY: u8 = MERKLE_DIRTY | SNAP_DIRTY;

/// `ZERO[h]`: the root of an all-zero subtree of height `h` (h = 0: a zero leaf).
pub fn zero_hashes() -> &'static [Hash; TREE_DEPTH + 1] {
    static ZERO: OnceLock<[Hash; TREE_DEPTH + 1]> = OnceLock::new();
    ZERO.get_or_init(|| {
        let mut z = [[0u8; 32]; TREE_DEPTH + 1];
        for h in 1..=TREE_DEPTH {
            z[h] = hash_pair(&z[h - 1], &z[h - 1]);
        }
        z
    })
}

/// A Merkle proof of one 32-byte leaf: the leaf and its 27 siblings, bottom up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryProof {
    /// The 32 memory bytes of the leaf.
    pub leaf: [u8; LEAF_SIZE],
    /// Sibling hashes from the leaf level (index 0) up to just below the root.
    pub siblings: [Hash; TREE_DEPTH],
}

impl MemoryProof {
    /// The encoding used in a step proof: leaf ‖ siblings (896 bytes).
    pub fn encode(&self) -> [u8; PROOF_SIZE] {
        let mut out = [0u8; PROOF_SIZE];
        out[..32].copy_from_slice(&self.leaf);
        for (i, s) in self.siblings.iter().enumerate() {
            out[32 * (i + 1)..32 * (i + 2)].copy_from_slice(s);
        }
        out
    }

    /// Decodes a proof from exactly [`PROOF_SIZE`] bytes; `None` on a wrong length.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != PROOF_SIZE {
            return None;
        }
        let mut leaf = [0u8; 32];
        leaf.copy_from_slice(&bytes[..32]);
        let mut siblings = [[0u8; 32]; TREE_DEPTH];
        for (i, s) in siblings.iter_mut().enumerate() {
            s.copy_from_slice(&bytes[32 * (i + 1)..32 * (i + 2)]);
        }
        Some(Self { leaf, siblings })
    }
}

/// The root implied by `leaf` sitting at leaf index `addr >> 5` under `siblings`.
pub fn root_from_proof(addr: u32, leaf: &[u8; 32], siblings: &[Hash; TREE_DEPTH]) -> Hash {
    let mut index = addr >> 5;
    let mut node = *leaf;
    for sib in siblings {
        node = if index & 1 == 0 {
            hash_pair(&node, sib)
        } else {
            hash_pair(sib, &node)
        };
        index >>= 1;
    }
    node
}

/// Sparse 32-bit memory with lazily recomputed Merkle root.
pub struct Memory {
    pages: Box<[Option<Box<Page>>; PAGE_COUNT]>,
    flags: Box<[u8; PAGE_COUNT]>,
    /// Indices of allocated pages, in allocation order.
    present: Vec<u32>,
    merkle_dirty: Vec<u32>,
    snap_dirty: Vec<u32>,
    /// Page roots (level 7), for pages hashed at least once.
    page_roots: HashMap<u32, Hash>,
    /// `nodes[k]`: nodes at level 7 + k + 1 (k = 0..20), by index.
    nodes: Vec<HashMap<u32, Hash>>,
}

impl Default for Memory {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Memory {
    fn clone(&self) -> Self {
        let mut m = Memory::new();
        for &pi in &self.present {
            if let Some(p) = &self.pages[pi as usize] {
                m.insert_page(pi, p.as_ref());
            }
        }
        m
    }
}

impl Memory {
    /// Empty (all-zero) memory.
    pub fn new() -> Self {
        let mut pages = Vec::with_capacity(PAGE_COUNT);
        pages.resize_with(PAGE_COUNT, || None);
        let pages: Box<[Option<Box<Page>>; PAGE_COUNT]> = match pages.into_boxed_slice().try_into()
        {
            Ok(p) => p,
            Err(_) => unreachable!("the vector has PAGE_COUNT entries"),
        };
        let flags: Box<[u8; PAGE_COUNT]> = match vec![0u8; PAGE_COUNT].into_boxed_slice().try_into()
        {
            Ok(f) => f,
            Err(_) => unreachable!("the vector has PAGE_COUNT entries"),
        };
        Self {
            pages,
            flags,
            present: Vec::new(),
            merkle_dirty: Vec::new(),
            snap_dirty: Vec::new(),
            page_roots: HashMap::new(),
            nodes: vec![HashMap::new(); PAGE_TREE_LEVELS],
        }
    }

    /// Memory holding the given pages (as restored from a checkpoint).
    pub fn from_pages<'a>(pages: impl IntoIterator<Item = (u32, &'a Page)>) -> Self {
        let mut m = Memory::new();
        for (pi, p) in pages {
            m.insert_page(pi, p);
        }
        m
    }

    /// Memory holding the given pages with their known page roots ([`page_root`],
    /// kept by checkpoints): only the page tree above them is hashed, not the
    /// 255 hashes inside each page. The caller vouches for the roots.
    pub fn from_pages_with_roots<'a>(
        pages: impl IntoIterator<Item = (u32, &'a Page, Hash)>,
    ) -> Self {
        let mut m = Memory::new();
        let mut parents = Vec::new();
        for (pi, p, root) in pages {
            m.insert_page(pi, p);
            m.page_roots.insert(pi, root);
            parents.push(pi);
        }
        for pi in std::mem::take(&mut m.merkle_dirty) {
            m.flags[pi as usize] &= !MERKLE_DIRTY;
        }
        m.hash_page_tree(parents);
        m
    }

    fn insert_page(&mut self, pi: u32, data: &Page) {
        let page = self.page_mut(pi);
        page.copy_from_slice(data);
    }

    /// Number of allocated pages.
    pub fn page_count(&self) -> usize {
        self.present.len()
    }

    /// Bytes of guest memory held: allocated pages times [`PAGE_SIZE`]. The
    /// host holds about 1.05 times this (the pages, their Merkle maps once a
    /// root was taken) plus a fixed, lazily touched 9 MiB of page table.
    pub fn resident_bytes(&self) -> u64 {
        self.present.len() as u64 * PAGE_SIZE as u64
    }

    /// The page `pi`, if allocated.
    pub fn page(&self, pi: u32) -> Option<&Page> {
        self.pages.get(pi as usize).and_then(|p| p.as_deref())
    }

    /// Mutable page `pi`, allocating it and marking it dirty.
    #[inline]
    fn page_mut(&mut self, pi: u32) -> &mut Page {
        let i = pi as usize & (PAGE_COUNT - 1);
        if self.flags[i] != ALL_DIRTY {
            self.mark_dirty(i);
        }
        match &mut self.pages[i] {
            Some(p) => p,
            slot @ None => slot.insert(Box::new([0u8; PAGE_SIZE])),
        }
    }

    #[cold]
    fn mark_dirty(&mut self, i: usize) {
        let f = self.flags[i];
        if self.pages[i].is_none() {
            self.pages[i] = Some(Box::new([0u8; PAGE_SIZE]));
            self.present.push(i as u32);
        }
        if f & MERKLE_DIRTY == 0 {
            self.merkle_dirty.push(i as u32);
        }
        if f & SNAP_DIRTY == 0 {
            self.snap_dirty.push(i as u32);
        }
        self.flags[i] = ALL_DIRTY;
    }

    /// Loads an aligned little-endian u32 (`addr % 4 == 0` is the caller's duty;
    /// a misaligned address reads the aligned word containing it).
    #[inline(always)]
    pub fn load_u32(&self, addr: u32) -> u32 {
        match &self.pages[(addr >> PAGE_BITS) as usize] {
            Some(p) => {
                let o = (addr as usize) & (PAGE_SIZE - 4);
                u32::from_le_bytes([p[o], p[o + 1], p[o + 2], p[o + 3]])
            }
            None => 0,
        }
    }

    /// Loads an aligned little-endian u16 (alignment as for [`Self::load_u32`]).
    #[inline(always)]
    pub fn load_u16(&self, addr: u32) -> u16 {
        match &self.pages[(addr >> PAGE_BITS) as usize] {
            Some(p) => {
                let o = (addr as usize) & (PAGE_SIZE - 2);
                u16::from_le_bytes([p[o], p[o + 1]])
            }
            None => 0,
        }
    }

    /// Loads one byte.
    #[inline(always)]
    pub fn load_u8(&self, addr: u32) -> u8 {
        match &self.pages[(addr >> PAGE_BITS) as usize] {
            Some(p) => p[(addr as usize) & (PAGE_SIZE - 1)],
            None => 0,
        }
    }

    /// Stores an aligned little-endian u32.
    #[inline(always)]
    pub fn store_u32(&mut self, addr: u32, v: u32) {
        let p = self.page_mut(addr >> PAGE_BITS);
        let o = (addr as usize) & (PAGE_SIZE - 4);
        p[o..o + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Stores an aligned little-endian u16.
    #[inline(always)]
    pub fn store_u16(&mut self, addr: u32, v: u16) {
        let p = self.page_mut(addr >> PAGE_BITS);
        let o = (addr as usize) & (PAGE_SIZE - 2);
        p[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }

    /// Stores one byte.
    #[inline(always)]
    pub fn store_u8(&mut self, addr: u32, v: u8) {
        let p = self.page_mut(addr >> PAGE_BITS);
        p[(addr as usize) & (PAGE_SIZE - 1)] = v;
    }

    /// Reads `out.len()` bytes starting at `addr` (wrapping at 2^32).
    pub fn read_bytes(&self, addr: u32, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.load_u8(addr.wrapping_add(i as u32));
        }
    }

    /// Writes `data` starting at `addr` (wrapping at 2^32).
    pub fn write_bytes(&mut self, addr: u32, data: &[u8]) {
        let mut a = addr;
        let mut rest = data;
        while !rest.is_empty() {
            let o = (a as usize) & (PAGE_SIZE - 1);
            let n = rest.len().min(PAGE_SIZE - o);
            let p = self.page_mut(a >> PAGE_BITS);
            p[o..o + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            a = a.wrapping_add(n as u32);
        }
    }

    /// Zeroes `len` bytes from `addr`, touching only pages that exist (absent pages
    /// already read as zero).
    pub fn zero_range(&mut self, addr: u32, len: u64) {
        let mut a = addr as u64;
        let end = (addr as u64 + len).min(1 << 32);
        while a < end {
            let pi = (a >> PAGE_BITS) as u32;
            let o = (a as usize) & (PAGE_SIZE - 1);
            let n = ((end - a) as usize).min(PAGE_SIZE - o);
            if self.pages[pi as usize].is_some() {
                self.page_mut(pi)[o..o + n].fill(0);
            }
            a += n as u64;
        }
    }

    /// The 32-byte leaf containing `addr`.
    pub fn leaf(&self, addr: u32) -> [u8; 32] {
        let mut out = [0u8; 32];
        if let Some(p) = &self.pages[(addr >> PAGE_BITS) as usize] {
            let o = (addr as usize) & (PAGE_SIZE - 32);
            out.copy_from_slice(&p[o..o + 32]);
        }
        out
    }

    /// Takes the list of pages written since the last call (for checkpoints).
    pub fn take_snap_dirty(&mut self) -> Vec<u32> {
        let list = std::mem::take(&mut self.snap_dirty);
        for &pi in &list {
            self.flags[pi as usize] &= !SNAP_DIRTY;
        }
        list
    }

    /// Node of the page tree: level 0 = page roots, level 20 = the root.
    fn page_tree_node(&self, level: usize, index: u32) -> Hash {
        let found = if level == 0 {
            self.page_roots.get(&index)
        } else {
            self.nodes[level - 1].get(&index)
        };
        match found {
            Some(h) => *h,
            None => zero_hashes()[PAGE_LEVELS + level],
        }
    }

    /// The Merkle root, recomputing only what changed since the last call.
    pub fn root(&mut self) -> Hash {
        let dirty = std::mem::take(&mut self.merkle_dirty);
        let mut parents: Vec<u32> = Vec::with_capacity(dirty.len());
        for &pi in &dirty {
            self.flags[pi as usize] &= !MERKLE_DIRTY;
            let root = match &self.pages[pi as usize] {
                Some(p) => page_levels(p)[PAGE_LEVELS][0],
                None => zero_hashes()[PAGE_LEVELS],
            };
            self.page_roots.insert(pi, root);
            parents.push(pi);
        }
        self.hash_page_tree(parents)
    }

    /// Recompute the page-tree ancestors of the pages `parents` (whose page roots
    /// are current) and return the root.
    fn hash_page_tree(&mut self, mut parents: Vec<u32>) -> Hash {
        for level in 1..=PAGE_TREE_LEVELS {
            for p in parents.iter_mut() {
                *p >>= 1;
            }
            parents.sort_unstable();
            parents.dedup();
            for &idx in &parents {
                let l = self.page_tree_node(level - 1, idx << 1);
                let r = self.page_tree_node(level - 1, (idx << 1) | 1);
                self.nodes[level - 1].insert(idx, hash_pair(&l, &r));
            }
        }
        self.page_tree_node(PAGE_TREE_LEVELS, 0)
    }

    /// The Merkle proof of the leaf containing `addr` (brings the root up to date).
    pub fn proof(&mut self, addr: u32) -> MemoryProof {
        self.root();
        let pi = addr >> PAGE_BITS;
        let leaf_in_page = ((addr as usize) & (PAGE_SIZE - 1)) >> 5;
        let mut siblings = [[0u8; 32]; TREE_DEPTH];
        match &self.pages[pi as usize] {
            Some(p) => {
                let levels = page_levels(p);
                for (h, sib) in siblings.iter_mut().enumerate().take(PAGE_LEVELS) {
                    *sib = levels[h][(leaf_in_page >> h) ^ 1];
                }
            }
            None => siblings[..PAGE_LEVELS].copy_from_slice(&zero_hashes()[..PAGE_LEVELS]),
        }
        for k in 0..PAGE_TREE_LEVELS {
            siblings[PAGE_LEVELS + k] = self.page_tree_node(k, (pi >> k) ^ 1);
        }
        MemoryProof {
            leaf: self.leaf(addr),
            siblings,
        }
    }
}

/// All tree levels of one page: `[0]` = its 128 leaves, ..., `[7]` = its root.
/// The Merkle root of one page (its subtree of height 7).
pub fn page_root(p: &Page) -> Hash {
    page_levels(p)[PAGE_LEVELS][0]
}

fn page_levels(p: &Page) -> Vec<Vec<Hash>> {
    let mut levels: Vec<Vec<Hash>> = Vec::with_capacity(PAGE_LEVELS + 1);
    levels.push(
        p.chunks_exact(LEAF_SIZE)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect(),
    );
    for h in 0..PAGE_LEVELS {
        let next = levels[h]
            .chunks_exact(2)
            .map(|c| hash_pair(&c[0], &c[1]))
            .collect();
        levels.push(next);
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restoring_with_page_roots_gives_the_same_root_and_proofs() {
        let mut m = Memory::new();
        for (i, addr) in [0x1000u32, 0x1040, 0x8000_0000, 0x7fff_eff0, 0x2345_6780]
            .into_iter()
            .enumerate()
        {
            m.store_u32(addr, 0x0101_0101 * (i as u32 + 1));
        }
        let pages: Vec<(u32, Page)> = (0..PAGE_COUNT as u32)
            .filter_map(|pi| m.page(pi).map(|p| (pi, *p)))
            .collect();
        let mut plain = Memory::from_pages(pages.iter().map(|(pi, p)| (*pi, p)));
        let mut fast =
            Memory::from_pages_with_roots(pages.iter().map(|(pi, p)| (*pi, p, page_root(p))));
        assert_eq!(fast.root(), m.root());
        assert_eq!(plain.root(), m.root());
        assert_eq!(fast.proof(0x1040).encode(), m.proof(0x1040).encode());
        // Later writes still update the root.
        fast.store_u32(0x2345_6784, 7);
        m.store_u32(0x2345_6784, 7);
        assert_eq!(fast.root(), m.root());
    }

    #[test]
    fn empty_root_is_zero_hash() {
        let mut m = Memory::new();
        assert_eq!(m.root(), zero_hashes()[TREE_DEPTH]);
    }

    #[test]
    fn writing_zero_keeps_empty_root() {
        let mut m = Memory::new();
        m.store_u32(0x1234_5678, 0);
        assert_eq!(m.root(), zero_hashes()[TREE_DEPTH]);
    }

    #[test]
    fn proofs_verify_and_track_updates() {
        let mut m = Memory::new();
        let addrs = [
            0x0000_1000u32,
            0x0000_1020,
            0x8000_0000,
            0xffff_ffe0,
            0x0010_0004,
        ];
        for (i, &a) in addrs.iter().enumerate() {
            m.store_u32(a, 0xdead_0000 + i as u32);
            let root = m.root();
            for &b in &addrs {
                let p = m.proof(b);
                assert_eq!(root_from_proof(b, &p.leaf, &p.siblings), root);
                assert_eq!(MemoryProof::decode(&p.encode()).unwrap(), p);
            }
        }
        // A fresh memory with the same contents has the same root.
        let mut c = m.clone();
        assert_eq!(c.root(), m.root());
        // Proof of an untouched address too.
        let p = m.proof(0x4000_0000);
        assert_eq!(root_from_proof(0x4000_0000, &p.leaf, &p.siblings), m.root());
    }
}
