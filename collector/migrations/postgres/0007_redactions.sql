-- What redaction at ingest removed from each event (JSON; NULL when nothing).
ALTER TABLE events ADD COLUMN redactions TEXT;
