//! Why a store call failed, in the few words an operator acts on: the disk is full, the
//! database is read-only, the server cannot be reached, or something else. The ingest writer logs
//! it, counts it (`choreoscope_store_errors_total{reason}`) and reports it on `/healthz` and
//! `GET /api/v1/ingest/progress` while it holds consumption back.

use std::fmt;

use super::StoreError;

/// The kind of a store failure (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No space left: SQLite's `SQLITE_FULL`, PostgreSQL's `disk_full` (53100), or `ENOSPC`.
    DiskFull,
    /// The database or its files refuse writes (SQLite's `SQLITE_READONLY`, PostgreSQL's
    /// `read_only_sql_transaction`, a standby).
    ReadOnly,
    /// The database server cannot be reached or dropped the connection.
    Unavailable,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// Every kind, in the order the metrics list them.
    pub const ALL: [FailureKind; 4] = [
        FailureKind::DiskFull,
        FailureKind::ReadOnly,
        FailureKind::Unavailable,
        FailureKind::Other,
    ];

    /// The kind's name in logs, metric labels and the API: `disk_full`, `read_only`,
    /// `unavailable` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::DiskFull => "disk_full",
            FailureKind::ReadOnly => "read_only",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Other => "other",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ENOSPC` on Linux and the BSDs.
const NO_SPACE: i32 = 28;
/// SQLite's primary result codes for a full disk and a read-only database, as sqlx reports them.
const SQLITE_FULL: &str = "13";
const SQLITE_READONLY: &str = "8";

impl StoreError {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        match self {
            StoreError::Sqlite(e) => sqlite_kind(e),
            StoreError::Database(e)
            | StoreError::Migrate(sqlx::migrate::MigrateError::Execute(e)) => sqlx_kind(e),
            _ => FailureKind::Other,
        }
    }
}

fn sqlite_kind(error: &rusqlite::Error) -> FailureKind {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => FailureKind::DiskFull,
        Some(rusqlite::ErrorCode::ReadOnly) => FailureKind::ReadOnly,
        Some(rusqlite::ErrorCode::CannotOpen) => FailureKind::Unavailable,
        _ => FailureKind::Other,
    }
}

fn sqlx_kind(error: &sqlx::Error) -> FailureKind {
    match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // PostgreSQL: class 53 is "insufficient resources", 53100 the full disk.
            Some("53100") | Some(SQLITE_FULL) => FailureKind::DiskFull,
            Some("25006") | Some(SQLITE_READONLY) => FailureKind::ReadOnly,
            // Class 08 (connection exception) and 57P01–57P03 (shutting down, cannot connect now).
            Some(code) if code.starts_with("08") || code.starts_with("57P") => {
                FailureKind::Unavailable
            }
            _ => FailureKind::Other,
        },
        sqlx::Error::Io(e) if e.raw_os_error() == Some(NO_SPACE) => FailureKind::DiskFull,
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => FailureKind::Unavailable,
        _ => FailureKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn sqlite_full_is_a_full_disk() {
        assert_eq!(
            sqlite_error(rusqlite::ffi::SQLITE_FULL).kind(),
            FailureKind::DiskFull
        );
    }

    #[test]
    fn sqlite_readonly_is_read_only() {
        assert_eq!(
            sqlite_error(rusqlite::ffi::SQLITE_READONLY).kind(),
            FailureKind::ReadOnly
        );
    }

    #[test]
    fn a_busy_sqlite_is_another_failure() {
        assert_eq!(
            sqlite_error(rusqlite::ffi::SQLITE_BUSY).kind(),
            FailureKind::Other
        );
    }

    #[test]
    fn no_space_on_a_socket_or_file_is_a_full_disk() {
        let error =
            StoreError::Database(sqlx::Error::Io(std::io::Error::from_raw_os_error(NO_SPACE)));
        assert_eq!(error.kind(), FailureKind::DiskFull);
    }

    #[test]
    fn a_pool_timeout_is_an_unreachable_server() {
        assert_eq!(
            StoreError::Database(sqlx::Error::PoolTimedOut).kind(),
            FailureKind::Unavailable
        );
    }

    #[test]
    fn kinds_are_named_in_snake_case() {
        let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["disk_full", "read_only", "unavailable", "other"]);
    }
}
