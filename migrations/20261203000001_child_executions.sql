-- Child executions of `workflow` nodes have rows of their own (tenant, workflow, version), so they
-- are listed, their secrets resolve, and they link back to the execution that started them.
ALTER TABLE executions ADD COLUMN parent_execution_id UUID REFERENCES executions (id) ON DELETE SET NULL;
CREATE INDEX executions_by_parent ON executions (parent_execution_id) WHERE parent_execution_id IS NOT NULL;
CREATE INDEX workflow_versions_by_version_arn ON workflow_versions (state_machine_version_arn) WHERE state_machine_version_arn IS NOT NULL;
