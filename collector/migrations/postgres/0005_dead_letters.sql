-- Dead-letter copies (collector/src/dead_letter.rs): each is kept whole, apart from the events, as
-- the failure of the event it is a copy of (`original_id`) — neither a new event of the flow nor a
-- duplicate publish of the original. `event_id` is the copy's own id (the one it carries, usually
-- the original's, or derived from its position); `time_us` is when it was dead-lettered (the
-- copy's broker time, else when it was read).
CREATE TABLE dead_letters (
    topic              TEXT NOT NULL,
    kafka_partition    INTEGER NOT NULL,
    kafka_offset       BIGINT NOT NULL,
    event_id           TEXT NOT NULL,
    original_id        TEXT NOT NULL,
    original_topic     TEXT,
    original_partition INTEGER,
    original_offset    BIGINT,
    recognised_by      TEXT NOT NULL,
    reason             TEXT NOT NULL,
    consumer_group     TEXT,
    record_key         BYTEA,
    broker_time_us     BIGINT,
    time_us            BIGINT NOT NULL,
    headers            TEXT NOT NULL,
    payload            BYTEA,
    payload_size       BIGINT NOT NULL,
    problems           TEXT NOT NULL,
    ingested_at_us     BIGINT NOT NULL,
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX dead_letters_by_original ON dead_letters (original_id);
CREATE INDEX dead_letters_by_ingest ON dead_letters (ingested_at_us);
