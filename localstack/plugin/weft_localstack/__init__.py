"""Weft's LocalStack Lambda runtime executor: `provided.*` bootstraps as host processes.

Select it with ``LAMBDA_RUNTIME_EXECUTOR=weft-host`` (see ``localstack/README.md``).
"""
