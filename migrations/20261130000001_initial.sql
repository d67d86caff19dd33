-- Weft's schema. Every row belongs to a tenant: each table has `tenant_id`, and every query the
-- repositories in `shared/store` run filters on it. Tenants are created on first use, so a new
-- tenant needs nothing but a valid token.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Users are the `sub` of the tokens that have written something; the role lives in the token.
CREATE TABLE users (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    id            TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 256),
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- Machine credentials. Only a SHA-256 of the secret part is stored; the key is shown once.
CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    prefix        TEXT NOT NULL UNIQUE,
    secret_hash   BYTEA NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- A workflow is a named draft graph plus pointers to its published versions. Deleting sets
-- `deleted_at`; versions and executions stay for audit.
CREATE TABLE workflows (
    id                 UUID PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    name               TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 256),
    description        TEXT,
    graph              JSONB NOT NULL,
    latest_version     INTEGER,
    live_version       INTEGER,
    state_machine_arn  TEXT,
    alias_arn          TEXT,
    created_by         TEXT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at         TIMESTAMPTZ
);
-- The list query: newest first, keyset-paginated on (created_at, id), live rows only.
CREATE INDEX workflows_list ON workflows (tenant_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX workflows_name ON workflows (tenant_id, lower(name)) WHERE deleted_at IS NULL;

-- Published versions are immutable (enforced by the trigger below).
CREATE TABLE workflow_versions (
    tenant_id                  TEXT NOT NULL REFERENCES tenants (id),
    workflow_id                UUID NOT NULL REFERENCES workflows (id),
    version                    INTEGER NOT NULL CHECK (version > 0),
    graph                      JSONB NOT NULL,
    asl                        JSONB NOT NULL,
    workflow_type              TEXT NOT NULL CHECK (workflow_type IN ('STANDARD', 'EXPRESS')),
    content_hash               TEXT NOT NULL,
    state_machine_arn          TEXT,
    state_machine_version_arn  TEXT,
    created_by                 TEXT NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);
CREATE INDEX workflow_versions_tenant ON workflow_versions (tenant_id, workflow_id, version DESC);

CREATE FUNCTION weft_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER workflow_versions_immutable BEFORE UPDATE OR DELETE ON workflow_versions
    FOR EACH ROW EXECUTE FUNCTION weft_refuse_change();

-- One run of a published version. `idempotency_key` makes start retries safe (unique per workflow).
CREATE TABLE executions (
    id                UUID PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    workflow_id       UUID NOT NULL REFERENCES workflows (id),
    version           INTEGER NOT NULL,
    execution_arn     TEXT,
    status            TEXT NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT')),
    input             JSONB NOT NULL,
    output            JSONB,
    error             TEXT,
    cause             TEXT,
    idempotency_key   TEXT,
    started_by        TEXT NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at        TIMESTAMPTZ,
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE UNIQUE INDEX executions_idempotency ON executions (tenant_id, workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX executions_list ON executions (tenant_id, started_at DESC, id DESC);
CREATE INDEX executions_by_workflow ON executions (tenant_id, workflow_id, started_at DESC);
CREATE INDEX executions_by_status ON executions (tenant_id, status, started_at DESC);
CREATE UNIQUE INDEX executions_arn ON executions (execution_arn) WHERE execution_arn IS NOT NULL;

-- Node-level events of an execution; `seq` is the stable, ordered id SSE clients resume from.
CREATE TABLE execution_events (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    execution_id  UUID NOT NULL REFERENCES executions (id),
    seq           BIGINT NOT NULL CHECK (seq > 0),
    type          TEXT NOT NULL,
    node_id       TEXT,
    payload       JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, seq)
);

-- How executions start besides the API: webhooks, schedules, queue events.
CREATE TABLE triggers (
    id           UUID PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    workflow_id  UUID NOT NULL REFERENCES workflows (id),
    kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'schedule', 'queue')),
    config       JSONB NOT NULL DEFAULT '{}'::jsonb,
    enabled      BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX triggers_by_workflow ON triggers (tenant_id, workflow_id);
-- Queue consumers look up every enabled trigger for an event name.
CREATE INDEX triggers_by_event ON triggers ((config ->> 'event')) WHERE kind = 'queue' AND enabled;

-- Pending human decisions of `approval` nodes (the task token resumes the execution).
CREATE TABLE approvals (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    execution_id  UUID NOT NULL REFERENCES executions (id),
    node_id       TEXT NOT NULL,
    task_token    TEXT NOT NULL,
    message       TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out')),
    timeout_at    TIMESTAMPTZ,
    decided_by    TEXT,
    decided_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX approvals_pending ON approvals (tenant_id, status, created_at DESC);

-- Tenant secrets, AES-256-GCM encrypted with WEFT_SECRETS_KEY; the tenant and name are the
-- associated data, so a ciphertext copied to another row does not decrypt.
CREATE TABLE secrets (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
