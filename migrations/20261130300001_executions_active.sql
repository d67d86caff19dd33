-- The recorder sweeps executions that are not over yet; this keeps that query off the big indexes.
CREATE INDEX executions_active ON executions (started_at) WHERE status IN ('PENDING', 'RUNNING');
-- Node-level events are read per execution in seq order (the primary key); by tenant for audits.
CREATE INDEX execution_events_tenant ON execution_events (tenant_id, execution_id, seq);
