-- One row per event (by event id); deliveries record every (topic, partition, offset) it arrived at.
CREATE TABLE events (
    event_id          TEXT PRIMARY KEY NOT NULL,
    id_source         TEXT NOT NULL,
    topic             TEXT NOT NULL,
    kafka_partition   INTEGER NOT NULL,
    kafka_offset      BIGINT NOT NULL,
    record_key        BYTEA,
    broker_time_us    BIGINT,
    event_time_us     BIGINT,
    time_us           BIGINT NOT NULL,
    event_type        TEXT,
    source            TEXT,
    subject           TEXT,
    content_type      TEXT,
    trace_id          TEXT,
    span_id           TEXT,
    causation_id      TEXT,
    correlation_id    TEXT,
    headers           TEXT NOT NULL,
    payload           BYTEA,
    payload_size      BIGINT NOT NULL,
    payload_truncated BOOLEAN NOT NULL,
    problems          TEXT NOT NULL,
    problem_count     BIGINT NOT NULL,
    delivery_count    BIGINT NOT NULL,
    ingested_at_us    BIGINT NOT NULL
);
CREATE INDEX events_by_causation ON events (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX events_by_correlation ON events (correlation_id, time_us) WHERE correlation_id IS NOT NULL;
CREATE INDEX events_by_trace ON events (trace_id, span_id) WHERE trace_id IS NOT NULL;
CREATE INDEX events_by_time ON events (time_us);

CREATE TABLE deliveries (
    topic           TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    event_id        TEXT NOT NULL,
    broker_time_us  BIGINT,
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

CREATE TABLE event_keys (
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (name, value, event_id)
);
CREATE INDEX event_keys_by_event ON event_keys (event_id);

CREATE TABLE event_problems (
    kind     TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (kind, event_id)
);
