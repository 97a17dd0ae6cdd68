//! A bump allocator: the guest runs one request and exits, so memory is never
//! returned. The heap runs from the end of the image to [`HEAP_END`], below the
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

// Safety: returns aligned, non-overlapping blocks inside [_end, HEAP_END), or null.
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

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}
