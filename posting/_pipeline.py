"""The posting pipeline: resolve, prompt, stream every variant, check, select, persist.

`prepare` validates and resolves a request and stores nothing, so bad input is turned
away whole. `generate` then owns the post: it is stored as `generating` first, and
whatever happens afterwards (success, every variant failing, the deadline, a
cancellation) ends as a stored post with its reason. Progress goes out through `emit`,
a plain callback, so the CLI, the server and the workers watch the same run.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable

import msgspec
import structlog

from config import POSTING_TYPES, ModelCard, Persona, Settings, model_catalog
from inference import (
    BackendUnavailable,
    Backends,
    CallRecord,
    ChatRequest,
    LLMClient,
    LLMError,
    TextDelta,
    VariantFailed,
    VariantFinished,
    VariantStream,
    max_tokens_for,
)
from inference._health import BACKEND_FAULTS
from posting._checks import Limits, check_variant, score, select
from posting._errors import InvalidRequest, UnknownKol
from posting._metrics import observe_post, observe_unstarted
from posting._models import (
    STAGES,
    PostCreated,
    PostDone,
    PostError,
    PostEvent,
    PostRequest,
    PostSelected,
    PostView,
    StageDone,
    VariantDelta,
    VariantDone,
)
from posting._prompts import build_messages
from posting._stocks import Stock, StockDirectory
from posting._storable import ensure_storable
from posting._store import NewPost, Outcome, Store, VariantRow
from posting._text import normalize, text_length

log = structlog.get_logger("posting.pipeline")

Emit = Callable[[PostEvent], None]


def _ignore(event: PostEvent) -> None:
    pass


class Prepared(msgspec.Struct, kw_only=True):
    """A validated request with everything resolved; nothing is stored yet."""

    request: PostRequest
    stock: Stock
    persona: Persona
    client: LLMClient
    model: str
    card: ModelCard
    chat: ChatRequest
    limits: Limits
    timings_ms: dict[str, float]
    fallbacks: list[str] = []  # backends still to try if this one fails before a token
    fallback_from: str | None = None


class Pipeline:
    def __init__(
        self, *, settings: Settings, store: Store, backends: Backends, stocks: StockDirectory
    ) -> None:
        self._settings = settings
        self._store = store
        self._backends = backends
        self._stocks = stocks

    @property
    def store(self) -> Store:
        return self._store

    async def validate(self, request: PostRequest) -> tuple[Stock, Persona]:
        """Check `request` without calling a backend; raises InvalidRequest.

        Routing is checked too: a request whose backend lacks its configuration (an
        OpenAI key) is refused here, so that a batch never accepts an item that cannot run.
        """
        _check_ranges(request)
        ensure_storable(request, "")
        stock = self._stocks.resolve(request.stock)
        persona = await self._store.get_kol(request.kol)
        if persona is None:
            raise UnknownKol(request.kol, [p.serial for p in await self._store.list_kols()])
        _, name = self._choose(request, persona)
        try:
            self._backends.require_configured(name)
        except BackendUnavailable as exc:
            raise InvalidRequest("backend", str(exc)) from exc
        return stock, persona

    async def prepare(self, request: PostRequest) -> Prepared:
        """Validate and resolve `request`; raises InvalidRequest naming the field."""
        started = time.monotonic()
        stock, persona = await self.validate(request)
        chain, name = self._choose(request, persona)
        wanted = chain[0]
        client, model = await self._route(request, persona, name)
        resolved = time.monotonic()
        prepared = self._build(request, stock, persona, client, model)
        prepared.timings_ms = {"resolve": _ms(started, resolved),
                               "prompt": _ms(resolved, time.monotonic())}
        prepared.fallbacks = chain[chain.index(name) + 1:]
        prepared.fallback_from = wanted if name != wanted else None
        return prepared

    def _build(self, request: PostRequest, stock: Stock, persona: Persona, client: LLMClient,
               model: str) -> Prepared:
        generation = self._settings.generation
        card = model_catalog().card(model)
        limits = Limits(max_words=request.max_words, tolerance=generation.length_tolerance,
                        title_max_chars=generation.title_max_chars)
        messages = build_messages(
            persona=persona, stock=stock, posting_type=request.posting_type,  # type: ignore[arg-type]
            max_words=request.max_words, facts=request.facts,
            title_max_chars=generation.title_max_chars,
        )
        chat = ChatRequest(
            messages=messages,
            n=request.variants,
            max_tokens=max_tokens_for(request.max_words, card, tolerance=limits.tolerance,
                                      title_allowance=generation.title_allowance_tokens),
            temperature=generation.temperature,
            top_p=generation.top_p,
            seed=random.randrange(1 << 30),
        )
        return Prepared(request=request, stock=stock, persona=persona, client=client,
                        model=model, card=card, chat=chat, limits=limits, timings_ms={})

    async def _fallback(self, prepared: Prepared) -> Prepared | None:
        """The next backend in the chain that is up, prepared; None when none is left."""
        for index, name in enumerate(prepared.fallbacks):
            if not self._backends.allows(name):
                continue
            try:
                client, model = await self._route(prepared.request, prepared.persona, name)
            except InvalidRequest:
                continue  # not configured (no key): try the next one
            nxt = self._build(prepared.request, prepared.stock, prepared.persona, client, model)
            nxt.timings_ms = prepared.timings_ms
            nxt.fallbacks = prepared.fallbacks[index + 1:]
            nxt.fallback_from = prepared.fallback_from or prepared.client.name
            return nxt
        return None

    def _choose(self, request: PostRequest, persona: Persona) -> tuple[list[str], str]:
        """The wanted backend and its fallbacks, and the one to use now."""
        wanted = self.backend_name(request, persona)
        chain = [wanted, *self._settings.fallback_chain(wanted)]
        # An open circuit sends the request straight down the fallback chain.
        return chain, next((b for b in chain if self._backends.allows(b)), wanted)

    def backend_name(self, request: PostRequest, persona: Persona) -> str:
        """Request first (a named backend, then speed mode), the KOL's default, the global."""
        speed = self._settings.speed_backend if request.speed_mode else None
        name = request.backend or speed or persona.backend or self._settings.backend
        if name not in self._settings.backends:
            known = ", ".join(sorted(self._settings.backends))
            raise InvalidRequest("backend", f"no backend named {name!r} (configured: {known})")
        return name

    async def _route(self, request: PostRequest, persona: Persona,
                     name: str) -> tuple[LLMClient, str]:
        try:
            client = await self._backends.client(name)
        except BackendUnavailable as exc:
            raise InvalidRequest("backend", str(exc)) from exc
        kol_model = persona.model if persona.backend == name else None
        return client, request.model or kol_model or client.model

    async def generate(
        self,
        prepared: Prepared,
        *,
        emit: Emit = _ignore,
        post_id: uuid.UUID | None = None,
        batch_item: tuple[uuid.UUID, int] | None = None,
    ) -> PostView:
        """Run a prepared request to a stored post; never raises for LLM failures."""
        run = _Run(prepared, emit, post_id or uuid.uuid4())
        started = time.monotonic()
        # The upstream calls start before the post is stored, so that the insert hides
        # behind the backend's time to first token; their events wait in the stream's
        # queue, and nothing is emitted before post.created.
        handle = await run.open()
        try:
            await self._store.create_post(_new_post(run.post_id, prepared, batch_item))
        except BaseException:
            await handle.aclose()
            raise
        emit(PostCreated(str(run.post_id)))
        for name, ms in prepared.timings_ms.items():
            emit(StageDone(name, ms))
        run.timings["persist"] = _ms(started, time.monotonic())
        deadline = time.monotonic() + self._settings.timeouts.request_s
        try:
            await run.stream(self._settings.timeouts.request_s, handle)
            self._backends.record(run.prepared.client.name, [c.error for c in run.calls])
            while run.may_fall_back() and (nxt := await self._fallback(run.prepared)):
                log.warning("post.fallback", post_id=str(run.post_id),
                            backend=run.prepared.client.name, to=nxt.client.name)
                run.restart(nxt)
                await run.stream(max(deadline - time.monotonic(), 0.001))
                self._backends.record(nxt.client.name, [c.error for c in run.calls[-1:]])
        except asyncio.CancelledError:
            run.abandon("cancelled", "cancelled before the post was finished")
            await asyncio.shield(self._finish(run, started))
            raise
        return await asyncio.shield(self._finish(run, started))

    async def run(self, request: PostRequest, *, emit: Emit = _ignore) -> PostView:
        return await self.generate(await self.prepare(request), emit=emit)

    async def store_unstarted(
        self, request: PostRequest, reason: str, *, post_id: uuid.UUID,
        batch_item: tuple[uuid.UUID, int] | None = None,
    ) -> PostView | None:
        """Store an accepted request that could not start (its backend lost its key, say)
        as a `failed` post with `reason`, so that it ends as a stored failure like any
        other. None when the request no longer names a stock and KOL a post can hold."""
        try:
            stock = self._stocks.resolve(request.stock)
        except InvalidRequest:
            return None
        persona = await self._store.get_kol(request.kol)
        if persona is None:
            return None
        speed = self._settings.speed_backend if request.speed_mode else None
        name = request.backend or speed or persona.backend or self._settings.backend
        configured = self._settings.backends.get(name)
        configured_model = configured.model if configured else ""
        kol_model = persona.model if persona.backend == name else None
        post = _stored_post(post_id, request, stock, persona, batch_item, backend=name,
                            model=request.model or kol_model or configured_model)
        await self._store.create_post(post)
        await self._store.finish_post(post_id, Outcome(
            backend=post.backend, model=post.model, fallback_from=None, status="failed",
            selected_variant=None, title=None, body=None, failure_reason=reason,
            timings_ms={}, variants=[], calls=[]))
        observe_unstarted(post, configured_model=configured_model, reason=reason)
        log.info("post.finished", post_id=str(post_id), kol=persona.serial, stock=stock.code,
                 backend=name, status="failed", reason=reason)
        return await self._store.get_post(post_id)

    async def _finish(self, run: _Run, started: float) -> PostView:
        outcome = run.outcome()
        persisting = time.monotonic()
        await self._store.finish_post(run.post_id, outcome)
        outcome.timings_ms["persist"] += _ms(persisting, time.monotonic())
        outcome.timings_ms["total"] = _ms(started, time.monotonic()) + sum(
            run.prepared.timings_ms.values()
        )
        await self._store.merge_timings(
            run.post_id, {k: outcome.timings_ms[k] for k in ("persist", "total")}
        )
        observe_post(run.prepared, outcome)
        view = await self._store.get_post(run.post_id)
        assert view is not None, "a post written a moment ago must be readable"
        if outcome.status in ("failed", "cancelled"):
            run.emit(PostError(outcome.status, outcome.failure_reason or outcome.status))
        run.emit(PostDone(view))
        log.info("post.finished", post_id=str(run.post_id), kol=run.prepared.persona.serial,
                 stock=run.prepared.stock.code, backend=run.prepared.client.name,
                 model=run.prepared.model, status=outcome.status,
                 variants=len(outcome.variants), cost_usd=view.cost_usd,
                 total_ms=round(outcome.timings_ms["total"], 1),
                 reason=outcome.failure_reason)
        return view


class _Variant(msgspec.Struct, kw_only=True):
    parts: list[str] = msgspec.field(default_factory=list)
    done: VariantDone | None = None


class _Run:
    """The state of one generation, fed by the client's events."""

    def __init__(self, prepared: Prepared, emit: Emit, post_id: uuid.UUID) -> None:
        self.prepared = prepared
        self.emit = emit
        self.post_id = post_id
        self.variants = [_Variant() for _ in range(prepared.chat.n)]
        self.codes: dict[int, str | None] = {}
        self.calls: list[CallRecord] = []
        self.timings: dict[str, float] = {"check": 0.0}
        self.failure: tuple[str, str] | None = None
        self.opened_at = time.monotonic()

    async def open(self) -> VariantStream:
        """Start the upstream calls; their events queue up until `stream` reads them."""
        p = self.prepared
        self.opened_at = time.monotonic()
        handle = p.client.stream(p.chat, model=p.model)
        await handle.__aenter__()
        return handle

    async def stream(self, deadline_s: float, handle: VariantStream | None = None) -> None:
        """Read the calls `open` started (or start them now) until every variant ends."""
        if handle is None:
            handle = await self.open()
        started = self.opened_at
        try:
            async with asyncio.timeout(deadline_s):
                async for event in handle.events():
                    self._on(event, started)
        except TimeoutError:
            self.abandon("timeout", f"deadline of {deadline_s:g}s exceeded")
        finally:
            await handle.aclose()
            self.calls += handle.records
            self.timings["generate"] = _ms(started, time.monotonic())

    def _on(self, event: object, started: float) -> None:
        if isinstance(event, TextDelta):
            if "first_token" not in self.timings:
                self.timings["first_token"] = _ms(started, time.monotonic())
            self.variants[event.variant].parts.append(event.text)
            self.emit(VariantDelta(event.variant, event.text))
        elif isinstance(event, VariantFinished):
            self._close(event.variant, event.finish_reason, None)
        elif isinstance(event, VariantFailed):
            self._close(event.variant, None, event.error)

    def _close(self, index: int, finish_reason: str | None, error: LLMError | None) -> None:
        began = time.monotonic()
        p = self.prepared
        draft = normalize("".join(self.variants[index].parts), language=p.persona.language)
        checks = check_variant(draft, finish_reason=finish_reason, stock=p.stock,
                               limits=p.limits)
        usable = error is None and draft.title and draft.body
        value = score(checks, body_len=text_length(draft.body), limits=p.limits) if usable else None
        done = VariantDone(
            variant=index, title=draft.title, body=draft.body, checks=checks, score=value,
            usage=None, finish_reason=finish_reason,
            error=f"{error.code}: {error}" if error else None,
        )
        self.variants[index].done = done
        self.codes[index] = error.code if error else None
        self.timings["check"] += _ms(began, time.monotonic())
        self.emit(done)

    def may_fall_back(self) -> bool:
        """True when every variant failed for the backend's sake before any token."""
        if self.failure is not None or any(v.parts for v in self.variants):
            return False
        return all(self.codes.get(i) in BACKEND_FAULTS for i in range(len(self.variants)))

    def restart(self, prepared: Prepared) -> None:
        """Start over on another backend; the failed calls stay on the bill."""
        self.prepared = prepared
        self.variants = [_Variant() for _ in range(prepared.chat.n)]
        self.codes = {}
        self.emit(StageDone("fallback", self.timings.get("generate", 0.0)))

    def abandon(self, code: str, reason: str) -> None:
        """Close every open variant with `reason`; keep what they had written."""
        self.failure = (code, f"{code}: {reason}")
        for index, variant in enumerate(self.variants):
            if variant.done is None:
                self._close(index, None, _Abandoned(code, reason))

    def outcome(self) -> Outcome:
        began = time.monotonic()
        rows = self._rows()
        chosen = select([row.score for row in rows])
        status, reason = "draft", None
        if self.failure and self.failure[0] == "cancelled":
            status, reason = "cancelled", self.failure[1]
        elif chosen is None:
            status = "failed"
            reason = self.failure[1] if self.failure else _first_error(rows)
        if status == "cancelled" or chosen is None:
            chosen = None
        else:
            self.emit(PostSelected(chosen))
        self.timings["check"] += _ms(began, time.monotonic())
        merged = {**self.prepared.timings_ms, **self.timings}
        timings = {name: merged[name] for name in STAGES if name in merged}
        picked = rows[chosen] if chosen is not None else None
        return Outcome(
            backend=self.prepared.client.name, model=self.prepared.model,
            fallback_from=self.prepared.fallback_from,
            status=status, selected_variant=chosen,
            title=picked.title if picked else None, body=picked.body if picked else None,
            failure_reason=reason, timings_ms={k: round(v, 2) for k, v in timings.items()},
            variants=rows, calls=self.calls,
        )

    def _rows(self) -> list[VariantRow]:
        tokens = _tokens_per_variant(self.calls, [len("".join(v.parts)) for v in self.variants])
        rows = []
        for index, variant in enumerate(self.variants):
            done = variant.done
            assert done is not None, "every variant is closed before the outcome"
            rows.append(VariantRow(
                variant=index, title=done.title, body=done.body, raw_text="".join(variant.parts),
                checks=done.checks, score=done.score, finish_reason=done.finish_reason,
                error=done.error, tokens=tokens[index],
            ))
        return rows


class _Abandoned(LLMError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _check_ranges(request: PostRequest) -> None:
    if request.posting_type not in POSTING_TYPES:
        raise InvalidRequest("posting_type", f"must be one of {', '.join(POSTING_TYPES)},"
                                             f" got {request.posting_type!r}")
    if not 20 <= request.max_words <= 2000:
        raise InvalidRequest("max_words", f"must be between 20 and 2000, got {request.max_words}")
    if not 1 <= request.variants <= 8:
        raise InvalidRequest("variants", f"must be between 1 and 8, got {request.variants}")


def _new_post(
    post_id: uuid.UUID, p: Prepared, batch_item: tuple[uuid.UUID, int] | None
) -> NewPost:
    return _stored_post(post_id, p.request, p.stock, p.persona, batch_item,
                        backend=p.client.name, model=p.model)


def _stored_post(
    post_id: uuid.UUID, request: PostRequest, stock: Stock, persona: Persona,
    batch_item: tuple[uuid.UUID, int] | None, *, backend: str, model: str,
) -> NewPost:
    batch_id, item_no = batch_item or (None, None)
    return NewPost(
        batch_id=batch_id, item_no=item_no,
        id=post_id, kol_serial=persona.serial, stock_code=stock.code,
        stock_name=stock.name, posting_type=request.posting_type,
        max_words=request.max_words, variants_requested=request.variants, backend=backend,
        model=model, facts=msgspec.to_builtins(request.facts), created_by=request.actor,
    )


def _tokens_per_variant(calls: list[CallRecord], chars: list[int]) -> list[int]:
    """Share each call's completion tokens among its variants by the text they wrote."""
    tokens = [0] * len(chars)
    for call in calls:
        total_chars = sum(chars[v] for v in call.variants) or 1
        for v in call.variants:
            tokens[v] = round(call.usage.completion_tokens * chars[v] / total_chars)
    return tokens


def _first_error(rows: list[VariantRow]) -> str:
    for row in rows:
        if row.error:
            return row.error
    return "no variant had both a title and a body"


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 2)


__all__ = ["Emit", "Pipeline", "Prepared"]
