"""Review operations against the real PostgreSQL; posts are written straight to the store.

Each test files its posts under a stock code of its own, so rows other tests leave in
the session's database never show up in its listings.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from config import Persona
from inference import CallRecord, Usage
from posting import (
    Conflict,
    InvalidRequest,
    KolChange,
    NotFound,
    PostChange,
    PostFilters,
    PostingService,
    Review,
    TransitionNotAllowed,
)
from posting._store import NewPost, Outcome, VariantRow

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _code() -> str:
    return f"T{uuid.uuid4().hex[:7]}"


async def _post(service: PostingService, stock: str, *, kol: int = 201, status: str = "draft",
                failed_variants: tuple[int, ...] = (), cost_usd: float = 0.0) -> uuid.UUID:
    post_id = uuid.uuid4()
    await service.store.create_post(NewPost(
        id=post_id, kol_serial=kol, stock_code=stock, stock_name="測試股", max_words=100,
        posting_type="analysis", variants_requested=3, backend="fake", model="m", facts={},
    ))
    variants = [VariantRow(variant=i, title=f"標題{i}", body=f"內文{i}", raw_text="", checks=[],
                           score=1.0, finish_reason="stop", tokens=5,
                           error="upstream failed" if i in failed_variants else None)
                for i in range(3)]
    calls = [CallRecord(backend="fake", model="m", variants=(0, 1, 2), usage=Usage(),
                        cost_usd=cost_usd, ttft_ms=None, duration_ms=1.0, attempts=1)]
    await service.store.finish_post(post_id, Outcome(
        backend="fake", model="Qwen/Qwen2.5-7B-Instruct", fallback_from=None, status=status, selected_variant=0, title="標題0", body="內文0", failure_reason=None,
        timings_ms={}, variants=variants, calls=calls,
    ))
    return post_id


async def _set(service: PostingService, post_id: uuid.UUID, column: str, value: object) -> None:
    assert column in ("created_at", "batch_id", "item_no")
    async with service.pool.connection() as conn:
        await conn.execute(f"UPDATE posts SET {column} = %s WHERE id = %s",  # type: ignore[arg-type]
                           (value, post_id))


def _ids(page_items: list) -> list[str]:
    return [item.post_id for item in page_items]


@pytest.fixture
def review(service: PostingService) -> Review:
    return Review(service.pool)


# Listing


async def test_list_filters_by_stock_newest_first(service: PostingService,
                                                  review: Review) -> None:
    stock = _code()
    older, newer = await _post(service, stock), await _post(service, stock)
    await _set(service, older, "created_at", T0)
    await _set(service, newer, "created_at", T0 + timedelta(minutes=1))
    page = await review.list_posts(PostFilters(stock=stock))
    assert _ids(page.items) == [str(newer), str(older)]
    assert page.next_cursor is None


async def test_list_filters_by_status(service: PostingService, review: Review) -> None:
    stock = _code()
    await _post(service, stock)
    failed = await _post(service, stock, status="failed")
    page = await review.list_posts(PostFilters(stock=stock, status="failed"))
    assert _ids(page.items) == [str(failed)]


async def test_list_filters_by_kol(service: PostingService, review: Review) -> None:
    stock = _code()
    await _post(service, stock, kol=201)
    other = await _post(service, stock, kol=202)
    page = await review.list_posts(PostFilters(stock=stock, kol=202))
    assert _ids(page.items) == [str(other)]
    assert page.items[0].kol.serial == 202 and page.items[0].kol.nickname


async def test_list_filters_by_batch(service: PostingService, review: Review) -> None:
    stock, batch = _code(), uuid.uuid4()
    await _post(service, stock)
    member = await _post(service, stock)
    await _set(service, member, "batch_id", batch)
    await _set(service, member, "item_no", 3)
    page = await review.list_posts(PostFilters(batch=batch))
    assert _ids(page.items) == [str(member)]
    assert (page.items[0].batch_id, page.items[0].item_no) == (str(batch), 3)


async def test_list_filters_by_creation_window(service: PostingService,
                                               review: Review) -> None:
    stock = _code()
    ids = [await _post(service, stock) for _ in range(3)]
    for hours, post_id in enumerate(ids):
        await _set(service, post_id, "created_at", T0 + timedelta(hours=hours))
    window = PostFilters(stock=stock, created_after=T0 + timedelta(hours=1),
                         created_before=T0 + timedelta(hours=2))
    assert _ids((await review.list_posts(window)).items) == [str(ids[1])]


async def test_list_sums_cost_of_calls(service: PostingService, review: Review) -> None:
    stock = _code()
    await _post(service, stock, cost_usd=0.0125)
    page = await review.list_posts(PostFilters(stock=stock))
    assert page.items[0].cost_usd == pytest.approx(0.0125)
    assert page.items[0].title == "標題0"


async def test_list_pages_cover_every_row_once(service: PostingService,
                                               review: Review) -> None:
    stock = _code()
    ids = [await _post(service, stock) for _ in range(7)]
    for index, post_id in enumerate(ids):  # four share one instant: ties break by id
        await _set(service, post_id, "created_at", T0 + timedelta(seconds=min(index, 3)))
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await review.list_posts(PostFilters(stock=stock, limit=3, cursor=cursor))
        seen += _ids(page.items)
        pages += 1
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(str(i) for i in ids) and len(seen) == len(set(seen))


@pytest.mark.parametrize("cursor", ["not-a-cursor", "bm9waXBl", "MjAyNXxub3BlOnV1aWQ"])
async def test_list_rejects_a_bad_cursor(review: Review, cursor: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await review.list_posts(PostFilters(cursor=cursor))
    assert caught.value.field == "cursor"


@pytest.mark.parametrize(("filters", "field"), [(PostFilters(limit=0), "limit"),
                                                (PostFilters(limit=101), "limit"),
                                                (PostFilters(status="done"), "status")])
async def test_list_rejects_bad_filters(review: Review, filters: PostFilters,
                                        field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await review.list_posts(filters)
    assert caught.value.field == field


# Status moves


@pytest.mark.parametrize(("start", "moves"), [
    ("draft", ["approved", "published"]),
    ("draft", ["rejected", "draft", "approved"]),
])
async def test_allowed_transitions_apply(service: PostingService, review: Review,
                                         start: str, moves: list[str]) -> None:
    post_id = await _post(service, _code(), status=start)
    for target in moves:
        view = await review.update_post(post_id, PostChange(status=target), actor="ann")
        assert view.status == target


@pytest.mark.parametrize(("start", "target"), [
    ("draft", "published"), ("approved", "draft"), ("approved", "rejected"),
    ("rejected", "approved"), ("published", "draft"), ("failed", "draft"),
    ("draft", "generating"), ("cancelled", "approved"),
])
async def test_forbidden_transitions_raise(service: PostingService, review: Review,
                                           start: str, target: str) -> None:
    post_id = await _post(service, _code(), status=start)
    with pytest.raises(TransitionNotAllowed) as caught:
        await review.update_post(post_id, PostChange(status=target), actor="ann")  # type: ignore[arg-type]
    assert caught.value.field == "status"
    assert (await review.get_post(post_id)).status == start


# Edits and variants


async def test_select_variant_copies_its_text(service: PostingService, review: Review) -> None:
    post_id = await _post(service, _code())
    view = await review.update_post(post_id, PostChange(selected_variant=2), actor="ann")
    assert (view.selected.variant, view.selected.title, view.selected.body) == (2, "標題2",
                                                                                "內文2")
    assert sorted(v.variant for v in view.alternatives) == [0, 1]


async def test_select_failed_or_unknown_variant_raises(service: PostingService,
                                                       review: Review) -> None:
    post_id = await _post(service, _code(), failed_variants=(1,))
    for variant in (1, 7):
        with pytest.raises(InvalidRequest) as caught:
            await review.update_post(post_id, PostChange(selected_variant=variant), actor="a")
        assert caught.value.field == "selected_variant"


async def test_edit_outside_draft_raises(service: PostingService, review: Review) -> None:
    post_id = await _post(service, _code(), status="approved")
    with pytest.raises(Conflict) as caught:
        await review.update_post(post_id, PostChange(title="新標題"), actor="ann")
    assert caught.value.field == "title"


async def test_edit_with_reopen_is_allowed(service: PostingService, review: Review) -> None:
    post_id = await _post(service, _code(), status="rejected")
    view = await review.update_post(post_id, PostChange(status="draft", body="改寫"),
                                    actor="ann")
    assert (view.status, view.selected.body) == ("draft", "改寫")


async def test_edits_recorded_in_history(service: PostingService, review: Review) -> None:
    post_id = await _post(service, _code())
    before = datetime.now(UTC)
    await review.update_post(post_id, PostChange(title="新標題"), actor="ann")
    await review.update_post(post_id, PostChange(status="approved"), actor="bob")
    await review.update_post(post_id, PostChange(status="approved"), actor="bob")  # no-op
    changes = await review.history(post_id)
    assert [(c.actor, c.action) for c in changes] == [("ann", "edit"), ("bob", "approve")]
    assert (changes[0].changes["title"].old, changes[0].changes["title"].new) == ("標題0",
                                                                                  "新標題")
    assert changes[1].changes["status"].new == "approved"
    assert all(c.created_at >= before for c in changes)


async def test_unknown_post_raises_not_found(review: Review) -> None:
    missing = uuid.uuid4()
    for call in (lambda: review.get_post(missing), lambda: review.history(missing),
                 lambda: review.update_post(missing, PostChange(title="x"), actor="a")):
        with pytest.raises(NotFound) as caught:
            await call()
        assert caught.value.field == "post_id"


async def test_concurrent_status_moves_serialize(service: PostingService,
                                                 review: Review) -> None:
    post_id = await _post(service, _code())
    results = await asyncio.gather(
        review.update_post(post_id, PostChange(status="approved"), actor="ann"),
        review.update_post(post_id, PostChange(status="rejected"), actor="bob"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, TransitionNotAllowed) for r in results) == 1
    assert len(await review.history(post_id)) == 1


async def test_concurrent_edits_chain_in_history(service: PostingService,
                                                 review: Review) -> None:
    post_id = await _post(service, _code())
    await asyncio.gather(*(review.update_post(post_id, PostChange(title=f"版本{i}"), actor="a")
                           for i in range(6)))
    changes = [c.changes["title"] for c in await review.history(post_id)]
    assert len(changes) == 6 and changes[0].old == "標題0"
    assert all(prev.new == this.old for prev, this in zip(changes, changes[1:]))


# KOLs


def _persona(serial: int, **overrides: object) -> Persona:
    fields = {"serial": serial, "nickname": "測試達人", "persona_type": "technical",
              "persona": "看線的人", "style": "短句", "guardrails": ["不報明牌"],
              "skeleton": "開場、分析、結論"}
    return Persona(**fields | overrides)  # type: ignore[arg-type]


def _serial() -> int:
    return 100_000 + uuid.uuid4().int % 1_000_000


async def test_create_kol_stores_and_records(service: PostingService, review: Review) -> None:
    serial = _serial()
    created = await review.create_kol(_persona(serial), actor="ann")
    assert await service.store.get_kol(serial) == created
    [change] = await review.kol_history(serial)
    assert (change.actor, change.action) == ("ann", "create")
    assert change.changes["nickname"].new == "測試達人"


async def test_create_existing_kol_conflicts(review: Review) -> None:
    with pytest.raises(Conflict) as caught:
        await review.create_kol(_persona(201), actor="ann")
    assert caught.value.field == "serial"


async def test_create_kol_checks_persona_type(review: Review) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await review.create_kol(_persona(_serial(), persona_type="astrology"), actor="ann")
    assert caught.value.field == "persona_type"


async def test_update_kol_changes_given_fields(service: PostingService,
                                               review: Review) -> None:
    serial = _serial()
    await review.create_kol(_persona(serial, signature="簽名"), actor="ann")
    change = KolChange(style="長句", signature=None, guardrails=["不喊單", "附風險"])
    updated = await review.update_kol(serial, change, actor="bob")
    assert (updated.style, updated.signature, updated.nickname) == ("長句", None, "測試達人")
    assert await service.store.get_kol(serial) == updated
    last = (await review.kol_history(serial))[-1]
    assert (last.actor, last.action, sorted(last.changes)) == (
        "bob", "update", ["guardrails", "signature", "style"])
    assert last.changes["signature"].old == "簽名"


async def test_update_kol_rejects_bad_persona_type(review: Review) -> None:
    serial = _serial()
    await review.create_kol(_persona(serial), actor="ann")
    with pytest.raises(InvalidRequest) as caught:
        await review.update_kol(serial, KolChange(persona_type="astrology"), actor="bob")
    assert caught.value.field == "persona_type"


async def test_update_unknown_kol_raises_not_found(review: Review) -> None:
    with pytest.raises(NotFound) as caught:
        await review.update_kol(99, KolChange(nickname="x"), actor="bob")
    assert caught.value.field == "serial"
