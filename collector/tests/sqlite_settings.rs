//! Process-wide SQLite settings. A file of its own: they only take effect before SQLite's first
//! use in the process, which no other test may have made.

#[test]
fn memory_statistics_are_off_when_disabled_before_first_use() {
    assert!(choreoscope::store::disable_memory_statistics());
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
    // Once SQLite is in use the setting can no longer change, and says so.
    assert!(!choreoscope::store::disable_memory_statistics());
}
