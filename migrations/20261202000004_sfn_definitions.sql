-- The definitions executions run, stored once each (keyed by the SHA-256 of the text) instead of
-- a copy in every execution's document (it was most of an execution's bytes, written at its start
-- and again at its end). A redrive reads its execution's definition from here.
CREATE TABLE sfn_definitions (
    sha256     TEXT PRIMARY KEY,
    definition TEXT NOT NULL
);
ALTER TABLE sfn_executions ADD COLUMN definition_sha256 TEXT REFERENCES sfn_definitions (sha256);
INSERT INTO sfn_definitions (sha256, definition)
    SELECT DISTINCT encode(sha256(convert_to(doc ->> 'definition', 'UTF8')), 'hex'), doc ->> 'definition'
    FROM sfn_executions WHERE doc ->> 'definition' IS NOT NULL
    ON CONFLICT DO NOTHING;
-- Older documents keep their `definition` key (rewriting `json` documents that may hold `\u0000`
-- is not worth it); it is no longer read.
UPDATE sfn_executions SET definition_sha256 = encode(sha256(convert_to(doc ->> 'definition', 'UTF8')), 'hex')
    WHERE doc ->> 'definition' IS NOT NULL;
