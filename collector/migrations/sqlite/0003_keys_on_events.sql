-- An event's business keys are also kept on its row, as JSON `[["name","value"],…]` sorted by name
-- and value, and the `event_keys (event_id)` index goes: an event's keys are read from its row, and
-- `event_keys` answers only lookups by key (its primary key). A usual event has three keys, so this
-- is three B-tree entries less per event: a fifth of the write path's instructions
-- (docs/benchmarks.md, run 11). On a large store the UPDATE rewrites every event row once.
ALTER TABLE events ADD COLUMN keys TEXT NOT NULL DEFAULT '[]';

UPDATE events SET keys = (
    SELECT json_group_array(json_array(k.name, k.value) ORDER BY k.name, k.value)
    FROM event_keys k
    WHERE k.event_id = events.event_id
)
WHERE event_id IN (SELECT event_id FROM event_keys);

DROP INDEX event_keys_by_event;
