//! Consumption held back: while the store refuses the writer's batches (a full disk, a database
//! out of reach), the ingest loop stops reading and the writer retries. [`HeldBackState`] keeps why,
//! since when and how often, for `/healthz` (503 while held back) and
//! `GET /api/v1/ingest/progress` (`held_back`, which the viewer's banner shows).

use std::sync::{Arc, Mutex};

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::FailureKind;

/// Why and since when consumption is held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HeldBack {
    /// What the store's last failure was: `disk_full`, `read_only`, `unavailable` or `other`.
    pub reason: String,
    /// The store's last error, one line.
    pub error: String,
    /// When the first failed write of this stretch failed.
    #[serde(rename = "since", serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String)]
    pub since_us: i64,
    /// Writes failed since (each batch is retried with backoff until it is durable).
    pub failed_writes: u64,
}

fn serialize_rfc3339<S: serde::Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*us))
}

impl HeldBack {
    /// One line for `/healthz` and the log.
    pub fn describe(&self) -> String {
        format!(
            "ingest held back since {}: store writes failing ({}, {} failed): {}",
            crate::clock::rfc3339(self.since_us),
            self.reason,
            self.failed_writes,
            self.error
        )
    }
}

/// Shared between the writer, which reports failures and recoveries, and the HTTP side, which
/// reads it. Empty while writes succeed (and always in a process that consumes nothing).
#[derive(Debug, Clone, Default)]
pub struct HeldBackState(Arc<Mutex<Option<HeldBack>>>);

impl HeldBackState {
    /// A write failed with `error` of `kind` at `at_us`: held back since the first failure of
    /// this stretch.
    pub fn failed(&self, kind: FailureKind, error: &str, at_us: i64) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let error = error.lines().next().unwrap_or_default().to_owned();
        match state.as_mut() {
            Some(held) => {
                held.reason = kind.as_str().to_owned();
                held.error = error;
                held.failed_writes += 1;
            }
            None => {
                *state = Some(HeldBack {
                    reason: kind.as_str().to_owned(),
                    error,
                    since_us: at_us,
                    failed_writes: 1,
                })
            }
        }
    }

    /// Every write that failed has since succeeded: consumption goes on.
    pub fn resumed(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Why consumption is held back, if it is.
    pub fn get(&self) -> Option<HeldBack> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_held_back_before_a_failure() {
        assert_eq!(HeldBackState::default().get(), None);
    }

    #[test]
    fn a_stretch_of_failures_keeps_its_first_time_and_the_last_reason() {
        let state = HeldBackState::default();
        state.failed(FailureKind::Unavailable, "connection refused", 10);
        state.failed(
            FailureKind::DiskFull,
            "database or disk is full\nat line 2",
            20,
        );
        assert_eq!(
            state.get(),
            Some(HeldBack {
                reason: "disk_full".into(),
                error: "database or disk is full".into(),
                since_us: 10,
                failed_writes: 2,
            })
        );
    }

    #[test]
    fn resuming_clears_the_state() {
        let state = HeldBackState::default();
        state.failed(FailureKind::DiskFull, "full", 10);
        state.resumed();
        assert_eq!(state.get(), None);
    }

    #[test]
    fn the_description_names_reason_count_and_error() {
        let state = HeldBackState::default();
        state.failed(FailureKind::DiskFull, "database or disk is full", 0);
        assert_eq!(
            state.get().unwrap().describe(),
            "ingest held back since 1970-01-01T00:00:00.000000Z: store writes failing (disk_full, 1 failed): database or disk is full"
        );
    }
}
