//! Giving memory back: once a load has settled, the pages its buffers used (fetched
//! messages, batches, the producer's queue) are returned to the system, so an idle
//! monitor's resident size is what it holds now, not the most it ever used.

/// Past this size an allocation is mapped on its own (and unmapped when freed), and free
/// space above it at the top of an arena goes back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const LARGE: i32 = 1 << 20;

/// Fixes glibc's thresholds for the process (the binary calls it first thing): large
/// buffers (fetch responses, batches, answers) are mapped on their own and returned when
/// freed. Left to itself glibc raises both thresholds after the first large free (up to
/// 32 and 64 MiB), and every arena then keeps its free top resident: tens of MB held by
/// an idle monitor after one load, and the batches of a long load kept several times
/// over (a 10x load with 16 MiB batches peaked at 192-200 MB instead of 111 MB).
/// Elsewhere it does nothing.
pub fn stay_small() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; it takes no pointers.
        let set = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE) == 1
        };
        tracing::debug!(set, "allocator thresholds fixed at {LARGE} bytes");
    }
}

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
