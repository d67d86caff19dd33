-- The id of the last Step Functions history event the recorder translated for this execution:
-- a recorder that finds the history's last event id unchanged (one-event read) skips the whole
-- read, so executions that wait (delays, approvals) cost O(1) per look, not O(history).
ALTER TABLE executions ADD COLUMN history_event_id bigint;
