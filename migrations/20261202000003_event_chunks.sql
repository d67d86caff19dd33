-- Node-level events in chunks: one row per recording (its new events as a JSON array of
-- {seq, type, node_id, payload}, seqs first_seq..last_seq, contiguous), not one row per event:
-- a recording costs one heap row, one index entry per index and one foreign-key check per key,
-- whatever the number of events. `execution_events` stays as a view with one row per event.
CREATE TABLE execution_event_chunks (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    execution_id  UUID NOT NULL REFERENCES executions (id),
    first_seq     BIGINT NOT NULL CHECK (first_seq > 0),
    last_seq      BIGINT NOT NULL CHECK (last_seq >= first_seq),
    events        JSON NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, first_seq)
);
CREATE INDEX execution_event_chunks_tenant ON execution_event_chunks (tenant_id, execution_id, last_seq);
INSERT INTO execution_event_chunks (tenant_id, execution_id, first_seq, last_seq, events, created_at)
    SELECT tenant_id, execution_id, seq, seq,
           json_build_array(json_build_object('seq', seq, 'type', type, 'node_id', node_id, 'payload', payload)),
           created_at
    FROM execution_events;
DROP TABLE execution_events;
CREATE VIEW execution_events AS
    SELECT c.tenant_id, c.execution_id, (e ->> 'seq')::bigint AS seq, e ->> 'type' AS type,
           e ->> 'node_id' AS node_id, e -> 'payload' AS payload, c.created_at
    FROM execution_event_chunks c, json_array_elements(c.events) AS e;
