//! Giving memory back: once a load has settled, the pages its buffers used (fetched
//! messages, batches, the producer's queue) are returned to the system, so an idle
//! monitor's resident size is what it holds now, not the most it ever used.

/// Returns the allocator's free pages to the system (glibc keeps them per thread arena
/// otherwise). Elsewhere it does nothing.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases memory the allocator holds free; it takes
        // no pointers and is safe to call from any thread at any time.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(
            released = released != 0,
            "gave free memory back to the system"
        );
    }
}
