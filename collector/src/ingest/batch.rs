//! A closed batch on its way from the ingest loop to the writer.

use std::collections::HashMap;

use crate::record::EventRecord;

/// A closed batch on its way to the writer, with the offsets to store once it is durable.
pub(super) struct Batch {
    pub(super) records: Vec<EventRecord>,
    pub(super) offsets: HashMap<(String, i32), i64>,
    /// Records read into this batch, stored or excluded.
    pub(super) positions: usize,
}

impl Batch {
    pub(super) fn with_capacity(records: usize) -> Self {
        Self {
            records: Vec::with_capacity(records),
            offsets: HashMap::new(),
            positions: 0,
        }
    }
}
