//! A global allocator that can count allocations of one thread, for the hot-path benchmark's
//! "allocations per update" figure.
//!
//! The benchmark binary and the no-allocation test install it. Counting is off unless a benchmark turns it on;
//! while off, each allocation costs one relaxed atomic load and a predictable branch on top
//! of the system allocator. When on, only allocations of the thread that asked are counted.

// SAFETY (module-wide allow): a GlobalAlloc is unsafe by definition; every call is
// forwarded unchanged to `System` (see the comments on each method).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The system allocator plus an optional per-thread allocation counter.
pub struct CountingAllocator;

/// True while some thread counts (checked first, so the off path touches no thread-local).
static ANY_COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // `const` initialisation: no lazy setup and no destructor, so usable inside the allocator.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

#[inline]
fn note() {
    if ANY_COUNTING.load(Relaxed) && COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` on this thread counting its allocations (allocations, reallocations). Returns
/// `None` for the count when [`CountingAllocator`] is not the global allocator (e.g. when the
/// benchmark is called from a test binary), so no figure is made up.
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    let before = ALLOCATIONS.load(Relaxed);
    ANY_COUNTING.store(true, Relaxed);
    COUNTING.with(|c| c.set(true));
    // Probe: one boxed value must be counted if the allocator is installed.
    let probe = std::hint::black_box(Box::new(0u64));
    drop(probe);
    let probed = ALLOCATIONS.load(Relaxed);
    let result = f();
    let after = ALLOCATIONS.load(Relaxed);
    COUNTING.with(|c| c.set(false));
    ANY_COUNTING.store(false, Relaxed);
    let installed = probed > before;
    (result, installed.then(|| after - probed))
}

#[cfg(test)]
mod tests {
    /// The library's unit tests run without the counting allocator: no count is made up.
    #[test]
    fn without_the_allocator_installed_no_count_is_reported() {
        let (v, count) = super::count_allocations(|| vec![1u8; 64].len());
        assert_eq!(v, 64);
        assert_eq!(count, None);
    }
}
