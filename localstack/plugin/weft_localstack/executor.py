"""``WeftHostRuntimeExecutor``: LocalStack's ``RuntimeExecutor`` for ``provided.*`` functions,
running the function's ``bootstrap`` as a process on this host (no Docker).

LocalStack creates one executor per execution environment (``ExecutionEnvironment.__init__``),
calls ``start(env_vars)`` once, then ``invoke(payload)`` once per invocation (never two at a time),
and ``stop()`` at the end. ``invoke`` returns an ``InvocationResult`` whose ``logs`` LocalStack
writes to CloudWatch Logs and returns as ``LogResult``; a failed initialisation is reported by
raising ``StatusErrorException`` from ``start``, as LocalStack's own executor endpoint does.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import (
    NAMESPACE,
    ShutdownDuringStartup,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor

from weft_localstack.runtime_api import Invocation, LogCollector, Outcome, OutputPump, RuntimeApi

LOG = logging.getLogger(__name__)

# What AWS gives a provided.* runtime, less what only makes sense in its sandbox.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# Variables meant for LocalStack's Go init (which we replace), not for the runtime.
INIT_ONLY_ENV = (
    "LOCALSTACK_RUNTIME_ID",
    "LOCALSTACK_RUNTIME_ENDPOINT",
    "LOCALSTACK_CHMOD_PATHS",
    "LOCALSTACK_USER",
    "LOCALSTACK_INIT_LOG_LEVEL",
    "LOCALSTACK_POST_INVOKE_WAIT_MS",
    "LOCALSTACK_MAX_PAYLOAD_SIZE",
)
TERM_GRACE_SECONDS = 1.0


class _Process:
    """One run of the bootstrap: the process, its output pump, and how it ended."""

    def __init__(self, popen: subprocess.Popen, pump: OutputPump) -> None:
        self.popen = popen
        self.pump = pump
        self.started = time.perf_counter()
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self.reaped_group = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal_group(self, sig: int) -> None:
        if self.reaped_group:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _exit_reason(code: int) -> str:
    """Like AWS (Go's ``exec.ExitError``): ``exit status 1``, ``signal: killed``."""
    if code >= 0:
        return f"exit status {code}"
    try:
        name = signal.strsignal(-code) or f"signal {-code}"
    except ValueError:
        name = f"signal {-code}"
    return f"signal: {name.lower()}"


def _max_memory_mb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return 0


class WeftHostRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._cond = threading.Condition()
        self._invoke_lock = threading.Lock()
        self._api: RuntimeApi | None = None
        self._process: _Process | None = None
        self._env: dict[str, str] = {}
        self._logs = LogCollector()
        self._stopped = False
        self._tmpdir: str | None = None
        self._init_ms: float | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        problem = self._unsupported(self.function_version)
        if problem:
            failure = Outcome.error("Runtime.InvalidRuntime", problem)
            raise StatusErrorException("Environment startup failed", payload=failure.payload)
        self._tmpdir = tempfile.mkdtemp(prefix=f"weft-host-{self.id[:12]}-")
        self._api = RuntimeApi(on_change=self._notify)
        self._env = self._environment(env_vars)
        failure = self._init(deadline=None)  # LocalStack's startup timer bounds the first init
        if failure is not None:
            LOG.warning(
                "weft-host: init of %s failed: %s\n%s",
                self.function_version.qualified_arn,
                failure.payload.decode("utf-8", "replace"),
                self._logs.take().rstrip("\n") or "(no output)",
            )
            raise StatusErrorException("Environment startup failed", payload=failure.payload)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            process = self._process
            self._cond.notify_all()
        if process is not None and process.exit_code is None:
            process.signal_group(signal.SIGTERM)
            if not process.exited.wait(TERM_GRACE_SECONDS):
                process.signal_group(signal.SIGKILL)
                process.exited.wait(2)
        if self._api is not None:
            self._api.close()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self._invoke_lock:
            return self._invoke(payload)

    def get_logs(self) -> str:
        return self._logs.history()

    # --- addresses -------------------------------------------------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        host = config.GATEWAY_LISTEN[0].host
        if host in ("", "0.0.0.0", "::", "[::]"):
            return "127.0.0.1"
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{self.get_endpoint_from_executor()}:{port}{NAMESPACE}/{self.id}"

    # --- version preparation ---------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        cfg = function_version.config
        # An unsupported function is not failed here: LocalStack cannot delete a version whose
        # preparation failed (lambda_service.stop_version), which would also block stack deletes.
        # It becomes Active and each invocation says why it cannot run (see start).
        problem = cls._unsupported(function_version)
        if problem:
            LOG.warning("weft-host: %s: %s", function_version.qualified_arn, problem)
            return
        if cfg.layers:
            LOG.warning("weft-host: layers of %s are ignored", function_version.qualified_arn)
        if cfg.code:
            cfg.code.prepare_for_execution()

    @staticmethod
    def _unsupported(function_version: FunctionVersion) -> str | None:
        cfg = function_version.config
        if cfg.package_type != PackageType.Zip or not cfg.code:
            return "the weft-host executor runs zip packages only, not container images"
        if not (cfg.runtime or "").startswith("provided"):
            return f"the weft-host executor runs provided.* runtimes only (a bootstrap), not {cfg.runtime}"
        return None

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return os.name == "posix"

    # --- internals -------------------------------------------------------------------------------

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _code_dir(self) -> str:
        return str(self.function_version.config.code.get_unzipped_code_location())

    def _environment(self, env_vars: dict[str, str]) -> dict[str, str]:
        # Built from scratch: LocalStack's own environment (credentials, config) stays out.
        env = dict(BASE_ENV)
        env.update({str(k): str(v) for k, v in env_vars.items() if v is not None})
        for name in INIT_ONLY_ENV:
            env.pop(name, None)
        code_dir = self._code_dir()
        env["LAMBDA_TASK_ROOT"] = code_dir
        env["LAMBDA_RUNTIME_DIR"] = code_dir
        env.setdefault("TMPDIR", self._tmpdir or tempfile.gettempdir())
        env["AWS_LAMBDA_RUNTIME_API"] = self._api.address
        return env

    def _spawn(self) -> _Process | Outcome:
        bootstrap = os.path.join(self._code_dir(), "bootstrap")
        if not (os.path.isfile(bootstrap) and os.access(bootstrap, os.X_OK)):
            return Outcome.error("Runtime.InvalidEntrypoint", f"Couldn't find valid bootstrap(s): [{bootstrap}]")
        try:
            popen = subprocess.Popen(
                [bootstrap],
                cwd=self._code_dir(),
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                close_fds=True,
            )
        except OSError as e:
            return Outcome.error("Runtime.InvalidEntrypoint", f"cannot run {bootstrap}: {e}")
        pump = OutputPump(f"weft-host-logs-{popen.pid}", popen.stdout, popen.stderr, self._logs)
        pump.start()
        process = _Process(popen, pump)
        self._pid_file(process, create=True)
        threading.Thread(target=self._watch, args=(process,), name=f"weft-host-wait-{popen.pid}", daemon=True).start()
        return process

    def _init(self, deadline: float | None) -> Outcome | None:
        """Starts a fresh bootstrap and waits until it asks for its first invocation.

        Returns None when it did, else the failure (``Runtime.InitError`` when it posted
        ``/init/error``, exited or hung; ``Runtime.InvalidEntrypoint`` when it cannot run).
        """
        self._api.new_process()
        with self._cond:
            if self._stopped:
                raise ShutdownDuringStartup("Executor environment shutdown during startup")
        spawned = self._spawn()
        if isinstance(spawned, Outcome):
            return spawned
        process = spawned
        failure: Outcome | None = None
        with self._cond:
            self._process = process
            while True:
                if self._stopped:
                    # stop() may have run before the process was recorded: it is ours to kill.
                    break
                if self._api.ready:
                    self._init_ms = (time.perf_counter() - process.started) * 1000
                    return None
                posted = self._api.init_error
                if posted is not None:
                    failure = Outcome.error("Runtime.InitError", self._describe_init_error(posted))
                    break
                if process.exit_code is not None:
                    failure = Outcome.error(
                        "Runtime.InitError",
                        f"Runtime exited with error: {_exit_reason(process.exit_code)} "
                        "before asking for its first invocation",
                    )
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    failure = Outcome.error(
                        "Runtime.InitError",
                        "Runtime did not ask for its first invocation within "
                        f"{config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT} s",
                    )
                    break
                self._cond.wait(remaining)
        process.signal_group(signal.SIGKILL)
        process.exited.wait(2)
        if failure is None:
            raise ShutdownDuringStartup("Executor environment shutdown during startup")
        return failure

    @staticmethod
    def _describe_init_error(posted: bytes) -> str:
        try:
            doc = json.loads(posted)
        except ValueError:
            doc = {}
        kind = doc.get("errorType") or "Unhandled"
        message = doc.get("errorMessage") or ""
        return f"Init failed with {kind}: {message}".rstrip(": ")

    def _watch(self, process: _Process) -> None:
        code = process.popen.wait()
        # Whatever it left behind in its group goes too (and stops holding the output pipes).
        process.signal_group(signal.SIGKILL)
        process.pump.wait_finished(2.0)
        process.reaped_group = True
        self._pid_file(process, create=False)
        with self._cond:
            process.exit_code = code
            current = self._process is process
            stopped = self._stopped
            self._cond.notify_all()
        process.exited.set()
        if current and self._api is not None:
            if not stopped:
                LOG.info(
                    "weft-host: bootstrap of %s (pid %d) exited: %s",
                    self.function_version.qualified_arn,
                    process.pid,
                    _exit_reason(code),
                )
            reason = _exit_reason(code)
            self._api.settle_pending(
                lambda inv: Outcome.error(
                    "Runtime.ExitError", f"RequestId: {inv.request_id} Error: Runtime exited with error: {reason}"
                )
            )

    def _invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout or 3)
        qualifier = self.function_version.id.qualifier
        process = self._process
        if process is None or process.exit_code is not None:
            # The previous process died (crash, timeout): a fresh init, as AWS does.
            failure = self._init(deadline=time.monotonic() + config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
            if failure is not None:
                doc = json.loads(failure.payload)
                doc["errorMessage"] = f"RequestId: {request_id} Error: {doc['errorMessage']}"
                self._logs.add(f"INIT_REPORT RequestId: {request_id} Status: error ({doc['errorType']})")
                return InvocationResult(request_id, json.dumps(doc).encode(), True, self._logs.take())
            process = self._process
        # Output written before this invocation (its init, or after the previous response)
        # comes before START.
        process.pump.drain()
        init_ms, self._init_ms = self._init_ms, None
        self._logs.add(f"START RequestId: {request_id} Version: {qualifier}")
        invocation = Invocation(
            request_id=request_id,
            payload=str(payload.get("payload") or "").encode(),
            function_arn=payload.get("invoked-function-arn") or self.function_version.qualified_arn,
            trace_id=payload.get("trace-id") or "",
            deadline=time.time() + timeout,
        )
        started = time.perf_counter()
        self._api.enqueue(invocation)
        if process.exit_code is not None:
            # It died after the check above and its watcher has already failed what was pending.
            invocation.settle(
                Outcome.error(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {_exit_reason(process.exit_code)}",
                )
            )
        if not invocation.wait(timeout) and invocation.settle(
            Outcome.error("Sandbox.Timedout", f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds")
        ):
            process.signal_group(signal.SIGKILL)
            process.exited.wait(2)
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            process.pump.drain()
            self._logs.add(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds")
        duration_ms = (time.perf_counter() - started) * 1000
        # The runtime wrote this invocation's lines before posting its result: collect them now.
        process.pump.drain()
        outcome = invocation.outcome
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\t"
            f"Memory Size: {self.function_version.config.memory_size} MB\t"
            f"Max Memory Used: {_max_memory_mb(process.pid)} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        self._logs.add(f"END RequestId: {request_id}")
        self._logs.add(report)
        return InvocationResult(request_id, outcome.payload, outcome.is_error, self._logs.take())

    def _pid_file(self, process: _Process, create: bool) -> None:
        """Records the bootstrap in ``$WEFT_HOST_PID_DIR`` so ``localstack/down`` can clean up
        after a LocalStack that died without stopping its environments."""
        directory = os.environ.get("WEFT_HOST_PID_DIR")
        if not directory:
            return
        path = os.path.join(directory, str(process.pid))
        try:
            if create:
                os.makedirs(directory, exist_ok=True)
                with open(path, "w") as f:
                    f.write(self._code_dir() + "\n")
            else:
                os.unlink(path)
        except OSError:
            pass
