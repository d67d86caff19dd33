-- sfn-server's history in chunks: one row per batch the driver writes (its events as a JSON
-- array, ids first_id..last_id, contiguous), not one row per event. A short execution's whole
-- history is one or two rows: far fewer heap and index entries and WAL records per run.
CREATE TABLE sfn_history_chunks (
    execution_arn  TEXT NOT NULL,
    first_id       BIGINT NOT NULL,
    last_id        BIGINT NOT NULL,
    events         JSON NOT NULL,
    PRIMARY KEY (execution_arn, first_id)
);
INSERT INTO sfn_history_chunks (execution_arn, first_id, last_id, events)
    SELECT execution_arn, id, id, json_build_array(event) FROM sfn_history_events;
DROP TABLE sfn_history_events;
