-- Triggers registered from a published graph and approvals' decisions (`shared/triggers`).
--
-- A trigger row is keyed by what it reacts to, so re-publishing the same trigger keeps its id,
-- webhook secret and last fire time:
--   key:            the cron expression (schedule), the event name (queue) or '' (webhook)
--   version:        the published version whose graph declared the trigger
--   secret_*:       a webhook's HMAC key, sealed with WEFT_SECRETS_KEY (bound to tenant and id)
--   last_fired_at:  the last due time a schedule fired for; the scheduler advances it with a
--                   compare-and-set, so two schedulers (or a restart) never fire a due time twice
ALTER TABLE triggers
    ADD COLUMN key            TEXT NOT NULL DEFAULT '',
    ADD COLUMN version        INTEGER,
    ADD COLUMN secret_nonce   BYTEA,
    ADD COLUMN secret_sealed  BYTEA,
    ADD COLUMN last_fired_at  TIMESTAMPTZ;
CREATE UNIQUE INDEX triggers_identity ON triggers (workflow_id, kind, key);
CREATE INDEX triggers_schedules ON triggers (kind) WHERE kind = 'schedule' AND enabled;

-- Webhook deliveries seen inside the replay window: a signature is accepted once.
CREATE TABLE webhook_deliveries (
    trigger_id   UUID NOT NULL REFERENCES triggers (id),
    signature    TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (trigger_id, signature)
);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (received_at);

-- A decision's details, and one approval per task token (a retried approval function invocation
-- finds the row it already wrote). Tokens can be long, so the index is on their digest (md5 is
-- immutable, as an index expression must be; collisions do not matter for this purpose).
ALTER TABLE approvals
    ADD COLUMN output   JSONB,
    ADD COLUMN comment  TEXT;
CREATE UNIQUE INDEX approvals_token ON approvals (md5(task_token));
