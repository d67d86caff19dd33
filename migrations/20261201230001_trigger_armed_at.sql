-- `last_fired_at` is when a trigger last started its workflow (for schedules: the due time it
-- fired for), and nothing else. A schedule's starting point moves to `armed_at`: when it was
-- registered or re-enabled; it never fires for due times before that.
ALTER TABLE triggers ADD COLUMN armed_at TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE triggers SET armed_at = COALESCE(last_fired_at, created_at);
-- Webhook and queue rows never had a fire recorded: their `last_fired_at` was the publish time.
UPDATE triggers SET last_fired_at = NULL WHERE kind <> 'schedule';
