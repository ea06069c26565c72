//! The allocator of aidledger's programs and benchmarks: jemalloc.
//!
//! With glibc's malloc, a fold of millions of small records spent 42% of
//! its CPU in the allocator's free lists (BENCHMARKS.md, issue 16). jemalloc
//! returns freed pages to the system as it goes; by default the thread that
//! frees does that work, and the ledger's writer thread, which frees each
//! group's buffers, then spent up to twice its CPU per event. [`init`] hands
//! it to jemalloc's background thread.
//!
//! A program depends on this crate and calls [`init`] first thing in
//! `main`; libraries choose no allocator.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background purging. Without it the program runs as
/// well, only with the purging on its own threads, so a failure is
/// reported on standard error and not fatal.
pub fn init() {
    if let Err(error) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!("warning: jemalloc's background purging did not start: {error}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn init_turns_background_purging_on() {
        super::init();
        assert!(tikv_jemalloc_ctl::background_thread::read().unwrap());
    }
}
