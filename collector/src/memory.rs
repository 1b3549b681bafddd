//! Process-wide memory settings of the collector, made first thing in `main` before any thread
//! or SQLite connection exists: mimalloc's options, glibc's malloc arenas (librdkafka allocates
//! through glibc) and SQLite's allocator (see [`crate::store::allocate_with_mimalloc`]). Why each
//! value: docs/benchmarks.md, runs 10–14.

/// mimalloc's options that keep the collector's memory small (see [`tune_allocator`]), by their
/// number in mimalloc 3's `mi_option_e` (the Rust bindings name only some), with the default each
/// must have — checked before setting, so a renumbered option is reported, never mis-set.
const MI_OPTION_ARENA_EAGER_COMMIT: (i32, i64) = (4, 2);
const MI_OPTION_PURGE_DELAY: (i32, i64) = (15, 1000);

/// How long mimalloc keeps freed memory before returning it to the OS: a tenth of its default.
/// At once (0, until run 14) cost the ingest loop 0.8 µs of kernel time per event in `madvise`
/// (every spent batch's records returned, then faulted in again for the next), and SQLite
/// ingest is bound by CPU.
pub const PURGE_DELAY_MS: i64 = 100;

/// Sets mimalloc's purge delay to `ms` if it is still the one [`tune_allocator`] chose (an
/// explicit `MIMALLOC_PURGE_DELAY` wins); returns whether it did. mimalloc reads the option each
/// time it purges, so it may change while running.
pub fn set_purge_delay(ms: i64) -> bool {
    let (option, _) = MI_OPTION_PURGE_DELAY;
    // SAFETY: plain getter and setter of mimalloc's global options, valid at any time.
    if unsafe { libmimalloc_sys::mi_option_get(option) } != PURGE_DELAY_MS {
        return false;
    }
    unsafe { libmimalloc_sys::mi_option_set(option, ms) };
    true
}

/// Returns freed memory to the OS soon and commits arena memory on demand. With mimalloc's
/// defaults (freed memory purged after 1 s, arenas committed eagerly) the collector's peak RSS
/// writing 600 000 events into PostgreSQL was 244–258 MiB (glibc: 212 MiB); with these, 220–223.
/// Called first thing in `main`, before the runtime's threads exist. Returns the options found
/// with another value than expected, `(option, value, expected)`, left alone.
pub fn tune_allocator() -> Vec<(i32, i64, i64)> {
    let mut untouched = Vec::new();
    for ((option, default), value) in [
        (MI_OPTION_ARENA_EAGER_COMMIT, 0),
        (MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS),
    ] {
        // SAFETY: plain getter and setter of mimalloc's global options, valid at any time.
        let current: i64 = unsafe { libmimalloc_sys::mi_option_get(option) };
        if current == default {
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        } else {
            untouched.push((option, current, default));
        }
    }
    untouched
}

/// glibc malloc arenas the process may have (see [`limit_malloc_arenas`]).
pub const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless `MALLOC_ARENA_MAX` says otherwise.
/// librdkafka allocates through glibc, not mimalloc (and so did SQLite until run 14, see
/// [`crate::store::allocate_with_mimalloc`]), and glibc gives each thread that allocates an
/// arena of its own (up to 8 per core): SQLite's writes moved between the runtime's worker
/// threads, so its page cache and statements were spread over four to six arenas of ~18 MiB each.
/// Ingesting 3 000 000 events into SQLite, peak RSS was 200–246 MiB with glibc's default and
/// 193–202 with two arenas, at the same rate (docs/benchmarks.md, run 13). Called first thing in
/// `main`; returns whether glibc took the setting (`true` where there is nothing to set).
pub fn limit_malloc_arenas() -> bool {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return true;
    }
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: `mallopt` only sets a malloc parameter; M_ARENA_MAX bounds arenas created later.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        true
    }
}

/// What [`tune_process`] could not set, for `main` to log once logging is up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Untuned {
    /// mimalloc options found at another value than expected, `(option, value, expected)`.
    pub mimalloc: Vec<(i32, i64, i64)>,
    /// Whether glibc refused to cap its malloc arenas.
    pub arenas: bool,
    /// Whether SQLite was in use before its memory statistics and allocator could be set.
    pub sqlite: bool,
}

/// Every process-wide memory setting, in the order they must be made; call it first thing in
/// `main`, before the async runtime's threads exist.
pub fn tune_process() -> Untuned {
    let arenas_limited = limit_malloc_arenas();
    let mimalloc = tune_allocator();
    // Both, whatever the first returns: each only takes effect before SQLite's first use.
    let sqlite_tuned = [
        crate::store::disable_memory_statistics(),
        crate::store::allocate_with_mimalloc(),
    ] == [true, true];
    Untuned {
        mimalloc,
        arenas: !arenas_limited,
        sqlite: !sqlite_tuned,
    }
}

/// Applies a store's memory profile ([`crate::store::StoreProfile::purge_delay_ms`]) once the
/// store is known.
pub fn apply_store_profile(profile: &crate::store::StoreProfile) {
    if let Some(ms) = profile.purge_delay_ms {
        set_purge_delay(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc's malloc arenas now, from `malloc_info`'s report.
    #[cfg(target_env = "gnu")]
    fn malloc_arenas() -> usize {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("malloc.xml");
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a file opened, written by glibc and closed here.
        unsafe {
            let file = libc::fopen(c_path.as_ptr(), c"w".as_ptr());
            assert!(!file.is_null());
            assert_eq!(libc::malloc_info(0, file), 0);
            libc::fclose(file);
        }
        std::fs::read_to_string(path)
            .unwrap()
            .matches("<heap nr=")
            .count()
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn threads_allocating_through_glibc_share_at_most_two_arenas() {
        // glibc reads the arena limit once, when the first arena beyond the main one is made:
        // other tests of this process, on threads of their own, may have made them already. The
        // check runs alone, in a process of its own (this binary, this test only).
        const CHILD: &str = "CHOREOSCOPE_ARENA_CHECK";
        if std::env::var_os(CHILD).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "memory::tests::threads_allocating_through_glibc_share_at_most_two_arenas",
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        // As librdkafka's threads do: eight threads hold glibc memory at once.
        let before = malloc_arenas();
        assert!(limit_malloc_arenas());
        let all_holding = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let all_holding = all_holding.clone();
                std::thread::spawn(move || {
                    // SAFETY: a glibc allocation, freed once every thread holds one.
                    let p = unsafe { libc::malloc(1 << 16) };
                    all_holding.wait();
                    unsafe { libc::free(p) };
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let after = malloc_arenas();
        assert!(
            after <= before.max(MALLOC_ARENAS as usize),
            "{before} arenas before, {after} after eight threads allocated"
        );
    }

    /// What collecting into PostgreSQL sets the purge delay to.
    const POSTGRES_PURGE_DELAY_MS: i64 = 0;

    #[test]
    fn the_postgres_profile_purges_at_once() {
        assert_eq!(
            crate::store::StoreProfile::POSTGRES.purge_delay_ms,
            Some(POSTGRES_PURGE_DELAY_MS)
        );
        assert_eq!(crate::store::StoreProfile::SQLITE.purge_delay_ms, None);
    }

    #[test]
    fn the_allocator_options_tuned_are_the_ones_this_mimalloc_numbers_so() {
        // Each option's number is checked through its documented default: a mimalloc that
        // renumbered them would show other defaults here instead of being mis-set silently.
        assert_eq!(
            tune_allocator(),
            Vec::new(),
            "options found at other defaults"
        );
        for ((option, _), value) in [
            (MI_OPTION_ARENA_EAGER_COMMIT, 0),
            (MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS),
        ] {
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(option) }, value);
        }
        assert!(
            !tune_allocator().is_empty(),
            "a second call finds the options already changed and leaves them"
        );
        // Collecting into PostgreSQL purges at once; a delay set by someone else stays.
        let (purge_delay, _) = MI_OPTION_PURGE_DELAY;
        assert!(set_purge_delay(POSTGRES_PURGE_DELAY_MS));
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(purge_delay) },
            POSTGRES_PURGE_DELAY_MS
        );
        unsafe { libmimalloc_sys::mi_option_set(purge_delay, 7) };
        assert!(!set_purge_delay(POSTGRES_PURGE_DELAY_MS));
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(purge_delay) }, 7);
    }
}
