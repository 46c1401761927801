"""`autoposter batch` as a user runs it: in process without Redis, on workers with it."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from cli._batch import _read_items
from cli._common import CliError
from config import load_settings
from tests.batches.batch_support import AUTOPOSTER, Workers, api_client, items, posts
from tests.server.conftest import serving

ISSUE_LINE = ["batch", "--stocks", "2330,2454,2317,2303,2412", "--kols", "208,209",
              "--type", "interaction", "--max-words", "100", "--wait"]


async def _batch_cli(env: dict[str, str], args: list[str]) -> tuple[str, str]:
    """Run `autoposter <args>`; (batch id from the first line of stdout, whole stdout)."""
    full = {**os.environ, **env}
    if "REDIS_URL" not in env:
        full.pop("REDIS_URL", None)
    result = await asyncio.to_thread(subprocess.run, [AUTOPOSTER, *args], env=full,
                                     capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()[0].strip(), result.stdout


@pytest.mark.timeout(120)
async def test_batch_without_redis_runs_in_process(
    batch_env: dict[str, str], database_url: str
) -> None:
    env = {k: v for k, v in batch_env.items() if k != "REDIS_URL"}
    batch_id, out = await _batch_cli(env, ["batch", "--stocks", "2330,2454", "--kols", "208",
                                           "--type", "interaction", "--max-words", "100",
                                           "--wait"])
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (0, "draft"), (1, "draft")]
    assert [(n, state, worker) for n, state, _, worker, _ in items(database_url, batch_id)] == [
        (0, "done", "local"), (1, "done", "local")]
    assert f"batch {batch_id} · done" in out


@pytest.mark.timeout(120)
async def test_issue_command_on_server_and_two_workers_stores_five_posts(
    batch_env: dict[str, str], workers: Workers, database_url: str
) -> None:
    workers.start(batch_env, count=2)
    await workers.ready()
    async with serving(load_settings(batch_env)) as url, api_client(url) as client:
        batch_id, out = await _batch_cli(batch_env, ISSUE_LINE)
        view = (await client.get(f"/v1/batches/{batch_id}")).json()
    assert view["status"] == "done" and view["counts"]["done"] == 5, view["counts"]
    assert [(n, status) for n, status, _ in posts(database_url, batch_id)] == [
        (n, "draft") for n in range(5)]
    assert {worker for *_, worker, _ in items(database_url, batch_id)} <= {
        workers.name(p) for p in workers.processes}
    assert f"batch {batch_id} · done" in out


@pytest.mark.parametrize("args", [["batch", "--stocks", "2330", "--kols", "208"], ["worker"]])
def test_unreachable_redis_is_one_line_without_the_password(
    env: dict[str, str], args: list[str]
) -> None:
    unreachable = {**os.environ, **env, "REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}
    result = subprocess.run([AUTOPOSTER, *args], env=unreachable, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "error: REDIS_URL: cannot connect to Redis at redis://:***@127.0.0.1:1/0: ")
    assert "s3cret" not in result.stderr


def test_items_file_may_start_with_a_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("stock,kol,max_words\n台積電,208,100\n", encoding="utf-8-sig")
    [item] = _read_items(path)
    assert (item.stock, item.kol, item.max_words) == ("台積電", 208, 100)


def test_items_file_not_utf8_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes("stock,kol\n台積電,208\n".encode("big5"))
    with pytest.raises(CliError, match=r"^file: .*items\.csv is not UTF-8 text") as caught:
        _read_items(path)
    assert caught.value.exit_code == 2


def test_items_file_without_header_says_the_header_is_needed(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("2330,208\n2454,209\n", encoding="utf-8")
    with pytest.raises(CliError) as caught:
        _read_items(path)
    assert caught.value.message == (
        "file: the first line must be a header: stock,kol[,posting_type,max_words,variants]")
    assert caught.value.exit_code == 2
