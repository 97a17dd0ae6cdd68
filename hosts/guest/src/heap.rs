//! A bump allocator: the guest runs one request and exits, so memory is mostly
//! never returned. Only the most recent block is reclaimed when freed, and grown or
//! shrunk in place when reallocated (the temporaries of a layer are freed in
//! reverse order often enough that long image sampling loops stay bounded). The heap runs from the end of the image to [`HEAP_END`], below the
//! stack the VM sets at 0x7fff_f000; untouched memory costs nothing in the VM.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

/// First address the heap may not use.
const HEAP_END: usize = 0x7000_0000;

extern "C" {
    /// End of the loaded image (defined by the linker).
    static _end: u8;
}

/// The allocator: the next free address (0 until first use).
pub struct Bump {
    next: UnsafeCell<usize>,
}

// Safety: the guest is single-threaded.
unsafe impl Sync for Bump {}

impl Bump {
    /// An allocator that starts at `_end` on first use.
    pub const fn new() -> Bump {
        Bump {
            next: UnsafeCell::new(0),
        }
    }
}

// Safety: returns aligned, non-overlapping blocks inside [_end, HEAP_END), or null;
// a block is reused only after it was freed or reallocated.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // Safety: single-threaded; `next` is only touched here.
        let next = unsafe { &mut *self.next.get() };
        if *next == 0 {
            *next = core::ptr::addr_of!(_end) as usize;
        }
        let start = (*next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= HEAP_END => {
                *next = end;
                start as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: single-threaded; `next` is only touched here.
        let next = unsafe { &mut *self.next.get() };
        // The last block handed out: give its bytes back.
        if ptr as usize + layout.size() == *next {
            *next = ptr as usize;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Safety: single-threaded; `next` is only touched here.
        let next = unsafe { &mut *self.next.get() };
        let start = ptr as usize;
        if start + layout.size() == *next {
            // The last block: grow or shrink it in place.
            return match start.checked_add(new_size) {
                Some(end) if end <= HEAP_END => {
                    *next = end;
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
            // Safety: both blocks are live, distinct and at least this long.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
