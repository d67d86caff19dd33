-- Graphs and ASL are stored as `json` (the text as sent), not `jsonb`: clients get back exactly
-- the document they saved, key order included, and numbers that `jsonb`'s numeric type would
-- print differently (e.g. 1.7976931348623157e308) round-trip unchanged. Nothing queries inside
-- these documents, so `jsonb`'s indexing is not needed.
ALTER TABLE workflows ALTER COLUMN graph TYPE json USING graph::json;
ALTER TABLE workflow_versions ALTER COLUMN graph TYPE json USING graph::json;
ALTER TABLE workflow_versions ALTER COLUMN asl TYPE json USING asl::json;
