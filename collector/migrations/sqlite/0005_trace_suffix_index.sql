-- Events of a trace are found by the last 8 characters of the trace id (32 random bits), not by
-- the whole `(trace_id, span_id)`: lookups then compare the full ids on the rows.
--
-- Trace ids are random, so every event's entry lands on a random page of the index, and every
-- page a batch touches is written to the write-ahead log again at commit (and read back first once
-- the page cache no longer holds the index). That index was what slowed ingest as the store grew:
-- at a million events the collector wrote 40 000 events/s into SQLite, and 101 000 without the
-- index (docs/benchmarks.md, run 12). Entries of 8 characters and a row id are a third of the
-- size, so a batch touches a third of the pages. The *last* 8: a 64-bit trace id (Jaeger, Zipkin)
-- is padded with leading zeros, and some generators (AWS X-Ray) start with the time in seconds,
-- so leading characters are shared by many traces; trailing ones are random in every scheme seen.
-- Up to tens of millions of traces two ids rarely share them; when they do, a lookup reads a few
-- rows more.
CREATE INDEX events_by_trace_suffix ON events (substr(trace_id, -8)) WHERE trace_id IS NOT NULL;
DROP INDEX events_by_trace;
