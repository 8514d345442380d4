//! Allocator settings for training on glibc. A training step allocates and
//! frees tens of megabytes of activations and gradients; with glibc's
//! defaults much of that memory is handed back to the kernel after each free
//! and faulted in (zeroed) again on the next step. Keeping it mapped
//! removes the page faults and memsets from every step.

/// Raises glibc's mmap and trim thresholds once per process; a no-op
/// elsewhere.
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes allocator parameters; it is called
        // once, before training allocates its tensors.
        unsafe {
            // Serve every allocation from the heap (im2col buffers exceed
            // the 32 MiB cap of the mmap threshold) and keep freed memory.
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        }
    });
}
