-- The transaction that stored each event, for the live feed of `choreoscope serve` (which has no
-- ingest loop of its own and follows the store instead). The collector writes with several
-- connections at once, so row order is not commit order; a reader takes only events of
-- transactions older than its snapshot's xmin (all of them finished), and so never passes over a
-- transaction that commits late. Rows stored before this migration carry the migration's own id.
ALTER TABLE events ADD COLUMN ingest_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_by_ingest_xid ON events (ingest_xid);
