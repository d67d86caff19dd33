-- The outbox of domain events (`domain-events` crate): a row is inserted in the same transaction
-- (or statement) as the write it tells of, so it exists exactly when that write committed, and a
-- relay publishes it afterwards (EventBridge in AWS, a Redis stream under `weft serve`), setting
-- `published_at`. `detail` is the event's `data` (ids, names, statuses, error names: never
-- execution input or output), which jsonb holds since it has no NUL characters.
CREATE TABLE domain_events (
    id            BIGSERIAL PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    detail        JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ
);
-- What the relay reads: unpublished rows in id order (small, since rows leave it once published).
CREATE INDEX domain_events_unpublished ON domain_events (id) WHERE published_at IS NULL;
