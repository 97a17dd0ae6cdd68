//! The guest's allocator: a bump allocator with reuse. The guest runs one request
//! and exits, so it needs no general-purpose allocator, but a sampling loop frees
//! and allocates the same layer temporaries every step and must not grow without
//! bound. So:
//! - the most recent block is given back when freed, and grown or shrunk in place
//!   when reallocated;
//! - any other freed block (of at least two words, word-aligned) goes on a free
//!   list and is reused by a later allocation of exactly its size whose alignment
//!   its address satisfies.
//!
//! The heap runs from the end of the image to [`HEAP_END`], below the stack the VM
//! sets at 0x7fff_f000; untouched memory costs nothing in the VM and reads as
//! zeros, so a zeroed allocation only clears what lies below the highest address
//! ever handed out (the model buffers, the largest allocations, are never cleared).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::mem::size_of;

/// First address the heap may not use.
const HEAP_END: usize = 0x7000_0000;

/// Smallest block kept on the free list: its size and the next block's address.
const MIN_FREE: usize = 2 * size_of::<usize>();

extern "C" {
    /// End of the loaded image (defined by the linker).
    static _end: u8;
}

/// The allocator's state.
struct State {
    /// The next free address (0 until first use).
    next: usize,
    /// The first freed block (0 if none); each holds `[size, next free block]`.
    free: usize,
    /// The end of the highest block ever handed out: memory from here up was never
    /// written and is zero.
    high: usize,
}

/// The allocator.
pub struct Bump {
    state: UnsafeCell<State>,
}

// Safety: the guest is single-threaded.
unsafe impl Sync for Bump {}

impl Bump {
    /// An allocator that starts at `_end` on first use.
    pub const fn new() -> Bump {
        Bump {
            state: UnsafeCell::new(State {
                next: 0,
                free: 0,
                high: 0,
            }),
        }
    }
}

impl State {
    /// A block from the top of the heap, or null.
    fn bump(&mut self, layout: Layout) -> *mut u8 {
        if self.next == 0 {
            self.next = core::ptr::addr_of!(_end) as usize;
        }
        let start = (self.next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= HEAP_END => {
                self.next = end;
                self.high = self.high.max(end);
                start as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }

    /// Unlink and return a freed block of exactly `layout.size()` bytes at an
    /// address aligned for `layout`, or null.
    ///
    /// # Safety
    /// The free list holds only blocks written by [`State::release`].
    unsafe fn reuse(&mut self, layout: Layout) -> *mut u8 {
        let mut link: *mut usize = &mut self.free;
        // Safety: every block on the list is a freed, word-aligned block of at
        // least MIN_FREE bytes whose first two words are its size and the next link.
        unsafe {
            while *link != 0 {
                let block = *link as *mut usize;
                if *block == layout.size() && (block as usize).is_multiple_of(layout.align()) {
                    *link = *block.add(1);
                    return block as *mut u8;
                }
                link = block.add(1);
            }
        }
        core::ptr::null_mut()
    }

    /// Give a block back: the top of the heap shrinks, others go on the free list
    /// (blocks too small or unaligned to hold the list's two words are dropped).
    ///
    /// # Safety
    /// `ptr` is a live block of `size` bytes from this allocator.
    unsafe fn release(&mut self, ptr: *mut u8, size: usize) {
        let start = ptr as usize;
        if start + size == self.next {
            self.next = start;
        } else if size >= MIN_FREE && start.is_multiple_of(size_of::<usize>()) {
            let block = ptr as *mut usize;
            // Safety: the block is ours, dead, word-aligned and at least two words.
            unsafe {
                *block = size;
                *block.add(1) = self.free;
            }
            self.free = start;
        }
    }
}

// Safety: returns aligned, non-overlapping blocks inside [_end, HEAP_END), or null;
// a block is handed out again only after it was freed.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: single-threaded; the state is only touched in these methods.
        let state = unsafe { &mut *self.state.get() };
        // Safety: the free list holds only released blocks.
        let reused = unsafe { state.reuse(layout) };
        if reused.is_null() {
            state.bump(layout)
        } else {
            reused
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Safety: single-threaded; the state is only touched in these methods.
        let high = unsafe { (*self.state.get()).high };
        // Safety: the caller's layout is passed on unchanged.
        let ptr = unsafe { self.alloc(layout) };
        if !ptr.is_null() {
            // Only the part below the old high-water mark can hold old data.
            let dirty = high.saturating_sub(ptr as usize).min(layout.size());
            // Safety: the block is ours and at least `dirty` bytes long.
            unsafe { core::ptr::write_bytes(ptr, 0, dirty) };
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: single-threaded; the caller passes a live block of `layout`.
        unsafe { (*self.state.get()).release(ptr, layout.size()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: single-threaded; the state is only touched in these methods.
        let state = unsafe { &mut *self.state.get() };
        let start = ptr as usize;
        if start + layout.size() == state.next {
            // The top block: grow or shrink it in place.
            return match start.checked_add(new_size) {
                Some(end) if end <= HEAP_END => {
                    state.next = end;
                    state.high = state.high.max(end);
                    ptr
                }
                _ => core::ptr::null_mut(),
            };
        }
        // Safety: the caller's contract (a live block of `layout`, `new_size` > 0
        // fitting the alignment) is passed on unchanged.
        let new =
            unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // Safety: both blocks are live, distinct and at least this long; the old
            // one is dead afterwards.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
