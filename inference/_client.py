"""One streaming client for every OpenAI-compatible backend: OpenAI, vLLM, llama.cpp.

A request for N variants becomes as few upstream calls as the backend allows: one call
with `n` where the backend supports it (split at its `max_n`), otherwise N concurrent
calls of one. Every call runs as its own task and feeds one queue, so the caller sees a
single stream of events, demultiplexed by variant index, whatever the backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import openai
import structlog

from config import Backend, ModelCard
from config._settings import Retries, Timeouts
from inference import _metrics
from inference._errors import LLMError, StreamBroken, from_openai
from inference._hedge import Leg, Race, Release, shared_slot
from inference._retry import retrying
from inference._types import (
    CallFinished,
    CallRecord,
    ChatRequest,
    StreamEvent,
    TextDelta,
    VariantFailed,
    VariantFinished,
)
from inference._usage import UsageTally

log = structlog.get_logger("inference.client")

# vLLM's neutral values for the sampling knobs OpenAI's API does not have.
VLLM_SAMPLING = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}

_STREAM_ERRORS = (openai.APIError, httpx.HTTPError, UnicodeDecodeError)


class LLMClient:
    """Streams chat completions from one configured backend."""

    def __init__(
        self,
        *,
        name: str,
        backend: Backend,
        base_url: str,
        api_key: str | None,
        card: ModelCard,
        timeouts: Timeouts,
        retries: Retries,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self.base_url = base_url
        self.card = card
        self._retries = retries
        self._slots = asyncio.Semaphore(backend.max_concurrency)
        self._sdk = openai.AsyncOpenAI(
            base_url=base_url,
            # llama.cpp and an open vLLM ignore the key, but the SDK insists on one.
            api_key=api_key or "unused",
            max_retries=0,  # retries are ours: they must stop once a token has streamed
            timeout=httpx.Timeout(
                connect=timeouts.connect_s,
                read=timeouts.idle_s,
                write=timeouts.connect_s,
                pool=timeouts.idle_s,
            ),
            default_headers=backend.headers or None,
            http_client=http_client,
        )
        _metrics.start_backend(name, backend.model)

    @property
    def model(self) -> str:
        return self.backend.model

    async def aclose(self) -> None:
        await self._sdk.close()

    def stream(self, request: ChatRequest, *, model: str | None = None) -> VariantStream:
        """Start streaming `request.n` variants; use the result as an async context."""
        return VariantStream(self, request, model or self.backend.model)

    def model_label(self, model: str) -> str:
        return _metrics.model_label(model, configured=self.backend.model)

    def plan_calls(self, n: int) -> list[range]:
        """Variant indexes for each upstream call."""
        size = min(self.backend.max_n, n) if self.backend.supports_n else 1
        return [range(start, min(start + size, n)) for start in range(0, n, size)]

    def request_body(self, request: ChatRequest, model: str, variants: range) -> dict[str, Any]:
        """Keyword arguments for `chat.completions.create`, per backend kind."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "temperature": request.temperature,
            "top_p": request.top_p,
        }
        if len(variants) > 1:
            body["n"] = len(variants)
        if self.backend.kind == "openai":
            body["max_completion_tokens"] = request.max_tokens
        else:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            # llama.cpp and vLLM give choice i the seed S+i: keep calls from overlapping.
            body["seed"] = request.seed + variants.start
        if self.backend.stream_usage:
            options: dict[str, Any] = {"include_usage": True}
            if self.backend.kind == "vllm":
                # Usage on every chunk, so a stream we cancel can still be billed.
                options["continuous_usage_stats"] = True
            body["stream_options"] = options
        if self.backend.kind == "vllm":
            # vLLM applies the model's generation_config.json unless told otherwise, so the
            # rest of the sampler is pinned too. These fields go to vLLM only.
            body["extra_body"] = dict(VLLM_SAMPLING)
        return body

    async def _open(self, body: dict[str, Any], attempts: list[int], *,
                    retries: Retries | None = None) -> openai.AsyncStream:
        """Open the stream, retrying what may be retried; counts tries in `attempts`."""
        policy = retries or self._retries
        async for attempt in retrying(policy):
            with attempt:
                attempts[0] += 1
                try:
                    return await self._sdk.chat.completions.create(**body)
                except Exception as exc:  # noqa: BLE001 - mapped, then retried or raised
                    mapped = from_openai(exc)
                    log.info("llm.open_failed", backend=self.name, attempt=attempts[0],
                             error=mapped.code, retryable=mapped.retryable)
                    if mapped.retryable and attempts[0] < policy.attempts:
                        _metrics.count_retry(self.name, self.model_label(body["model"]),
                                             mapped.code)
                    raise mapped from exc
        raise AssertionError("unreachable: tenacity reraises the last error")


class VariantStream:
    """The live variants of one request. Leaving the context closes every upstream call."""

    def __init__(self, client: LLMClient, request: ChatRequest, model: str) -> None:
        self._client = client
        self._request = request
        self._model = model
        self._queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.records: list[CallRecord] = []

    async def __aenter__(self) -> VariantStream:
        for variants in self._client.plan_calls(self._request.n):
            self._tasks.append(asyncio.create_task(self._call(variants)))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel unfinished calls (closing their connections) and wait for them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def events(self) -> AsyncIterator[StreamEvent]:
        pending = len(self._tasks)
        while pending:
            event = await self._queue.get()
            if isinstance(event, CallFinished):
                pending -= 1
            yield event

    async def _call(self, variants: range) -> None:
        client = self._client
        body = client.request_body(self._request, self._model, variants)
        label = client.model_label(self._model)
        started = time.monotonic()
        race = Race()
        race.add("primary", self._tally(variants, label))
        queued_ms = 0.0
        try:
            async with self._slot():
                queued_ms = (time.monotonic() - started) * 1000
                await self._run_race(race, body, variants, label)
        except Exception as exc:  # noqa: BLE001 - a variant must never vanish silently
            log.exception("llm.call_crashed", backend=client.name)
            race.serving().error = LLMError(
                f"internal error while streaming: {type(exc).__name__}: {exc}")
        finally:
            serving = race.serving()
            error = race.error()
            if error is not None:
                self._fail(serving.tally.unfinished(), error)
            for leg in race.legs:
                if leg is not serving:
                    self._record(leg, (), leg.started, label)
            record = self._record(serving, variants, started, label, error=error,
                                  queue_ms=queued_ms)
            self._queue.put_nowait(CallFinished(record))

    def _tally(self, variants: range, label: str) -> UsageTally:
        client = self._client
        return UsageTally(variants, client.card, prompt=self._request.messages,
                          on_gap=_metrics.INTER_TOKEN.labels(client.name, label).observe)

    def _record(self, leg: Leg, variants: range | tuple[()], started: float, label: str, *,
                error: LLMError | None = None, queue_ms: float = 0.0) -> CallRecord:
        """Record one upstream request; `variants` is empty for a hedge's loser."""
        error = error or leg.error
        tally = leg.tally
        record = CallRecord(
            backend=self._client.name,
            model=self._model,
            variants=tuple(variants),
            usage=tally.usage(),
            cost_usd=tally.cost_usd(),
            ttft_ms=tally.ttft_ms(started),
            duration_ms=(time.monotonic() - started) * 1000,
            attempts=leg.attempts[0],
            error=error.code if error else None,
            queue_ms=queue_ms,
        )
        status = "error" if error else "cancelled" if tally.unfinished() else "ok"
        _metrics.observe_call(record, model=label, status=status,
                              usage_source=tally.usage_source)
        self.records.append(record)
        return record

    async def _run_race(self, race: Race, body: dict[str, Any], variants: range,
                        label: str) -> None:
        """Run the primary request and, if its first token is late, one backup."""
        primary = race.primary
        primary.started = time.monotonic()
        primary.task = asyncio.create_task(self._leg(race, primary, body, variants))
        try:
            delay_s = self._client.backend.hedge_delay_s
            if delay_s > 0 and await race.wait_undecided(delay_s):
                await self._hedge(race, body, variants, label)
            await asyncio.gather(*(leg.task for leg in race.legs if leg.task),
                                 return_exceptions=True)
        finally:
            tasks = [leg.task for leg in race.legs if leg.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if race.backup is not None:
                # Here, not in the leg: a task cancelled before its first step runs no
                # finally block.
                if race.backup.release is not None:
                    await asyncio.shield(race.backup.release())
                self._hedge_settled(race, label)

    async def _hedge(self, race: Race, body: dict[str, Any], variants: range,
                     label: str) -> None:
        """Start the backup if a slot is free right away; otherwise count it skipped."""
        client = self._client
        release = await self._spare_slot()
        if release is None:
            _metrics.count_hedge(client.name, label, "skipped")
            log.debug("llm.hedge_skipped", backend=client.name, model=self._model,
                     reason="no free slot", after_s=client.backend.hedge_delay_s)
            return
        backup = race.add("backup", self._tally(variants, label))
        backup.release = release
        # One try only: a backup that fails leaves the primary to carry on.
        single = msgspec.structs.replace(client._retries, attempts=1)
        backup.task = asyncio.create_task(
            self._leg(race, backup, body, variants, retries=single))
        _metrics.count_hedge(client.name, label, "started")

    def _hedge_settled(self, race: Race, label: str) -> None:
        backup = race.backup
        assert backup is not None
        won = race.winner is backup
        _metrics.count_hedge(self._client.name, label, "won" if won else "lost")
        primary = race.primary
        log.info("llm.hedged", backend=self._client.name, model=self._model,
                 outcome="won" if won else "lost",
                 after_s=self._client.backend.hedge_delay_s,
                 primary_ttft_ms=_rounded(primary.tally.ttft_ms(primary.started)),
                 backup_ttft_ms=_rounded(backup.tally.ttft_ms(backup.started)),
                 primary_error=primary.error.code if primary.error else None,
                 backup_error=backup.error.code if backup.error else None)

    async def _spare_slot(self) -> Release | None:
        """A concurrency slot taken without waiting, never ahead of a queued call: the
        process's and, when a batch lends one, the shared one; None if either is full."""
        name = self._client.name
        slots = self._client._slots
        if slots.locked():
            return None
        await slots.acquire()  # free and nobody queued: returns at once
        shared = shared_slot()
        give_back: Release | None = None
        if shared is not None:
            try:
                give_back = await shared(name)
            except Exception:  # noqa: BLE001 - a hedge is optional; the call goes on
                log.warning("llm.hedge_slot_failed", backend=name, exc_info=True)
            except BaseException:  # cancelled while asking: give the slot back first
                slots.release()
                raise
            if give_back is None:
                slots.release()
                return None
        _metrics.RUNNING.labels(name).inc()

        async def release() -> None:
            _metrics.RUNNING.labels(name).dec()
            slots.release()
            if give_back is not None:
                await give_back()

        return release

    async def _leg(self, race: Race, leg: Leg, body: dict[str, Any], variants: range, *,
                   retries: Retries | None = None) -> None:
        """One request of the call, from opening to its end; its outcome goes on `leg`."""
        client = self._client
        try:
            stream = await client._open(body, leg.attempts, retries=retries)
            leg.tally.opened = True
            leg.error = await self._read(stream, variants, race, leg)
        except LLMError as exc:
            leg.error = exc
        except Exception as exc:  # noqa: BLE001 - a variant must never vanish silently
            log.exception("llm.call_crashed", backend=client.name, leg=leg.role)
            leg.error = LLMError(f"internal error while streaming: {type(exc).__name__}: {exc}")
        finally:
            race.changed.set()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Hold one of the backend's concurrency slots, counted as waiting, then running."""
        name = self._client.name
        with _metrics.WAITING.labels(name).track_inprogress():
            await self._client._slots.acquire()
        try:
            with _metrics.RUNNING.labels(name).track_inprogress():
                yield
        finally:
            self._client._slots.release()

    async def _read(self, stream: openai.AsyncStream, variants: range, race: Race,
                    leg: Leg) -> LLMError | None:
        """Feed every chunk to the leg's tally; once the leg has claimed the call, pass
        its events on. The error that ended the stream early, if any."""
        offset = variants.start
        try:
            async with stream:
                async for chunk in stream:
                    events = list(leg.tally.feed(chunk, offset))
                    if events and race.winner is not leg and not race.claim(leg):
                        return None  # the other request delivered first
                    for event in events:
                        self._queue.put_nowait(event)
        except _STREAM_ERRORS as exc:
            return from_openai(exc)
        if leg.tally.unfinished():
            return StreamBroken("the stream ended before a finish_reason")
        return None

    def _fail(self, variants: range | list[int], error: LLMError) -> None:
        for variant in variants:
            self._queue.put_nowait(VariantFailed(variant, error))


def _rounded(ms: float | None) -> float | None:
    return round(ms, 1) if ms is not None else None


__all__ = ["LLMClient", "TextDelta", "VariantFinished", "VariantStream"]
