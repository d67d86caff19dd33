-- The Step Functions-compatible endpoint's own tables (`shared/sfn-server`). They hold AWS-shaped
-- documents: the endpoint is a local stand-in for one AWS account and region, so these rows are
-- not tenant-scoped; tenancy lives in the api's tables that point at these ARNs.

CREATE TABLE sfn_state_machines (
    name        TEXT PRIMARY KEY,
    doc         JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sfn_versions (
    state_machine  TEXT NOT NULL REFERENCES sfn_state_machines (name),
    version        INTEGER NOT NULL,
    doc            JSONB NOT NULL,
    PRIMARY KEY (state_machine, version)
);

CREATE TABLE sfn_aliases (
    state_machine  TEXT NOT NULL REFERENCES sfn_state_machines (name),
    name           TEXT NOT NULL,
    doc            JSONB NOT NULL,
    PRIMARY KEY (state_machine, name)
);

CREATE TABLE sfn_executions (
    arn            TEXT PRIMARY KEY,
    state_machine  TEXT NOT NULL,
    status         TEXT NOT NULL,
    start_date     TIMESTAMPTZ NOT NULL,
    doc            JSONB NOT NULL
);

CREATE INDEX sfn_executions_by_machine ON sfn_executions (state_machine, start_date DESC);
CREATE INDEX sfn_executions_running ON sfn_executions (status) WHERE status = 'RUNNING';

-- One row per history event, as GetExecutionHistory renders it; ids are dense from 1 and
-- continue across redrives.
CREATE TABLE sfn_history_events (
    execution_arn  TEXT NOT NULL,
    id             BIGINT NOT NULL,
    event          JSONB NOT NULL,
    PRIMARY KEY (execution_arn, id)
);
