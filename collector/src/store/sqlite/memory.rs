//! Process-wide SQLite memory settings. SQLite only takes them before its first use in the
//! process, so `main` applies them first thing; each returns whether SQLite took it.

use std::ffi::{c_int, c_void};

use rusqlite::ffi;

/// Turns off SQLite's memory statistics for this process: with them on (the default), every
/// allocation SQLite makes takes a global mutex, 3–4 % of the writer's time in a profile of the
/// collector. Returns whether it took effect (not once SQLite is in use).
pub fn disable_memory_statistics() -> bool {
    // SAFETY: `sqlite3_config` is only allowed before SQLite initializes, which it checks itself
    // (returning SQLITE_MISUSE after); MEMSTATUS takes one int.
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int) };
    rc == ffi::SQLITE_OK
}

/// Makes SQLite allocate through mimalloc, the process's Rust allocator, instead of glibc's
/// `malloc`. Returns whether it took effect (not once SQLite is in use).
///
/// Through glibc, the SQLite writer's allocations (B-tree balancing, page cache) shared an arena
/// lock with the ingest loop freeing librdkafka's messages (which librdkafka allocates through
/// glibc): an off-CPU profile of the collector showed both threads sleeping on that lock
/// (`__lll_lock_wait_private`) more than on anything else (docs/benchmarks.md, run 14). mimalloc
/// allocates from per-thread heaps without a lock.
pub fn allocate_with_mimalloc() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(mi_malloc),
        xFree: Some(mi_free),
        xRealloc: Some(mi_realloc),
        xSize: Some(mi_size),
        xRoundup: Some(mi_roundup),
        xInit: Some(mi_init),
        xShutdown: Some(mi_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: as above; SQLITE_CONFIG_MALLOC takes a pointer to the methods, which SQLite copies
    // before returning.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    rc == ffi::SQLITE_OK
}

// SQLite's sizes are C ints, never negative (it checks before calling); a negative one would
// become a huge size and fail to allocate, which SQLite handles as out of memory.

unsafe extern "C" fn mi_malloc(size: c_int) -> *mut c_void {
    // SAFETY: any size is valid; mimalloc's blocks are aligned for any type, as SQLite requires.
    unsafe { libmimalloc_sys::mi_malloc(size as usize) }
}

unsafe extern "C" fn mi_free(p: *mut c_void) {
    // SAFETY: SQLite frees only what these methods allocated (or NULL).
    unsafe { libmimalloc_sys::mi_free(p) }
}

unsafe extern "C" fn mi_realloc(p: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as for `mi_free`.
    unsafe { libmimalloc_sys::mi_realloc(p, size as usize) }
}

unsafe extern "C" fn mi_size(p: *mut c_void) -> c_int {
    // SAFETY: as for `mi_free`; SQLite's allocations are far below `c_int::MAX`.
    unsafe { libmimalloc_sys::mi_usable_size(p) as c_int }
}

unsafe extern "C" fn mi_roundup(size: c_int) -> c_int {
    // SAFETY: a pure function of the size.
    unsafe { libmimalloc_sys::mi_good_size(size as usize) }.min(c_int::MAX as usize) as c_int
}

unsafe extern "C" fn mi_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn mi_shutdown(_: *mut c_void) {}
