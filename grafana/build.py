"""The Grafana dashboards, built with grafana-foundation-sdk and written as JSON.

    python grafana/build.py          # write grafana/dashboards/*.json
    python grafana/build.py --check  # exit 1 if the JSON on disk is not what this builds

The JSON is committed so that Grafana's file provisioning can load it without Python.
Queries use Grafana's `$__rate_interval`; everything else is plain PromQL.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common, dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueGraphMode
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="autoposter-prometheus")
RATE = "[$__rate_interval]"

Query = tuple[str, str]  # (PromQL, legend)


def _rate(selector: str) -> str:
    return f"rate({selector}{RATE})"


def _quantiles(metric: str, by: str, qs: tuple[float, ...], where: str = "") -> list[Query]:
    """histogram_quantile of a `_bucket` series, one query per quantile."""
    legend = " ".join("{{" + label + "}}" for label in by.split(", ") if label != "le")
    return [
        (f"histogram_quantile({q}, sum by ({by}) ({_rate(metric + '_bucket' + where)}))",
         f"p{round(q * 100)} {legend}".strip())
        for q in qs
    ]


def _mean(metric: str, by: str, where: str = "") -> str:
    return (f"sum by ({by}) ({_rate(metric + '_sum' + where)})"
            f" / sum by ({by}) ({_rate(metric + '_count' + where)})")


class Layout:
    """Numbers panels and wraps them onto a 24-column grid, row by row."""

    def __init__(self, title: str, uid: str, description: str) -> None:
        self.board = (
            dashboard.Dashboard(title).uid(uid).description(description)
            .tags(["autoposter"]).refresh("30s").time("now-1h", "now")
            .timezone("browser").tooltip(DashboardCursorSync.CROSSHAIR).readonly()
        )
        self._next_id = 1

    def row(self, title: str) -> Layout:
        self.board.with_row(dashboard.Row(title).id(self._take_id()))
        return self

    def stat(self, title: str, query: Query, *, unit: str, width: int = 6) -> Layout:
        panel = stat.Panel().graph_mode(BigValueGraphMode.AREA).reduce_options(
            common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
        )
        return self._add(panel, title, [query], unit=unit, width=width, height=4)

    def series(self, title: str, queries: list[Query], *, unit: str, width: int = 12,
               description: str = "") -> Layout:
        panel = timeseries.Panel().line_width(1).fill_opacity(10)
        if description:
            panel.description(description)
        return self._add(panel, title, queries, unit=unit, width=width, height=8)

    def _add(self, panel: stat.Panel | timeseries.Panel, title: str, queries: list[Query],
             *, unit: str, width: int, height: int) -> Layout:
        panel.id(self._take_id()).title(title).datasource(DATASOURCE).unit(unit)
        panel.span(width).height(height)
        for index, (expr, legend) in enumerate(queries):
            panel.with_target(
                prometheus.Dataquery().expr(expr).legend_format(legend or "__auto")
                .ref_id(chr(ord("A") + index)).datasource(DATASOURCE).range()
            )
        self.board.with_panel(panel)
        return self

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def overview() -> Layout:
    posts, cost = "autoposter_posts_total", "autoposter_cost_usd_total"
    stages = "autoposter_stage_duration_seconds"
    board = Layout("Forum AutoPoster: overview", "autoposter-overview",
                   "Posts, latency by stage, tokens, dollars and errors.")
    board.row("Throughput, cost and errors")
    board.stat("Posts per minute", (f"sum({_rate(posts)}) * 60", ""), unit="short")
    board.stat("Cost per hour", (f"sum({_rate(cost)}) * 3600", ""), unit="currencyUSD")
    board.stat("Cost per post", (f"sum({_rate(cost)}) / sum({_rate(posts)})", ""),
               unit="currencyUSD")
    board.stat("Upstream error rate", (
        f"sum({_rate('autoposter_llm_errors_total')})"
        f" / sum({_rate('autoposter_llm_requests_total')})", ""), unit="percentunit")
    board.series("Posts per minute by type and status", [(
        f"sum by (posting_type, status) ({_rate(posts)}) * 60", "{{posting_type}} {{status}}",
    )], unit="short")
    not_draft = _rate(posts + '{status!="draft"}')
    board.series("Failed and cancelled posts per minute by reason", [(
        f"sum by (status, reason) ({not_draft}) * 60",
        "{{status}} {{reason}}",
    )], unit="short")
    board.row("Latency")
    board.series("End to end", _quantiles(stages, "le", (0.5, 0.95, 0.99), '{stage="total"}'),
                 unit="s")
    board.series("Stage breakdown, mean", [(
        _mean(stages, "stage", '{stage!="total"}'), "{{stage}}",
    )], unit="s", description="Mean seconds per post in each stage.")
    board.series("Stage p95", _quantiles(stages, "le, stage", (0.95,), '{stage!="total"}'),
                 unit="s")
    board.series("Time to first token", _quantiles(
        "autoposter_llm_time_to_first_token_seconds", "le, backend, model", (0.5, 0.95),
    ), unit="s")
    board.row("Tokens and dollars")
    board.series("Tokens per second", [
        (f"sum by (backend, model) ({_rate('autoposter_completion_tokens_total')})",
         "completion {{backend}} {{model}}"),
        (f"sum by (backend, model) ({_rate('autoposter_prompt_tokens_total')})",
         "prompt {{backend}} {{model}}"),
    ], unit="short")
    board.series("Cost per hour by backend and model", [(
        f"sum by (backend, model, status) ({_rate(cost)}) * 3600",
        "{{backend}} {{model}} ({{status}})",
    )], unit="currencyUSD", description="status=estimated: the backend reported no usage.")
    by_kol = "sum by (kol) ({}) * 3600"
    board.series("Cost per hour by KOL", [(by_kol.format(_rate(cost)), "KOL {{kol}}")],
                 unit="currencyUSD")
    board.series("Posts per hour by KOL", [(by_kol.format(_rate(posts)), "KOL {{kol}}")],
                 unit="short")
    return _quality(_server(board))


def _quality(board: Layout) -> Layout:
    board.row("Variants and upstream errors")
    board.series("Variants per minute by result", [(
        f"sum by (status) ({_rate('autoposter_variants_total')}) * 60", "{{status}}",
    )], unit="short")
    board.series("Checks per minute by result", [(
        f"sum by (reason, status) ({_rate('autoposter_variant_checks_total')}) * 60",
        "{{reason}} {{status}}",
    )], unit="short")
    board.series("Length ratio (characters / max_words)", _quantiles(
        "autoposter_variant_length_ratio", "le", (0.1, 0.5, 0.9),
    ), unit="percentunit")
    board.series("Truncations per minute", [(
        f"sum by (backend, model) ({_rate('autoposter_variant_truncations_total')}) * 60",
        "{{backend}} {{model}}",
    )], unit="short")
    board.series("Upstream errors per second by reason", [(
        f"sum by (backend, reason) ({_rate('autoposter_llm_errors_total')})",
        "{{backend}} {{reason}}",
    )], unit="reqps")
    board.series("Retries and fallbacks per second", [
        (f"sum by (backend, reason) ({_rate('autoposter_llm_retries_total')})",
         "retry {{backend}} {{reason}}"),
        (f"sum by (backend, reason) ({_rate('autoposter_backend_fallbacks_total')})",
         "fallback from {{backend}} {{reason}}"),
        (f"sum by (backend, reason) ({_rate('autoposter_llm_usage_fallbacks_total')})",
         "usage {{backend}} {{reason}}"),
    ], unit="reqps")
    return board


def _server(board: Layout) -> Layout:
    board.row("Server and database")
    board.series("Open SSE streams", [("sum(autoposter_sse_active_streams)", "streams")],
                 unit="short", width=8)
    board.series("Database connections", [
        ("sum(autoposter_db_pool_connections)", "open"),
        ("sum(autoposter_db_pool_idle_connections)", "idle"),
        ("sum(autoposter_db_pool_max_connections)", "max"),
        ("sum(autoposter_db_pool_waiting_requests)", "waiting requests"),
    ], unit="short", width=8)
    board.series("Database connection wait, mean", [(
        f"sum({_rate('autoposter_db_pool_wait_seconds_total')})"
        f" / sum({_rate('autoposter_db_pool_requests_total')})", "wait",
    )], unit="s", width=8)
    return board


def batches() -> Layout:
    board = Layout("Forum AutoPoster: batches and workers", "autoposter-batches",
                   "Batch items, the queue and the workers running it.")
    board.row("Batches")
    board.series("Batch items per minute by state", [(
        f"sum by (status) ({_rate('autoposter_batch_items_total')}) * 60", "{{status}}",
    )], unit="short")
    board.series("Queue depth and jobs in progress", [
        ("max(autoposter_queue_jobs)", "queued"),
        ("sum(autoposter_jobs_in_progress)", "in progress"),
    ], unit="short")
    board.row("Workers")
    board.series("Job queue wait", _quantiles(
        "autoposter_job_queue_wait_seconds", "le", (0.5, 0.95),
    ), unit="s")
    board.series("Workers up", [('sum(up{job="autoposter-worker"})', "workers")],
                 unit="short", width=6)
    board.series("Posts per minute by scrape job", [(
        f"sum by (job) ({_rate('autoposter_posts_total')}) * 60", "{{job}}",
    )], unit="short", width=6)
    return board


def backends() -> Layout:
    board = Layout("Forum AutoPoster: backends", "autoposter-backends",
                   "Our figures per backend beside vLLM's own, when a vLLM is scraped.")
    board.row("As the service sees each backend")
    board.series("Time to first token (ours)", _quantiles(
        "autoposter_llm_time_to_first_token_seconds", "le, backend, model", (0.5, 0.95),
    ), unit="s")
    board.series("Inter-token latency (ours)", _quantiles(
        "autoposter_llm_inter_token_latency_seconds", "le, backend, model", (0.5, 0.95),
    ), unit="s")
    board.series("Upstream requests running and waiting (ours)", [
        ("sum by (backend) (autoposter_llm_running_requests)", "running {{backend}}"),
        ("sum by (backend) (autoposter_llm_waiting_requests)", "waiting {{backend}}"),
    ], unit="short")
    board.series("Upstream requests per second by status (ours)", [(
        f"sum by (backend, status) ({_rate('autoposter_llm_requests_total')})",
        "{{backend}} {{status}}",
    )], unit="reqps")
    board.series("Prompt tokens served from cache (ours)", [(
        f"sum by (backend) ({_rate('autoposter_cached_tokens_total')})"
        f" / sum by (backend) ({_rate('autoposter_prompt_tokens_total')})", "{{backend}}",
    )], unit="percentunit", width=24)
    return _vllm(board)


def _vllm(board: Layout) -> Layout:
    itl = (f"{_rate('vllm:inter_token_latency_seconds_bucket')}"
           f" or {_rate('vllm:time_per_output_token_seconds_bucket')}")
    board.row("vLLM's own metrics")
    board.series("Time to first token (vLLM)", _quantiles(
        "vllm:time_to_first_token_seconds", "le, model_name", (0.5, 0.95),
    ), unit="s")
    board.series("Inter-token latency (vLLM)", [
        (f"histogram_quantile({q}, sum by (le, model_name) ({itl}))", f"p{round(q * 100)}"
         " {{model_name}}") for q in (0.5, 0.95)
    ], unit="s")
    board.series("Requests running and waiting (vLLM)", [
        ("sum by (model_name) (vllm:num_requests_running)", "running {{model_name}}"),
        ("sum by (model_name) (vllm:num_requests_waiting)", "waiting {{model_name}}"),
    ], unit="short")
    board.series("KV-cache use (vLLM)", [(
        "max by (model_name) (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc)",
        "{{model_name}}",
    )], unit="percentunit")
    board.series("Prefix-cache hit ratio (vLLM)", [(
        f"sum by (model_name) ({_rate('vllm:prefix_cache_hits_total')})"
        f" / sum by (model_name) ({_rate('vllm:prefix_cache_queries_total')})",
        "{{model_name}}",
    )], unit="percentunit", width=24)
    return board


BOARDS: dict[str, Callable[[], Layout]] = {
    "overview": overview, "batches": batches, "backends": backends,
}


def render() -> dict[str, str]:
    """File name → JSON text, for every dashboard."""
    return {
        f"{name}.json": json.dumps(make().board.build(), cls=JSONEncoder, indent=2,
                                   ensure_ascii=False) + "\n"
        for name, make in BOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python grafana/build.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
