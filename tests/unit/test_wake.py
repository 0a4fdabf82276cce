"""`shared.wake`: an API process's commit wakes its worker's relay over a datagram socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.wake import WAKE_SOCKET, WakeSender, listen_for_wakes


async def test_a_datagram_wakes_the_listener(tmp_path: Path) -> None:
    woken = asyncio.Event()
    transport = await listen_for_wakes(tmp_path, woken.set)
    sender = WakeSender(tmp_path)
    try:
        assert not woken.is_set()
        sender()
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        sender.close()
        transport.close()


async def test_a_restarted_worker_takes_over_the_socket_left_behind(tmp_path: Path) -> None:
    first = await listen_for_wakes(tmp_path, lambda: None)
    first.close()
    assert (tmp_path / WAKE_SOCKET).exists()  # a killed worker leaves its socket file
    woken = asyncio.Event()
    second = await listen_for_wakes(tmp_path, woken.set)
    sender = WakeSender(tmp_path)
    try:
        sender()
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        sender.close()
        second.close()


def test_waking_nobody_is_harmless(tmp_path: Path) -> None:
    """No worker listening (not started yet, restarting): the relay's polling takes the rows."""
    sender = WakeSender(tmp_path)
    sender()
    sender.close()
    missing = WakeSender(tmp_path / "gone")
    missing()
    missing.close()
