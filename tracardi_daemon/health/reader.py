"""The health socket's accept loop: one thread accepts connections and collects their
request heads without blocking, so an idle or trickling client costs a socket, not a
thread; complete heads go to the answering workers through a bounded queue."""

from __future__ import annotations

import logging
import queue
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("tracardi_daemon.health.server")

LISTEN_BACKLOG = 512  # a burst of clients waits in the kernel instead of being refused
REQUEST_HEAD_TIMEOUT_S = 2.0  # for the whole request head, counted from accept
MAX_PENDING_CONNECTIONS = 256  # connections still sending their head; beyond: oldest closed
MAX_READY_REQUESTS = 256  # complete heads waiting for a worker; beyond: newest closed
MAX_REQUEST_HEAD = 16384  # request line and headers together
_HEAD_END = re.compile(rb"\r?\n\r?\n")
Request = tuple[bytes, socket.socket]  # the request head as received, and its connection


@dataclass
class PendingHead:
    sock: socket.socket
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class HeadReader:
    """Accepts connections and collects their request heads; hands complete ones on."""

    def __init__(self, listener: socket.socket, ready: queue.Queue[Request | None]) -> None:
        self._listener = listener
        self._ready = ready
        self._pending: dict[socket.socket, PendingHead] = {}  # oldest first
        self._selector = selectors.DefaultSelector()  # epoll: no limit on descriptor numbers
        self._wake_up, self._wake_up_sender = socket.socketpair()
        self._stopping = threading.Event()

    def run(self) -> None:
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_up, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in self._selector.select(self._wait_s()):
                    self._dispatch(key)
                self._close_expired(time.monotonic())
        finally:
            for pending in list(self._pending.values()):
                self._close(pending)
            self._selector.close()
            self._wake_up.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake_up_sender.close()  # the other end turns readable (EOF): select returns

    def _dispatch(self, key: selectors.SelectorKey) -> None:
        pending = key.data
        if key.fileobj is self._listener:
            self._accept_waiting()
        # a connection evicted earlier in this batch of events is closed: skip it
        elif isinstance(pending, PendingHead) and pending.sock in self._pending:
            try:
                self._receive(pending)
            except Exception:  # a bug must cost this connection, not the health socket
                log.exception("reading a health request failed")
                if pending.sock in self._pending:
                    self._close(pending)

    def _wait_s(self) -> float | None:
        oldest = next(iter(self._pending.values()), None)
        return None if oldest is None else max(0.0, oldest.deadline - time.monotonic())

    def _accept_waiting(self) -> None:
        for _ in range(LISTEN_BACKLOG):  # then read heads again before accepting more
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors: free one, or wait instead of spinning
                log.warning("health socket cannot accept a connection: %s", exc)
                if not self._pending:
                    self._stopping.wait(0.5)
                else:
                    self._close(next(iter(self._pending.values())))
                return
            self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        if len(self._pending) >= MAX_PENDING_CONNECTIONS:
            log.debug("health: %d clients still sending; closing the oldest", len(self._pending))
            self._close(next(iter(self._pending.values())))
        sock.setblocking(False)
        pending = PendingHead(sock, time.monotonic() + REQUEST_HEAD_TIMEOUT_S)
        self._pending[sock] = pending
        self._selector.register(sock, selectors.EVENT_READ, pending)

    def _receive(self, pending: PendingHead) -> None:
        try:
            chunk = pending.sock.recv(MAX_REQUEST_HEAD + 1)
        except BlockingIOError:
            return
        except OSError:
            self._close(pending)
            return
        if not chunk:  # the client has sent all it will: answer what there is, if anything
            if pending.data:
                self._hand_on(pending, bytes(pending.data))
            else:
                self._close(pending)
            return
        searched = max(0, len(pending.data) - 3)
        pending.data += chunk
        end = _HEAD_END.search(pending.data, searched)
        if end is not None and end.end() <= MAX_REQUEST_HEAD:  # a body, if any, is dropped
            self._hand_on(pending, bytes(pending.data[:end.end()]))
        elif len(pending.data) > MAX_REQUEST_HEAD:  # the handler answers 431 for this
            self._hand_on(pending, bytes(pending.data[:MAX_REQUEST_HEAD + 1]))

    def _hand_on(self, pending: PendingHead, head: bytes) -> None:
        self._forget(pending)
        try:
            self._ready.put_nowait((head, pending.sock))
        except queue.Full:
            log.debug("health: %d requests wait for a worker; closing the newest",
                      MAX_READY_REQUESTS)
            pending.sock.close()

    def _close_expired(self, now: float) -> None:
        while self._pending:  # oldest first, so deadlines ascend
            oldest = next(iter(self._pending.values()))
            if oldest.deadline > now:
                return
            log.debug("health client sent no request within %gs; closed",
                      REQUEST_HEAD_TIMEOUT_S)
            self._close(oldest)

    def _close(self, pending: PendingHead) -> None:
        self._forget(pending)
        pending.sock.close()

    def _forget(self, pending: PendingHead) -> None:
        del self._pending[pending.sock]
        self._selector.unregister(pending.sock)
