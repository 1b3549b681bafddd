//! A store filled once per test binary and queried by each of its tests.
//!
//! A sqlx pool must not outlive the runtime that created it, and every `#[tokio::test]` has its own
//! runtime: what is shared is therefore a SQLite *file*, filled on a thread of its own with a
//! runtime of its own, and each test opens its own [`Store`](choreoscope::store::Store) on it.
//!
//! The file is filled at most once per binary, even when filling it fails: every test then fails
//! with the same message instead of filling it again.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use choreoscope::store::Store;

/// A SQLite store file, filled once, with what its builder returned about it.
#[derive(Debug)]
pub struct Filled<T> {
    path: PathBuf,
    /// What the builder returned: the ids and positions the tests look for.
    pub data: T,
}

impl<T> Filled<T> {
    /// The `sqlite://` URL of the file.
    pub fn url(&self) -> String {
        sqlite_url(&self.path)
    }

    /// A store of this test's own on the file.
    pub async fn open(&self) -> Store {
        Store::connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("opening the shared store {}: {e}", self.path.display()))
    }
}

/// The `sqlite://` URL of the file at `path`.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A store file filled at most once per test binary (declare it in a `static`).
pub struct OnceFilled<T> {
    cell: OnceLock<Result<Filled<T>, String>>,
}

impl<T: Send + Sync + 'static> OnceFilled<T> {
    /// Not filled yet.
    pub const fn new() -> Self {
        Self {
            cell: OnceLock::new(),
        }
    }

    /// The filled file: the first caller runs `fill` on a thread with its own tokio runtime, with
    /// the path of a file that does not exist yet (in a directory removed when the binary exits);
    /// later callers wait for it. Panics, in every caller, if `fill` panicked.
    pub fn get<F, Fut>(&'static self, fill: F) -> &'static Filled<T>
    where
        F: FnOnce(PathBuf) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let filled = self.cell.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("choreoscope-fixture-")
                .tempdir()
                .expect("temp dir")
                .keep();
            remove_at_exit(dir.clone());
            let path = dir.join("fixture.db");
            let thread_path = path.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(fill(thread_path))
            })
            .join()
            .map(|data| Filled { path, data })
            .map_err(|panic| panic_message(&*panic))
        });
        match filled {
            Ok(filled) => filled,
            Err(message) => panic!("the shared fixture could not be built: {message}"),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// Directories to remove when the process exits (statics are never dropped).
static AT_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn remove_at_exit(dir: PathBuf) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        extern "C" fn remove_all() {
            if let Ok(dirs) = AT_EXIT.lock() {
                for dir in dirs.iter() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
        // SAFETY: `remove_all` is a plain function that does not unwind.
        unsafe { libc::atexit(remove_all) };
    });
    AT_EXIT.lock().unwrap().push(dir);
}

/// Copies the SQLite store `store` (a consistent snapshot, write-ahead log included) into a new
/// file at `to`.
pub async fn copy_sqlite_store(store: &Store, to: &Path) {
    let Store::Sqlite(sqlite) = store else {
        panic!("only a SQLite store can be copied to a file")
    };
    sqlx::query("VACUUM INTO ?")
        .bind(to.to_str().expect("a UTF-8 path"))
        .execute(sqlite.pool())
        .await
        .unwrap_or_else(|e| panic!("copying the store to {}: {e}", to.display()));
}
