"""`autoposter`: the command line, a thin shell over the posting domain.

Every failure the user can fix ends as one line on stderr and a non-zero exit, never a
traceback: bad input (exit 2), settings or services (exit 1).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, get_args

import click
import msgspec
import structlog

from bench import bench
from cli._batch import batch, worker
from cli._common import CliError, Terminated, run_service, settings_or_exit
from cli._render import LiveVariants, print_kols, print_post, print_posts, print_stocks
from config import Settings, configure_logging
from posting import (
    DatabaseUnavailable,
    Facts,
    PostingService,
    PostRequest,
    PostStatus,
    QueueUnavailable,
    StockDirectory,
    UnknownStock,
    check_connection,
)
from posting._queue import connect

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Write structured logs to stderr.")
def cli(verbose: bool) -> None:
    """Write stock-forum posts in the voices of KOL personas."""
    configure_logging("INFO" if verbose else "WARNING")


@cli.command()
@click.option("--stock", required=True, help="Code or name: 2330, ２３３０, 台積電.")
@click.option("--kol", required=True, type=int, help="The persona's serial, e.g. 208.")
@click.option("--type", "posting_type", required=True,
              help="interaction, analysis or personalized.")
@click.option("--max-words", type=int, default=200, show_default=True,
              help="Maximum length, counted in characters for Chinese (20..2000).")
@click.option("--variants", type=int, default=5, show_default=True, help="1..8")
@click.option("--backend", help="A configured backend: local, openai, vllm, …")
@click.option("--model", help="Override the backend's model.")
@click.option("--speed", is_flag=True,
              help="Speed mode: the configured speed backend (speed_backend, normally vLLM).")
@click.option("--fact", "facts", multiple=True,
              help="A fact for the prompt; price=, change=, volume=, headline= or free text.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def generate(stock: str, kol: int, posting_type: str, max_words: int, variants: int,
             backend: str | None, model: str | None, speed: bool, facts: tuple[str, ...],
             as_json: bool) -> None:
    """Generate a post with variants, watch it stream, store it as a draft."""
    request = PostRequest(stock=stock, kol=kol, posting_type=posting_type, max_words=max_words,
                          variants=variants, backend=backend, model=model, speed_mode=speed,
                          facts=_parse_facts(facts), actor="cli")

    async def go(service: PostingService) -> Any:
        prepared = await service.pipeline.prepare(request)
        live = LiveVariants(prepared.chat.n, enabled=not as_json)
        with live:
            return await service.pipeline.generate(prepared, emit=live.on_event)

    post = run_service(go)
    if as_json:
        click.echo(_json_summary(post))
    else:
        print_post(post)
    if post.status != "draft":
        raise CliError(f"post {post.post_id} {post.status}: {post.failure_reason}")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def kols(as_json: bool) -> None:
    """List the KOL personas."""
    personas = run_service(lambda service: service.store.list_kols())
    if as_json:
        click.echo(msgspec.json.encode(personas).decode())
    else:
        print_kols(personas)


@cli.command()
@click.argument("query")
@click.option("--limit", type=int, default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def stocks(query: str, limit: int, as_json: bool) -> None:
    """Find TWSE and TPEx listings by code or name."""
    directory = StockDirectory.load()
    found = directory.search(query, limit=limit)
    if not found:
        try:
            directory.resolve(query)
        except UnknownStock as exc:
            raise CliError(str(exc), exit_code=2) from None
    if as_json:
        click.echo(msgspec.json.encode(found).decode())
    else:
        print_stocks(found)


@cli.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(get_args(PostStatus)),
              help="Only posts in this status.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def posts(ctx: click.Context, status: str | None, limit: int, as_json: bool) -> None:
    """List stored posts, newest first; `posts show ID` shows one."""
    if ctx.invoked_subcommand is not None:
        return
    rows = run_service(lambda service: service.store.list_posts(status=status, limit=limit))
    if as_json:
        click.echo(msgspec.json.encode(rows).decode())
    else:
        print_posts(rows)


@posts.command("show")
@click.argument("post_id")
@click.option("--json", "as_json", is_flag=True)
def posts_show(post_id: str, as_json: bool) -> None:
    """Show one post with its alternatives, checks, usage, cost and timings."""
    import uuid

    try:
        key = uuid.UUID(post_id)
    except ValueError:
        raise CliError(f"post_id: {post_id!r} is not a UUID", exit_code=2) from None
    post = run_service(lambda service: service.store.get_post(key))
    if post is None:
        raise CliError(f"post_id: no post {post_id}", exit_code=2)
    if as_json:
        click.echo(_json_summary(post))
    else:
        print_post(post)


@cli.command()
@click.option("--host", help="Interface to listen on (default: the server.host setting).")
@click.option("--port", type=int, help="Port (default: the server.port setting).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes (default: the server.workers setting).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP server: SSE generation, review API, health checks."""
    import uvicorn

    settings = settings_or_exit()
    _check_services(settings)
    processes = workers or settings.server.workers
    if processes > 1:
        _share_metrics(settings.data_path() / "prometheus-multiproc")
    uvicorn.run(
        "server:serve_app",
        factory=True,
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
        workers=processes,
        log_level=settings.log_level.lower(),
        log_config=None,  # our JSON handler on the root logger formats uvicorn too
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s) + 5,
    )


def _check_services(settings: Settings) -> None:
    """Reach DATABASE_URL and REDIS_URL once before uvicorn starts, so that a wrong URL is
    one structured log line and exit 1, not a traceback from every worker's lifespan."""

    async def check() -> None:
        if settings.database_url:
            await check_connection(settings.database_url)
        if settings.redis_url:
            await (await connect(settings, retries=0)).aclose()

    try:
        asyncio.run(check())
    except (DatabaseUnavailable, QueueUnavailable) as exc:
        structlog.get_logger("cli.serve").error("server.start_failed", error=str(exc))
        raise SystemExit(1) from None


def _share_metrics(default_dir: Path) -> None:
    """Put the server processes in prometheus-client's multiprocess mode.

    This must happen before uvicorn spawns them: each reads the variable when it
    imports prometheus_client. A directory we own is emptied first; one named by the
    operator is used as it is.
    """
    from posting.metrics import ENV, fresh_multiprocess_dir

    if os.environ.get(ENV):
        Path(os.environ[ENV]).mkdir(parents=True, exist_ok=True)
        return
    os.environ[ENV] = str(fresh_multiprocess_dir(default_dir))


@cli.command(add_help_option=False, context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def simulate(args: tuple[str, ...]) -> None:
    """Serve a simulated OpenAI-compatible backend (`simulate --help` for its options)."""
    from inference.simulator import main as simulate_main

    raise SystemExit(simulate_main(list(args)))


@cli.group()
def keys() -> None:
    """API keys for the server."""


@keys.command("create")
@click.option("--name", required=True, help="Who holds the key; recorded on every change.")
def keys_create(name: str) -> None:
    """Create a key and print it once; only its SHA-256 is stored."""
    from server import KeyStore

    click.echo(run_service(lambda service: KeyStore(service.pool).create(name)))


@keys.command("list")
def keys_list() -> None:
    """List keys by name (never the keys themselves)."""
    from server import KeyStore

    for name, created, revoked in run_service(lambda service: KeyStore(service.pool).list()):
        click.echo(f"{name}\t{created}\t{'revoked' if revoked else 'active'}")


@keys.command("revoke")
@click.option("--name", required=True)
def keys_revoke(name: str) -> None:
    """Revoke every active key with this name."""
    from server import KeyStore

    count = run_service(lambda service: KeyStore(service.pool).revoke(name))
    click.echo(f"revoked {count} key(s)")


@cli.group()
def db() -> None:
    """Database administration."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (also done automatically at start)."""
    # Opening the service migrates; report where the schema stands now.
    click.echo(f"database schema at version {run_service(lambda s: s.store.schema_version())}")


def _parse_facts(items: tuple[str, ...]) -> Facts:
    facts = Facts()
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        try:
            if sep and key == "price":
                facts.price = float(value)
            elif sep and key in ("change", "change_pct"):
                facts.change_pct = float(value.rstrip("%"))
            elif sep and key == "volume":
                facts.volume = int(value.replace(",", ""))
            elif sep and key == "headline":
                facts.headlines.append(value.strip())
            else:
                facts.notes.append(item.strip())
        except ValueError:
            raise CliError(f"fact: {key} needs a number, got {value!r}", exit_code=2) from None
    return facts


def _json_summary(post: Any) -> str:
    document = {
        "post_id": post.post_id,
        "status": post.status,
        "kol": post.kol,
        "stock": post.stock,
        "posting_type": post.posting_type,
        "backend": post.backend,
        "model": post.model,
        "selected": {"variant": post.selected.variant, "title": post.selected.title,
                     "body": post.selected.body},
        "alternatives": [
            {"variant": a.variant, "title": a.title, "body": a.body, "score": a.score,
             "checks": a.checks, "finish_reason": a.finish_reason, "error": a.error}
            for a in post.alternatives
        ],
        "checks": post.checks,
        "usage": post.usage,
        "cost_usd": post.cost_usd,
        "timings_ms": post.timings_ms,
        "failure_reason": post.failure_reason,
    }
    return msgspec.json.format(msgspec.json.encode(document), indent=2).decode()


cli.add_command(batch)
cli.add_command(worker)
cli.add_command(bench)


def main() -> None:
    """Console entry point: click errors become one line, not a usage dump."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; the post is stored as cancelled", err=True)
        sys.exit(130)
    except Terminated:
        click.echo("terminated; the post is stored as cancelled", err=True)
        sys.exit(143)
