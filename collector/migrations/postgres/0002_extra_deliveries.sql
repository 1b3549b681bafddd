-- From here on, `deliveries` holds only an event's *extra* deliveries (the same id at another
-- position: duplicate publishes). Its first delivery is the event row's own topic, partition and
-- offset, so a new event costs one row instead of two (and two index entries less).
DELETE FROM deliveries
WHERE EXISTS (
    SELECT 1 FROM events e
    WHERE e.event_id = deliveries.event_id
      AND e.topic = deliveries.topic
      AND e.kafka_partition = deliveries.kafka_partition
      AND e.kafka_offset = deliveries.kafka_offset
);
