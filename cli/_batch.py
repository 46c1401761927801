"""`autoposter batch` and `autoposter worker`."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli._common import CliError, run_service, settings_or_exit
from config import Settings
from posting import (
    BatchQueue,
    Batches,
    BatchView,
    DatabaseUnavailable,
    LocalLimiter,
    Plan,
    PostingService,
    PostRequest,
    QueueUnavailable,
    expand,
    longest_first,
    run_in_process,
)
from posting._queue import connect

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

@click.command()
@click.option("--stocks", default="", help="Comma-separated codes or names.")
@click.option("--kols", default="", help="Comma-separated KOL serials.")
@click.option("--type", "posting_type", default="analysis", show_default=True)
@click.option("--max-words", type=int, default=200, show_default=True)
@click.option("--variants", type=int, default=5, show_default=True)
@click.option("--assignment", default="one_kol_per_stock", show_default=True,
              type=click.Choice(["one_kol_per_stock", "same_kol", "random_pool"]))
@click.option("--seed", type=int, help="Seed for random_pool.")
@click.option("--backend", help="A configured backend for every item.")
@click.option("--file", "items_file", type=click.Path(exists=True, dir_okay=False),
              help="CSV of items under a header row: "
                   "stock,kol[,posting_type,max_words,variants].")
@click.option("--wait", is_flag=True, help="Show progress and a summary at the end.")
def batch(stocks: str, kols: str, posting_type: str, max_words: int, variants: int,
          assignment: str, seed: int | None, backend: str | None, items_file: str | None,
          wait: bool) -> None:
    """Generate many posts: on arq workers when REDIS_URL is set, else in this process."""
    try:
        kol_serials = [int(k) for k in kols.split(",") if k.strip()]
    except ValueError:
        raise CliError(f"kols: expected serials like 208,209, got {kols!r}", 2) from None
    plan = Plan(stocks=[s.strip() for s in stocks.split(",") if s.strip()], kols=kol_serials,
                posting_type=posting_type, max_words=max_words, variants=variants,
                assignment=assignment, seed=seed, backend=backend)  # type: ignore[arg-type]
    requests = _read_items(Path(items_file)) if items_file else None

    async def go(service: PostingService) -> BatchView:
        return await _run_batch(service, plan, requests, wait=wait)

    view = run_service(go)
    if wait:
        _summary(view)

async def _run_batch(service: PostingService, plan: Plan, requests: list[PostRequest] | None,
                     *, wait: bool) -> BatchView:
    settings = service.settings
    redis = await connect(settings, retries=0) if settings.redis_url else None
    queue = BatchQueue(redis) if redis is not None else None
    batches = Batches(pool=service.pool, pipeline=service.pipeline, settings=settings,
                      limiter=LocalLimiter(settings.batches.local_concurrency),
                      publish=queue.publish if queue else _quiet)
    try:
        items = requests if requests is not None else expand(plan)
        spec = {"plan": msgspec.to_builtins(plan)} if requests is None else {"file": True}
        view = await batches.create(items, spec=spec, actor="cli")
        batch_id = uuid.UUID(view.batch_id)
        click.echo(view.batch_id)
        if queue is not None:
            await queue.enqueue(batch_id, longest_first(items))
            if not wait:
                return view
            return await _follow(batches, batch_id, view.total)
        runner = run_in_process(batches, batch_id, concurrency=settings.batches.local_concurrency)
        if wait:
            return await _follow(batches, batch_id, view.total, runner=runner)
        await runner
        return await batches.view(batch_id)
    finally:
        if redis is not None:
            await redis.aclose()

async def _quiet(batch_id: uuid.UUID, kind: str, data: dict[str, Any]) -> None:
    return None

async def _follow(batches: Batches, batch_id: uuid.UUID, total: int,
                  runner: Any = None) -> BatchView:
    """A progress bar until every item has finished (read from the database)."""
    task = asyncio.ensure_future(runner) if runner is not None else None
    columns = (TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=False) as progress:
        bar = progress.add_task("batch", total=total, detail="")
        while True:
            view = await batches.view(batch_id)
            c = view.counts
            progress.update(bar, completed=c.done + c.failed + c.cancelled,
                            detail=f"done {c.done} · failed {c.failed} · running {c.running}")
            if view.finished_at is not None:
                break
            if task is not None and task.done():
                task.result()
            await asyncio.sleep(0.5)
    if task is not None:
        await task
    return await batches.view(batch_id)

def _summary(view: BatchView) -> None:
    table = Table(title=f"batch {view.batch_id} · {view.status}")
    for column in ("done", "failed", "cancelled", "wall time", "tokens", "cost (USD)"):
        table.add_column(column, justify="right")
    c = view.counts
    table.add_row(str(c.done), str(c.failed), str(c.cancelled), f"{view.elapsed_s:.1f} s",
                  f"{view.prompt_tokens + view.completion_tokens:,}", f"{view.cost_usd:.4f}")
    _out.print(table)

_HEADER = "stock,kol[,posting_type,max_words,variants]"


def _read_items(path: Path) -> list[PostRequest]:
    """The items of a CSV file with a header row; Excel's UTF-8 BOM is allowed."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CliError(f"file: {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                       "save it as CSV UTF-8", 2) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if not {"stock", "kol"} <= set(header):
        raise CliError(f"file: the first line must be a header: {_HEADER}", 2)
    reader.fieldnames = header
    return [_item(line, row) for line, row in enumerate(reader, start=2)]


def _item(line: int, row: dict[str, str | None]) -> PostRequest:
    try:
        return PostRequest(stock=row["stock"] or "", kol=int(row["kol"] or ""),
                           posting_type=row.get("posting_type") or "analysis",
                           max_words=int(row.get("max_words") or 200),
                           variants=int(row.get("variants") or 5))
    except ValueError as exc:
        raise CliError(f"file: line {line}: {exc}", 2) from None

@click.command()
def worker() -> None:
    """Run an arq worker for batch items (needs REDIS_URL)."""
    from arq import run_worker

    from workers import WorkerSettings, worker_overrides

    settings = settings_or_exit()
    if not settings.redis_url:
        raise CliError("REDIS_URL: a worker needs Redis, e.g. redis://127.0.0.1:6379")
    try:
        # arq would retry a missing Redis and then raise; say at once what is wrong.
        asyncio.run(_ping(settings))
        run_worker(WorkerSettings, **worker_overrides(settings))  # type: ignore[arg-type]
    except (DatabaseUnavailable, QueueUnavailable) as exc:
        raise CliError(str(exc)) from None


async def _ping(settings: Settings) -> None:
    await (await connect(settings, retries=0)).aclose()

__all__ = ["batch", "worker"]
