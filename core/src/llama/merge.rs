//! The merge loop both BPE tokenizers share: repeatedly merge the best adjacent
//! pair (the leftmost on ties) until no pair merges.
//!
//! A direct transcription rescans every pair after each merge (quadratic in the
//! input). This keeps the candidate pairs in a max-heap ordered by (priority,
//! leftmost) over a linked list of slots and drops stale entries when they
//! surface, so it makes the same choice at every step in `O(n log n)` pair
//! lookups: at most `n - 1` merges, and each merge pushes at most two pairs.

use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

/// Merge `tokens` in place. `pair(left, right)` is the merge of two adjacent
/// tokens, if any: its priority (the highest merges first) and the merged token.
pub fn merge_best_pairs(
    tokens: &mut Vec<u32>,
    mut pair: impl FnMut(u32, u32) -> Option<(i64, u32)>,
) {
    let n = tokens.len();
    if n < 2 {
        return;
    }
    // Slot `i` holds `tokens[i]` while alive; `next`/`prev` link the live slots.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::new();
    let mut push = |heap: &mut BinaryHeap<Candidate>, tokens: &[u32], left: usize, right: usize| {
        if let Some((priority, merged)) = pair(tokens[left], tokens[right]) {
            heap.push(Candidate {
                priority,
                left,
                right,
                left_token: tokens[left],
                right_token: tokens[right],
                merged,
            });
        }
    };
    for left in 0..n - 1 {
        push(&mut heap, tokens, left, left + 1);
    }
    while let Some(c) = heap.pop() {
        let right = next[c.left];
        if !alive[c.left]
            || right != c.right
            || tokens[c.left] != c.left_token
            || tokens[right] != c.right_token
        {
            continue;
        }
        tokens[c.left] = c.merged;
        alive[right] = false;
        let after = next[right];
        next[c.left] = after;
        if after < n {
            prev[after] = c.left;
            push(&mut heap, tokens, c.left, after);
        }
        let before = prev[c.left];
        if before < n {
            push(&mut heap, tokens, before, c.left);
        }
    }
    let mut slot = 0;
    tokens.retain(|_| {
        slot += 1;
        alive[slot - 1]
    });
}

/// A merge the loop may apply: slots `left` and `right` (adjacent when queued)
/// holding `left_token` and `right_token` become `merged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    priority: i64,
    left: usize,
    right: usize,
    left_token: u32,
    right_token: u32,
    merged: u32,
}

impl Ord for Candidate {
    /// Highest priority first; on ties the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then(other.left.cmp(&self.left))
            .then(other.right.cmp(&self.right))
            .then(self.left_token.cmp(&other.left_token))
            .then(self.right_token.cmp(&other.right_token))
            .then(self.merged.cmp(&other.merged))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
