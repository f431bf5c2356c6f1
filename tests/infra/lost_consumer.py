"""A consumer that takes one message and then hangs, for the kill -9 takeover test.

Usage: python -m tests.infra.lost_consumer REDIS_URL TENANT QUEUE VISIBILITY_S
Prints the id of the message it holds, then waits until it is killed.
"""

from __future__ import annotations

import sys
import threading

from redis import Redis

from tracardi_daemon.infra.queue import WorkQueue


def main() -> None:
    url, tenant, queue, visibility_s = sys.argv[1:5]
    work = WorkQueue(Redis.from_url(url), tenant, queue,
                     visibility_timeout_s=float(visibility_s))
    messages = work.consume("doomed", count=1, block_ms=5000)
    print(messages[0].id if messages else "", flush=True)
    threading.Event().wait()  # "working" until SIGKILL


if __name__ == "__main__":
    main()
