//! Transparent huge pages for large fresh buffers.

/// The transparent huge page size of x86-64 Linux.
pub const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside [start, start + bytes) with transparent
/// huge pages where the system leaves that to the program (THP "madvise" mode): a fresh output
/// is written once, and faulting it in 4 KiB pages costs about as much as the write itself.
/// Elsewhere, or where it fails, nothing changes.
///
/// # Safety
/// [start, start + bytes) must lie inside one live allocation.
pub unsafe fn advise_huge_pages(start: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        let lo = (start as usize).next_multiple_of(HUGE_PAGE);
        let hi = (start as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the caller's allocation; MADV_HUGEPAGE changes only
            // how the kernel backs the pages, never their contents or validity.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}
