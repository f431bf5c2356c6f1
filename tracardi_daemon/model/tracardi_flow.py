"""Runs a Tracardi workflow for a profile in Tracardi's own engine: one helper process
(``tracardi_flow_helper.py``) in Tracardi's Python environment, kept for the next run,
started again after it died or timed out. The dispatcher's ``flow:`` target uses it."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput
from tracardi_daemon.infra.dispatch import Attempt
from tracardi_daemon.redact import mask_text

HELPER = Path(__file__).with_name("tracardi_flow_helper.py")
_MAX_LINE = 1 << 20  # an answer is one short JSON line; more means the helper is broken
_STDERR_TAIL = 300  # what of Tracardi's own output a failure quotes


class HelperFailed(Exception):
    """The helper did not answer: it died, timed out, or wrote something else."""


def read_env_file(path: str) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments, blank lines and ``export`` allowed), as a
    docker env file or Tracardi's .env holds them."""
    values: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.removeprefix("export ").partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=value")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


class TracardiFlowRunner:
    """``run(payload)`` starts ``payload["flow_id"]`` for ``payload["profile_id"]`` and
    waits for Tracardi to have saved the result. One run at a time (a lock); each
    dispatch sender owns one runner, so senders run flows side by side."""

    def __init__(self, python: str, environ: Mapping[str, str], *, production: bool,
                 timeout_s: float, start_timeout_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._python = python
        self._environ = dict(environ)
        self._production = production
        self._timeout_s = timeout_s
        self._start_timeout_s = start_timeout_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        # Tracardi's log of the current request: emptied before each one, quoted when
        # the helper fails (it says why Tracardi would not start, e.g. a bad variable)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the runner

    def run(self, payload: dict[str, Any]) -> Attempt:
        request = {**payload, "production": self._production}
        with self._lock:
            try:
                self._ensure_started()
                answer = self._ask(request)
            except HelperFailed as exc:
                # a run cut off may have finished in Tracardi: another try may run the
                # flow a second time (at least once, like every other target)
                self._stop()
                return Attempt(ok=False, retryable=True,
                               error=f"flow runner: {exc}{self._stderr_tail()}")
        if answer.get("ok") is True:
            return Attempt(ok=True)
        return Attempt(ok=False, retryable=answer.get("retryable") is True,
                       error=f"flow runner: {str(answer.get('error'))[:300]}")

    def close(self) -> None:
        with self._lock:
            self._stop()
            self._stderr.close()

    def _stderr_tail(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        tail = self._stderr.read().decode("utf-8", errors="replace").strip()
        return f"; its last output: {mask_text(tail)}" if tail else ""

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._stop()
        self._stderr.seek(0)
        self._stderr.truncate()
        try:
            # -I: neither the daemon's PYTHONPATH nor the helper's own folder (whose
            # module names would shadow Tracardi's) is on Tracardi's sys.path
            self._process = subprocess.Popen(
                [self._python, "-I", str(HELPER)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, env=self._environ)
        except OSError as exc:
            raise HelperFailed(f"cannot start {self._python}: {exc}") from None
        ready = self._read_line(self._start_timeout_s, "starting")
        if ready.get("ready") is not True:
            raise HelperFailed(f"unexpected first line {str(ready)[:100]}")

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdin is not None
        # the helper shares this file's offset: its next write starts the file again
        self._stderr.seek(0)
        self._stderr.truncate()
        try:
            process.stdin.write(json.dumps(request, separators=(",", ":")).encode() + b"\n")
            process.stdin.flush()
        except OSError as exc:
            raise HelperFailed(f"helper gone: {exc}") from None
        return self._read_line(self._timeout_s, "running the flow")

    def _read_line(self, timeout_s: float, doing: str) -> dict[str, Any]:
        process = self._process
        assert process is not None and process.stdout is not None
        deadline = self._monotonic() + timeout_s
        fd = process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - self._monotonic()
                if left <= 0:
                    raise HelperFailed(f"no answer within {timeout_s:g}s ({doing})")
                if selector.select(left) and not self._take(fd):
                    raise HelperFailed(f"helper exited ({doing})")
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            raise HelperFailed(f"not a JSON answer: {line[:100]!r}") from None
        if not isinstance(answer, dict):
            raise HelperFailed(f"not a JSON object: {line[:100]!r}")
        return answer

    def _take(self, fd: int) -> bool:
        chunk = os.read(fd, 65536)
        self._buffer += chunk
        if len(self._buffer) > _MAX_LINE:
            raise HelperFailed("answer longer than 1 MiB")
        return bool(chunk)

    def _stop(self) -> None:
        process, self._process, self._buffer = self._process, None, b""
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def flow_runner_environ(env_file: str | None) -> dict[str, str]:
    """The helper's environment: the daemon's own (one env file serves both programs)
    with ``env_file``'s values over it. A bad file raises ValueError naming its line."""
    environ = dict(os.environ)
    environ.pop("PYTHONPATH", None)
    if env_file:
        environ.update(read_env_file(env_file))
    environ.setdefault("PATH", os.defpath)
    return environ


def configured_flow_runner(settings: Settings) -> TracardiFlowRunner | None:
    """The runner ``[dispatch]`` configures, or None without ``flow_python``; a bad
    ``flow_env_file`` raises InvalidInput naming the setting and the line."""
    dispatch = settings.dispatch
    if not dispatch.flow_python:
        return None
    try:
        environ = flow_runner_environ(dispatch.flow_env_file)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"dispatch.flow_env_file: {exc}") from None
    return TracardiFlowRunner(dispatch.flow_python, environ,
                              production=settings.tracardi.production,
                              timeout_s=dispatch.flow_timeout_s,
                              start_timeout_s=dispatch.flow_start_timeout_s)


__all__ = ["HELPER", "TracardiFlowRunner", "configured_flow_runner", "flow_runner_environ",
           "read_env_file"]
