-- Execution data is stored as `json` (its text, validated), not `jsonb`: `\u0000` is legal JSON
-- that nodes may return (an HTTP body, a database row), and `jsonb` refuses it, which made the
-- recorder fail on such an execution forever. Nothing queries inside these documents with
-- `jsonb` operators. Values are bound as text and cast (`$n::text::json`).
ALTER TABLE executions
    ALTER COLUMN input TYPE json USING input::json,
    ALTER COLUMN output TYPE json USING output::json;
ALTER TABLE execution_events ALTER COLUMN payload DROP DEFAULT;
ALTER TABLE execution_events ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE execution_events ALTER COLUMN payload SET DEFAULT '{}'::json;
ALTER TABLE sfn_executions ALTER COLUMN doc TYPE json USING doc::json;
ALTER TABLE sfn_history_events ALTER COLUMN event TYPE json USING event::json;
ALTER TABLE sfn_state_machines ALTER COLUMN doc TYPE json USING doc::json;
ALTER TABLE sfn_versions ALTER COLUMN doc TYPE json USING doc::json;
ALTER TABLE sfn_aliases ALTER COLUMN doc TYPE json USING doc::json;
