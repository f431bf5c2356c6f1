"""A private Elasticsearch node for the fault tests, started by ``scripts/services
elasticsearch-up`` on a port of its own with its own data: a test may hang it
(SIGSTOP, as a node in a long GC pause or a frozen VM), let it go on (SIGCONT), or kill
it and start it again on the same data, so that its shards recover as after a crash."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from elasticsearch import Elasticsearch

from tests.conftest import drop_indices

REPO = Path(__file__).resolve().parents[2]
# a fixed port, so that the node's data directory is made once per machine
PRIVATE_ELASTIC_PORT = int(os.environ.get("TEST_PRIVATE_ELASTIC_PORT", "9251"))


class PrivateElastic:
    def __init__(self, port: int = PRIVATE_ELASTIC_PORT) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def _services(self, command: str) -> str:
        env = {**os.environ, "ELASTIC_PORT": str(self.port)}
        done = subprocess.run([str(REPO / "scripts" / "services"), command], env=env,
                              capture_output=True, text=True, timeout=180, check=False)
        if done.returncode != 0 and command != "elasticsearch-pid":
            raise AssertionError(f"scripts/services {command} failed:\n{done.stdout}\n"
                                 f"{done.stderr}")
        return done.stdout.strip() if done.returncode == 0 else ""

    def start(self) -> None:
        self._services("elasticsearch-up")

    def pid(self) -> int:
        pid = self._services("elasticsearch-pid")
        if not pid.isdigit():
            raise AssertionError(f"the private Elasticsearch on {self.port} is not running")
        return int(pid)

    def pause(self) -> None:
        os.kill(self.pid(), signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid(), signal.SIGCONT)

    def kill9(self) -> None:
        pid = self.pid()
        os.kill(pid, signal.SIGCONT)  # a stopped process dies only once it runs
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            subprocess.run(["sleep", "0.05"], check=False)
        raise AssertionError(f"Elasticsearch pid {pid} did not die")

    def client(self) -> Elasticsearch:
        return Elasticsearch(self.url, request_timeout=60)

    def drop(self, prefix: str) -> None:
        client = self.client()
        try:
            drop_indices(client, prefix)
        finally:
            client.close()


@contextmanager
def private_elastic() -> Iterator[PrivateElastic]:
    """The node, started if it is not running; left running for the next test (it
    takes some 20 s to start), resumed if a test left it paused."""
    node = PrivateElastic()
    node.start()
    try:
        yield node
    finally:
        with contextlib.suppress(AssertionError, ProcessLookupError):
            node.resume()  # unless a test killed it and did not start it again
