-- OpenTelemetry spans (collector/src/span): what lineage needs of the spans of traces that touch
-- messaging, one row a span (docs/otlp.md). `kind` is OTLP's number (4 producer, 5 consumer);
-- times are µs since the epoch; `received_us` is when the collector stored it.
CREATE TABLE spans (
    trace_id          TEXT NOT NULL,
    span_id           TEXT NOT NULL,
    parent_span_id    TEXT,
    kind              INTEGER NOT NULL,
    name              TEXT NOT NULL,
    service           TEXT,
    start_us          INTEGER NOT NULL,
    end_us            INTEGER NOT NULL,
    failed            BOOLEAN NOT NULL,
    status_message    TEXT,
    exception_type    TEXT,
    exception_message TEXT,
    messaging_system  TEXT,
    destination       TEXT,
    kafka_partition   INTEGER,
    kafka_offset      INTEGER,
    consumer_group    TEXT,
    message_id        TEXT,
    operation         TEXT,
    received_us       INTEGER NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
-- Down a trace: the spans under a span.
CREATE INDEX spans_by_parent ON spans (trace_id, parent_span_id) WHERE parent_span_id IS NOT NULL;
-- The consumer spans that processed the record at a position.
CREATE INDEX spans_by_message ON spans (destination, kafka_partition, kafka_offset)
    WHERE kind = 5 AND kafka_offset IS NOT NULL;
-- Failed handlings for flow health, and pruning.
CREATE INDEX spans_failed_by_received ON spans (received_us) WHERE failed;
CREATE INDEX spans_by_start ON spans (start_us);

-- A span's links (a consumer span's link to the producer's context; a batch consumer has many).
CREATE TABLE span_links (
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    linked_trace_id TEXT NOT NULL,
    linked_span_id  TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id, linked_trace_id, linked_span_id)
) WITHOUT ROWID;
CREATE INDEX span_links_by_target ON span_links (linked_trace_id, linked_span_id);
