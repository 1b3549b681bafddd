//! Process-wide SQLite settings. A file of its own: they only take effect before SQLite's first
//! use in the process, which no other test may have made.

use std::ffi::c_void;

#[test]
fn memory_settings_take_effect_only_before_first_use() {
    assert!(choreoscope::store::disable_memory_statistics());
    assert!(choreoscope::store::allocate_with_mimalloc());
    let connection = rusqlite::Connection::open_in_memory().unwrap();
    connection
        .execute_batch(
            "CREATE TABLE t (x TEXT); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
             INSERT INTO t SELECT hex(randomblob(500)) FROM n;",
        )
        .unwrap();
    // With statistics on, SQLite would count the memory this connection holds.
    // SAFETY: a plain getter.
    assert_eq!(unsafe { rusqlite::ffi::sqlite3_memory_used() }, 0);

    // SQLite's memory comes from mimalloc's heap, and SQLite sizes it as mimalloc does.
    // SAFETY: an allocation through SQLite, measured and freed through SQLite.
    unsafe {
        let p = rusqlite::ffi::sqlite3_malloc(1000);
        assert!(!p.is_null());
        assert!(
            libmimalloc_sys::mi_is_in_heap_region(p as *const c_void),
            "SQLite allocated outside mimalloc's heap"
        );
        let size = rusqlite::ffi::sqlite3_msize(p);
        assert_eq!(
            size as usize,
            libmimalloc_sys::mi_usable_size(p as *const c_void)
        );
        assert!(size >= 1000);
        let grown = rusqlite::ffi::sqlite3_realloc(p, 100_000);
        assert!(libmimalloc_sys::mi_is_in_heap_region(
            grown as *const c_void
        ));
        assert!(rusqlite::ffi::sqlite3_msize(grown) >= 100_000);
        rusqlite::ffi::sqlite3_free(grown);
    }
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM t WHERE length(x) = 1000", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rows, 100);

    // Once SQLite is in use the settings can no longer change, and say so.
    assert!(!choreoscope::store::disable_memory_statistics());
    assert!(!choreoscope::store::allocate_with_mimalloc());
}
