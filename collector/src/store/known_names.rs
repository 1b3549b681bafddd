//! The key names a store lists (`GET /api/v1/keys`, and the names a search for a value under any
//! name probes): a `key_names` table in both stores, filled by the writer in the transaction of
//! the batch that brings a name first. Its rows are never deleted, so the writer remembers the
//! names it has committed and sends only new ones.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::record::EventRecord;

/// The key names this process knows to be in `key_names` (committed), so that a batch only sends
/// the names it brings first. Key names are usually few (tens); baggage keys come from producers,
/// though, so it remembers at most [`MAX_KNOWN_NAMES`] and sends any others every time (the
/// insert ignores a name already there), keeping memory bounded.
#[derive(Debug, Default)]
pub(crate) struct KnownNames(Mutex<HashSet<String>>);

/// How many of a batch's distinct names [`KnownNames::unknown`] compares later ones against.
const CHECKED_NAMES: usize = 16;

/// How many key names [`KnownNames`] remembers.
pub(crate) const MAX_KNOWN_NAMES: usize = 10_000;

impl KnownNames {
    /// The key names of `events` not known yet, in order, without repeats.
    pub(crate) fn unknown<'a>(
        &self,
        events: impl IntoIterator<Item = &'a EventRecord>,
    ) -> Vec<&'a str> {
        self.unknown_of(
            events
                .into_iter()
                .flat_map(|e| e.keys.iter().map(|(n, _)| n.as_str())),
        )
    }

    /// Those of `names` not known yet, in order, without repeats.
    fn unknown_of<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
        let known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // A batch's names are mostly a few, over and over: each is looked up in the set once,
        // later ones compared against the first few checked (a hash per key showed in the
        // writer's profile).
        let mut checked: Vec<&str> = Vec::with_capacity(CHECKED_NAMES);
        let mut out = Vec::new();
        for name in names {
            if checked.contains(&name) {
                continue;
            }
            if checked.len() < CHECKED_NAMES {
                checked.push(name);
            }
            if !known.contains(name) {
                out.push(name);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Remembers `names`, once the transaction that inserted them has committed.
    pub(crate) fn learn(&self, names: &[&str]) {
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_KNOWN_NAMES.saturating_sub(known.len());
        known.extend(names.iter().take(room).map(|n| (*n).to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_not_sent_again_and_stay_bounded() {
        let batch = ["order.id", "kafka.key", "order.id", "subject"];
        let known = KnownNames::default();
        assert_eq!(
            known.unknown_of(batch.into_iter()),
            vec!["kafka.key", "order.id", "subject"]
        );
        known.learn(&["kafka.key", "order.id"]);
        assert_eq!(known.unknown_of(batch.into_iter()), vec!["subject"]);
        let many: Vec<String> = (0..MAX_KNOWN_NAMES + 5).map(|i| format!("k{i}")).collect();
        known.learn(&many.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(known.0.lock().unwrap().len(), MAX_KNOWN_NAMES);
        assert_eq!(
            known.unknown_of(batch.into_iter()),
            vec!["subject"],
            "past the bound, still sent"
        );
    }

    #[test]
    fn a_batch_of_many_distinct_names_gives_each_unknown_name_once() {
        let names: Vec<String> = (0..CHECKED_NAMES * 3).map(|i| format!("n{i:03}")).collect();
        let batch = names.iter().chain(&names).rev().map(String::as_str);
        let known = KnownNames::default();
        known.learn(&["n000"]);
        assert_eq!(
            known.unknown_of(batch),
            names[1..].iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}
