"""Terminal output: the live view of variants being written, and tables afterwards."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from config import Persona
from posting import PostEvent, PostView, Stock, VariantDelta, VariantDone

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


class LiveVariants:
    """Shows every variant as it is written: side-by-side panels on a terminal, a line
    per finished variant otherwise. Writes to stderr so that stdout stays clean."""

    def __init__(self, n: int, *, enabled: bool) -> None:
        self._texts = [""] * n
        self._status = ["writing…"] * n
        self._enabled = enabled
        self._live: Live | None = None
        if enabled and _err.is_terminal:
            self._live = Live(self._render(), console=_err, refresh_per_second=12,
                              transient=True)

    def __enter__(self) -> LiveVariants:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def on_event(self, event: PostEvent) -> None:
        if isinstance(event, VariantDelta):
            self._texts[event.variant] += event.text
            if self._live is None and self._enabled and sum(map(len, self._texts)) == len(event.text):
                _err.print("streaming…")
        elif isinstance(event, VariantDone):
            status = f"error: {event.error}" if event.error else f"score {event.score}"
            self._status[event.variant] = status
            if self._live is None and self._enabled:
                _err.print(f"variant {event.variant + 1} done ({status}): {event.title}")
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        height = max(4, (_err.size.height - 4) // max(len(self._texts), 1) - 2)
        panels = []
        for index, text in enumerate(self._texts):
            tail = "\n".join(text.splitlines()[-height:]) if text else ""
            panels.append(Panel(Text(tail), title=f"variant {index + 1}",
                                subtitle=self._status[index], height=height + 2))
        return Group(*panels)


def print_post(post: PostView) -> None:
    _out.rule(f"{post.stock.code} {post.stock.name} · {post.kol.nickname} ({post.kol.serial})"
              f" · {post.posting_type} · {post.status}")
    if post.selected.variant is not None:
        _out.print(Text(post.selected.title, style="bold"))
        _out.print(post.selected.body)
    elif post.failure_reason:
        _out.print(f"[red]{post.failure_reason}[/red]")
    table = Table(title="alternatives", show_lines=False)
    for column in ("#", "score", "checks failed", "title"):
        table.add_column(column)
    for alt in post.alternatives:
        failed = ", ".join(c.name for c in alt.checks if not c.passed) or "—"
        table.add_row(str(alt.variant + 1), _score(alt.score), alt.error or failed, alt.title)
    _out.print(table)
    checks = ", ".join(f"{c.name} {'✓' if c.passed else '✗'} ({c.detail})" for c in post.checks)
    if checks:
        _out.print(f"checks: {checks}")
    timings = ", ".join(f"{name} {ms:.0f} ms" for name, ms in post.timings_ms.items())
    _out.print(f"timings: {timings}")
    usage = post.usage
    note = " (estimated)" if usage.estimated else ""
    _out.print(f"tokens: prompt {usage.prompt_tokens}, completion {usage.completion_tokens},"
               f" cached {usage.cached_tokens}{note} · cost ${post.cost_usd:.6f}"
               f" · {post.backend}/{post.model}")
    _out.print(f"post id: {post.post_id}")


def print_kols(personas: list[Persona]) -> None:
    table = Table()
    for column in ("serial", "nickname", "type", "language", "backend"):
        table.add_column(column)
    for p in personas:
        table.add_row(str(p.serial), p.nickname, p.persona_type, p.language, p.backend or "—")
    _out.print(table)


def print_stocks(stocks: list[Stock]) -> None:
    table = Table()
    for column in ("code", "name", "market", "industry"):
        table.add_column(column)
    for s in stocks:
        table.add_row(s.code, s.name, s.market, s.industry)
    _out.print(table)


def print_posts(rows: list[dict[str, Any]]) -> None:
    table = Table()
    for column in ("id", "status", "kol", "stock", "type", "title", "created"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["id"]), r["status"], f"{r['kol_serial']} {r['nickname']}",
                      f"{r['stock_code']} {r['stock_name']}", r["posting_type"],
                      r["title"] or "", r["created_at"].strftime("%Y-%m-%d %H:%M"))
    _out.print(table)


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


__all__ = ["LiveVariants", "print_kols", "print_post", "print_posts", "print_stocks"]
