-- Business keys as 64-bit hashes: `key_hashes (k, event_id)` replaces `event_keys (name, value,
-- event_id)` for finding the events that carry a key, and the distinct names move to `key_names`
-- (as on PostgreSQL), which the writer fills in the batch that brings a name first.
--
-- k is XXH3-64 of the key (collector/src/store/key_hash.rs). Key names are few and repeat on
-- every row, so nearly every comparison of an insert's descent into `event_keys` found equal names
-- and went on to compare values, SQLite's slow path; an integer compares in one step, and a row is
-- a third of the size (docs/benchmarks.md, run 12). Two keys may share a hash, so a lookup also
-- checks the key among the event row's own keys (`events.keys`, migration 0003).
--
-- SQL has no XXH3: this migration makes the tables and lists the names; the collector's writer
-- hashes the rows of `event_keys` into `key_hashes` and drops `event_keys` when it opens the
-- store, in one transaction (`sqlite_write::hash_old_keys`).
CREATE TABLE key_names (
    name TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;
INSERT INTO key_names (name) SELECT DISTINCT name FROM event_keys;

CREATE TABLE key_hashes (
    k        INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (k, event_id)
) WITHOUT ROWID;
