-- One row per event (by event id); deliveries record every (topic, partition, offset) it arrived at.
CREATE TABLE events (
    event_id          TEXT PRIMARY KEY NOT NULL,
    id_source         TEXT NOT NULL,
    topic             TEXT NOT NULL,
    kafka_partition   INTEGER NOT NULL,
    kafka_offset      INTEGER NOT NULL,
    record_key        BLOB,
    broker_time_us    INTEGER,
    event_time_us     INTEGER,
    time_us           INTEGER NOT NULL,
    event_type        TEXT,
    source            TEXT,
    subject           TEXT,
    content_type      TEXT,
    trace_id          TEXT,
    span_id           TEXT,
    causation_id      TEXT,
    correlation_id    TEXT,
    headers           TEXT NOT NULL,
    payload           BLOB,
    payload_size      INTEGER NOT NULL,
    payload_truncated BOOLEAN NOT NULL,
    problems          TEXT NOT NULL,
    problem_count     INTEGER NOT NULL,
    delivery_count    INTEGER NOT NULL,
    ingested_at_us    INTEGER NOT NULL
);
CREATE INDEX events_by_causation ON events (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX events_by_correlation ON events (correlation_id, time_us) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_by_trace ON events (trace_id, span_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_by_time ON events (time_us);

CREATE TABLE deliveries (
    topic           TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    INTEGER NOT NULL,
    event_id        TEXT NOT NULL,
    broker_time_us  INTEGER,
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE event_keys (
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (name, value, event_id)
) WITHOUT ROWID;
CREATE INDEX event_keys_by_event ON event_keys (event_id);

CREATE TABLE event_problems (
    kind     TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (kind, event_id)
) WITHOUT ROWID;
