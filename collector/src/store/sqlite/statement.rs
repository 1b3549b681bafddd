//! A prepared SQLite statement whose values are bound without copies.
//!
//! rusqlite binds text and blobs as `SQLITE_TRANSIENT`, so SQLite allocates and copies every value
//! (11 % of the write path's instructions in callgrind, the ~800-byte header JSON above all). Here
//! values are bound as `SQLITE_STATIC`: SQLite reads them in place. That is sound because
//! [`StaticStatement::execute`] borrows the values for the whole call and resets the statement —
//! after which SQLite no longer reads them — before it returns.

use std::ffi::{c_char, c_int, CStr};
use std::ptr;

use rusqlite::ffi;

/// One value to bind, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text (UTF-8).
    Text(&'a str),
    /// A blob.
    Blob(&'a [u8]),
}

impl<'a> From<Option<&'a str>> for Param<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Param::Null, Param::Text)
    }
}

impl<'a> From<Option<&'a [u8]>> for Param<'a> {
    fn from(v: Option<&'a [u8]>) -> Self {
        v.map_or(Param::Null, Param::Blob)
    }
}

impl<'a> From<Option<i64>> for Param<'a> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Param::Null, Param::Int)
    }
}

/// A statement prepared on a connection; finalized on drop. It must not outlive the connection,
/// which the borrow in [`StaticStatement::prepare`] ensures.
pub struct StaticStatement<'conn> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _connection: std::marker::PhantomData<&'conn rusqlite::Connection>,
}

/// The error SQLite reports for `rc` on `db`.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is an open connection; sqlite3_errmsg returns a NUL-terminated string it owns,
    // copied here before any other call on the connection.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(message))
}

impl<'conn> StaticStatement<'conn> {
    /// Prepares `sql` (one statement) on `connection`.
    pub fn prepare(connection: &'conn rusqlite::Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle stays valid while `connection` is borrowed, which outlives `Self`.
        let db = unsafe { connection.handle() };
        let mut stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| rusqlite::Error::InvalidQuery)?;
        // SAFETY: `sql` is valid for `len` bytes; `stmt` receives the statement or null.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        if stmt.is_null() {
            return Err(rusqlite::Error::InvalidQuery);
        }
        Ok(Self {
            db,
            stmt,
            _connection: std::marker::PhantomData,
        })
    }

    /// Binds `params` (to `?1`, `?2`, … in order), runs the statement to completion, and returns
    /// the number of rows it changed.
    pub fn execute(&mut self, params: &[Param<'_>]) -> rusqlite::Result<usize> {
        let result = self.bind_and_step(params);
        // SAFETY: `stmt` is a live statement. After the reset and clearing, SQLite holds no
        // pointer to `params`, which the caller may drop once this returns.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
        result
    }

    fn bind_and_step(&mut self, params: &[Param<'_>]) -> rusqlite::Result<usize> {
        // SAFETY: a live statement.
        let expected = unsafe { ffi::sqlite3_bind_parameter_count(self.stmt) };
        if usize::try_from(expected).ok() != Some(params.len()) {
            return Err(rusqlite::Error::InvalidParameterCount(
                params.len(),
                expected as usize,
            ));
        }
        for (i, param) in params.iter().enumerate() {
            let index = i as c_int + 1;
            // SAFETY: a live statement and an index within its parameter count. Text and blobs
            // are bound SQLITE_STATIC: valid until `execute` resets the statement (module docs).
            let rc = unsafe {
                match *param {
                    Param::Null => ffi::sqlite3_bind_null(self.stmt, index),
                    Param::Int(v) => ffi::sqlite3_bind_int64(self.stmt, index, v),
                    Param::Text(v) => ffi::sqlite3_bind_text64(
                        self.stmt,
                        index,
                        v.as_ptr().cast::<c_char>(),
                        v.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Param::Blob(v) => ffi::sqlite3_bind_blob64(
                        self.stmt,
                        index,
                        v.as_ptr().cast(),
                        v.len() as u64,
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        // SAFETY: a live, fully bound statement.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_DONE | ffi::SQLITE_ROW => {
                // SAFETY: an open connection.
                Ok(unsafe { ffi::sqlite3_changes64(self.db) } as usize)
            }
            rc => Err(error(self.db, rc)),
        }
    }
}

impl Drop for StaticStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` was prepared on `db`, which is still open (borrowed), and is finalized
        // exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

impl std::fmt::Debug for StaticStatement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: a live statement; sqlite3_sql returns its text, owned by SQLite.
        let sql = unsafe { CStr::from_ptr(ffi::sqlite3_sql(self.stmt)) };
        f.debug_struct("StaticStatement")
            .field("sql", &sql.to_string_lossy())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bound_in_place_are_stored_and_can_be_dropped_after() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (a TEXT, b BLOB, c INTEGER, d TEXT)")
            .unwrap();
        let mut insert =
            StaticStatement::prepare(&connection, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in 0..3 {
            // Fresh values each time, dropped right after the call.
            let text = format!("text-{i}-{}", "x".repeat(100 * i));
            let blob = vec![i as u8; 3];
            let changed = insert
                .execute(&[
                    Param::Text(&text),
                    Param::Blob(&blob),
                    Param::Int(i as i64),
                    Param::Null,
                ])
                .unwrap();
            assert_eq!(changed, 1);
        }
        drop(insert);
        let rows: Vec<(String, Vec<u8>, i64, Option<String>)> = connection
            .prepare("SELECT a, b, c, d FROM t ORDER BY c")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].0, format!("text-2-{}", "x".repeat(200)));
        assert_eq!(rows[1].1, vec![1u8; 3]);
        assert_eq!(rows[2].2, 2);
        assert_eq!(rows[0].3, None);
    }

    #[test]
    fn errors_name_the_failure_and_leave_the_statement_usable() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE t (a TEXT PRIMARY KEY NOT NULL)")
            .unwrap();
        let mut insert =
            StaticStatement::prepare(&connection, "INSERT INTO t VALUES (?1)").unwrap();
        assert_eq!(insert.execute(&[Param::Text("x")]).unwrap(), 1);
        let err = insert.execute(&[Param::Text("x")]).unwrap_err().to_string();
        assert!(err.contains("UNIQUE"), "{err}");
        let err = insert.execute(&[Param::Null]).unwrap_err().to_string();
        assert!(err.contains("NOT NULL"), "{err}");
        assert!(matches!(
            insert.execute(&[]),
            Err(rusqlite::Error::InvalidParameterCount(0, 1))
        ));
        assert_eq!(insert.execute(&[Param::Text("y")]).unwrap(), 1);
        assert!(StaticStatement::prepare(&connection, "INSERT INTO nowhere VALUES (1)").is_err());
    }
}
