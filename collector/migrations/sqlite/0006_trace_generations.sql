-- The trace index is split by *generation*: a run of 65 536 stored events, the row id at the
-- start of the row's batch divided by 65 536 (`store::sql::GENERATION_BITS`). Inserts then land in
-- the newest generation's part of the index only, a few hundred pages whatever the store's size,
-- instead of on random pages of an index as large as the store. Trace ids are random: with one
-- index over all events, every batch touched (and wrote to the write-ahead log at commit) nearly
-- every page of it, ~4.5 KB per event at a million events, and more as the store grew. A lookup
-- seeks each generation (`generation IN (0 … newest)`), which is one index seek per 65 536 events.
--
-- Rows stored before this migration are all generation 0, where their index was.
ALTER TABLE events ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_by_generation_trace ON events (generation, substr(trace_id, -8))
    WHERE trace_id IS NOT NULL;
DROP INDEX events_by_trace_suffix;
