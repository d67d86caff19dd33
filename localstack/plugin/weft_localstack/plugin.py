"""The plux plugin LocalStack finds in the ``localstack.lambda.runtime_executor`` entry-point group."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class WeftHostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "weft-host"

    def load(self, *args, **kwargs):
        # Imported lazily, as LocalStack's own Docker plugin does.
        from weft_localstack.executor import WeftHostRuntimeExecutor

        return WeftHostRuntimeExecutor
