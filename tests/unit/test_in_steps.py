"""`shared.consumer.in_steps`: a batch handler's Python in slices, with the loop's other work
running between two slices."""

from __future__ import annotations

import asyncio

from shared.consumer import in_steps


async def test_slices_cover_the_items_in_order_and_other_tasks_run_between_them() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    slices: list[list[int]] = []
    ticks_at: list[int] = []
    async for step in in_steps(list(range(7)), step=3):
        slices.append(list(step))
        ticks_at.append(ticks)
    task.cancel()
    assert slices == [[0, 1, 2], [3, 4, 5], [6]]
    assert ticks_at[0] < ticks_at[1] < ticks_at[2]  # the ticker ran between two slices


async def test_nothing_to_walk_yields_nothing() -> None:
    nothing: list[int] = []
    assert [step async for step in in_steps(nothing)] == []
