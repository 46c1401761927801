"""`autoposter bench`: the click command, a thin shell over the runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bench._env import BenchError
from bench._report import render
from bench._runner import BATCH_PROFILES, SCENARIOS, command_line, plan_for, run
from config import SettingsError
from posting import DatabaseUnavailable, InvalidRequest

DEFAULT_OUTPUT = Path("docs/benchmarks.md")
QUICK_OUTPUT = Path("docs/benchmarks-quick.md")


@click.command("bench")
@click.option("--quick", is_flag=True,
              help="Every scenario and ratio, fewer repetitions (about 2-3 minutes).")
@click.option("--scenario", "scenarios", default=",".join(SCENARIOS), show_default=True,
              help="Comma-separated scenarios to run.")
@click.option("--batch-profile", "batch_profiles",
              help=f"Comma-separated simulator profiles for the batch scenario (default:"
                   f" {', '.join(BATCH_PROFILES)}; with --quick, vllm-h200).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Where to write the markdown (default {DEFAULT_OUTPUT}; with --quick,"
                   f" {QUICK_OUTPUT}, so a quick run never replaces a full one).")
def bench(quick: bool, scenarios: str, batch_profiles: str | None,
          output: Path | None) -> None:
    """Measure the old flow against ours on the simulated backend and print the table."""
    names = _names(scenarios)
    try:
        plan = plan_for(quick=quick, scenarios=names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None
    if batch_profiles is not None:
        try:
            plan = plan_for(quick=quick, scenarios=names,
                            batch_profiles=_names(batch_profiles))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--batch-profile") from None
    target = output or (QUICK_OUTPUT if quick else DEFAULT_OUTPUT)

    def progress(line: str) -> None:
        click.echo(f"bench: {line}", err=True)

    try:
        report = asyncio.run(run(plan, command=command_line(), progress=progress))
    except (BenchError, SettingsError, DatabaseUnavailable, InvalidRequest) as exc:
        raise click.ClickException(f"bench: {exc}") from None
    text = render(report)
    click.echo(text)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    click.echo(f"bench: wrote {target}", err=True)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]
