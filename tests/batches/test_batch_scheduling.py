"""How batch items get going: longest first, polled promptly, and the shared backend
limits lending a hedged request a slot only when one is free now."""

from __future__ import annotations

import pytest

from config import load_settings
from posting import LocalLimiter, PostRequest, RedisLimiter, longest_first
from posting._queue import connect
from workers import worker_overrides

_ONE_SLOT = {"AUTOPOSTER_BACKENDS__SIM__MODEL": "gpt-4o-mini",
             "AUTOPOSTER_BACKENDS__SIM__MAX_CONCURRENCY": "1"}


@pytest.mark.timeout(20)
async def test_redis_spare_lease_only_while_the_limit_has_room(redis_url: str) -> None:
    settings = load_settings({**_ONE_SLOT, "REDIS_URL": redis_url})
    redis = await connect(settings)
    limiter = RedisLimiter(redis, settings)
    try:
        async with limiter.slot("sim", tokens=100):
            assert await limiter.spare("sim") is None
        release = await limiter.spare("sim")
        assert release is not None
        assert await limiter.spare("sim") is None
        await release()
        assert await limiter.spare("sim") is not None
    finally:
        await redis.aclose()


async def test_local_spare_slot_only_while_nobody_waits() -> None:
    limiter = LocalLimiter(1)

    async with limiter.slot("sim", tokens=100):
        assert await limiter.spare("sim") is None
    release = await limiter.spare("sim")

    assert release is not None and await limiter.spare("sim") is None
    await release()
    assert await limiter.spare("sim") is not None


def test_workers_poll_for_jobs_every_poll_delay() -> None:
    assert worker_overrides(load_settings({}))["poll_delay"] == 0.05
    tuned = load_settings({"AUTOPOSTER_BATCHES__POLL_DELAY_S": "0.2"})
    assert worker_overrides(tuned)["poll_delay"] == 0.2


def test_items_start_longest_first_and_ties_keep_their_order() -> None:
    lengths = [100, 250, 200, 100, 250]
    requests = [PostRequest(stock="2330", kol=208, posting_type="analysis", max_words=n)
                for n in lengths]

    assert longest_first(requests) == [1, 4, 2, 0, 3]
