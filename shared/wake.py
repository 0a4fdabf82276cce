"""A service's API processes wake its worker process's relay, on one machine.

With `KEHU_ROLE=split`, `shared.serve` runs a service as API processes (requests only) beside one
worker process (`KEHU_ROLE=worker`: outbox relay, consumers, schedulers), so no request waits on
its event loop behind a relay pass, a consumer batch or a scheduler's sweep. An API process's
commit that wrote outbox rows sends one datagram to the worker's wake socket (a Unix datagram
socket in the service's run directory); the worker's relay wakes as for a commit of its own.

A datagram is only a hint, sent without waiting: one lost (the worker restarting, its buffer
full) leaves the row to the relay's polling, every `outbox_poll_interval_s`, as for any replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path

WAKE_SOCKET = "wake.sock"
WORKER_SOCKET = "worker.sock"  # the worker's HTTP server (health), for the API's readiness


class WakeSender:
    """Sends the wake datagram; never blocks and never raises."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = str(Path(run_dir) / WAKE_SOCKET)
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.setblocking(False)

    def __call__(self) -> None:
        # Nobody listening yet, a full buffer: the relay's polling takes the rows.
        with contextlib.suppress(OSError):
            self.socket.sendto(b"w", self.path)

    def close(self) -> None:
        self.socket.close()


class _Wakes(asyncio.DatagramProtocol):
    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.wake()


async def listen_for_wakes(run_dir: str | Path, wake: Callable[[], None]) -> asyncio.BaseTransport:
    """Call `wake` for every datagram on the run directory's wake socket (close the transport
    to stop). A socket file left by a previous worker is replaced."""
    path = Path(run_dir) / WAKE_SOCKET
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    # Bound here and handed over: uvloop's endpoint takes no Unix path, only a socket.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        sock.setblocking(False)
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Wakes(wake), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return transport
