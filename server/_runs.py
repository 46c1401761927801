"""Generations in progress, decoupled from the HTTP requests that watch them.

A generation runs as its own task and appends numbered events to its run. Any number
of SSE responses follow a run from any event id, so a client that drops can come back
with `Last-Event-ID`. A client leaving does not stop the generation (it is paid for)
unless it asked for `on_disconnect: cancel`. Finished runs stay replayable for a while,
then only the stored post remains.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import structlog

from posting import Pipeline, PostDone, PostEvent, Prepared, PostView

log = structlog.get_logger("server.runs")


class Run:
    def __init__(self, post_id: uuid.UUID) -> None:
        self.post_id = post_id
        self.events: list[PostEvent] = []
        self._changed = asyncio.Event()
        self.task: asyncio.Task[PostView] | None = None

    @property
    def done(self) -> bool:
        return bool(self.events) and isinstance(self.events[-1], PostDone)

    def append(self, event: PostEvent) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(
        self, *, after: int, heartbeat_s: float
    ) -> AsyncIterator[tuple[int, PostEvent] | None]:
        """Events numbered from 1, those after `after`; None when it is time for a heartbeat.

        Ends after post.done, or when the generation task ended without one (crashed).
        """
        sent = after
        while True:
            while sent < len(self.events):
                sent += 1
                yield sent, self.events[sent - 1]
            if self.done or (self.task is not None and self.task.done()):
                return
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), heartbeat_s)
            except TimeoutError:
                yield None

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def result(self) -> PostView:
        assert self.task is not None
        return await asyncio.shield(self.task)


class Runs:
    """The registry of runs in this process."""

    def __init__(self, pipeline: Pipeline, *, keep_s: float) -> None:
        self._pipeline = pipeline
        self._keep_s = keep_s
        self._runs: dict[uuid.UUID, Run] = {}

    def start(self, prepared: Prepared) -> Run:
        run = Run(uuid.uuid4())
        self._runs[run.post_id] = run
        run.task = asyncio.create_task(
            self._pipeline.generate(prepared, emit=run.append, post_id=run.post_id),
            name=f"post-{run.post_id}",
        )
        run.task.add_done_callback(lambda _: self._forget_later(run.post_id))
        return run

    def get(self, post_id: uuid.UUID) -> Run | None:
        return self._runs.get(post_id)

    def _forget_later(self, post_id: uuid.UUID) -> None:
        asyncio.get_running_loop().call_later(self._keep_s, self._runs.pop, post_id, None)

    @property
    def active(self) -> int:
        return sum(1 for run in self._runs.values() if run.task and not run.task.done())

    async def drain(self, grace_s: float) -> None:
        """At shutdown: let running generations finish for `grace_s`, then cancel them.

        A cancelled generation is stored as `cancelled` with its partial text.
        """
        tasks = [r.task for r in self._runs.values() if r.task and not r.task.done()]
        if not tasks:
            return
        log.info("runs.draining", running=len(tasks), grace_s=grace_s)
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
