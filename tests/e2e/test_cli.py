"""The `autoposter` command as a user runs it: a real process, the real database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

AUTOPOSTER = str(Path(sys.executable).with_name("autoposter"))


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([AUTOPOSTER, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


def _post_count(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        exists = conn.execute("SELECT to_regclass('posts')").fetchone()[0]
        return conn.execute("SELECT count(*) FROM posts").fetchone()[0] if exists else 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--stock", "99999", "--kol", "208", "--type", "analysis"], "stock"),
        (["--stock", "2330", "--kol", "208", "--type", "analysis", "--max-words", "0"],
         "max_words"),
        (["--stock", "2330", "--kol", "424242", "--type", "analysis"], "kol"),
        (["--stock", "2330", "--kol", "208", "--type", "essay"], "posting_type"),
        (["--stock", "2330", "--kol", "208", "--type", "analysis", "--variants", "9"],
         "variants"),
        (["--stock", "2330", "--kol", "abc", "--type", "analysis"], "--kol"),
    ],
)
def test_generate_bad_input_one_line_error_nothing_stored(
    env: dict[str, str], database_url: str, args: list[str], field: str
) -> None:
    before = _post_count(database_url)
    result = _run(env, "generate", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0] and "Traceback" not in result.stderr
    assert _post_count(database_url) == before


def test_unknown_stock_error_suggests_matches(env: dict[str, str]) -> None:
    result = _run(env, "generate", "--stock", "台基電", "--kol", "208", "--type", "analysis")
    assert result.returncode == 2
    assert "台積電" in result.stderr


def test_bad_setting_is_one_line_naming_the_variable(env: dict[str, str]) -> None:
    result = _run({**env, "AUTOPOSTER_TIMEOUTS__IDLE_S": "soon"}, "kols")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: AUTOPOSTER_TIMEOUTS__IDLE_S: Expected `float`, got `str`"
    ]


def test_kols_lists_personas_including_208(env: dict[str, str]) -> None:
    result = _run(env, "kols", "--json")
    personas = json.loads(result.stdout)
    assert len(personas) >= 8
    assert {p["persona_type"] for p in personas} >= {"technical", "fundamental",
                                                     "news_driven", "mixed"}
    assert any(p["serial"] == 208 for p in personas)


def test_stocks_finds_by_name(env: dict[str, str]) -> None:
    result = _run(env, "stocks", "台積電", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)[0]["code"] == "2330"


def test_posts_show_unknown_id_is_one_line(env: dict[str, str]) -> None:
    result = _run(env, "posts", "show", "not-a-uuid")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.local_model
def test_generate_with_local_model_stores_post_shown_by_posts_show(env: dict[str, str]) -> None:
    local = {**env, "AUTOPOSTER_BACKEND": "local"}
    made = _run(local, "generate", "--stock", "2330", "--kol", "208", "--type", "interaction",
                "--max-words", "40", "--variants", "5", "--json", timeout=600)
    assert made.returncode in (0, 1), made.stderr
    post = json.loads(made.stdout)
    assert post["backend"] == "local" and post["usage"]["completion_tokens"] > 0
    assert len(post["alternatives"]) == (4 if post["status"] == "draft" else 5)
    shown = _run(local, "posts", "show", post["post_id"], "--json")
    assert json.loads(shown.stdout) == post


def test_generate_speed_routes_to_the_speed_backend_and_stores_it(
    env: dict[str, str], database_url: str
) -> None:
    from inference.simulator import Simulator

    with Simulator(profile="vllm-h200", seed=3) as sim:
        speedy = {**env, "AUTOPOSTER_BACKENDS__SPEEDY__KIND": "vllm",
                  "AUTOPOSTER_BACKENDS__SPEEDY__BASE_URL": sim.base_url,
                  "AUTOPOSTER_BACKENDS__SPEEDY__MODEL": "vllm-h200",
                  "AUTOPOSTER_SPEED_BACKEND": "speedy"}
        made = _run(speedy, "generate", "--stock", "2330", "--kol", "208", "--type",
                    "analysis", "--max-words", "120", "--speed", "--json")
        requests = sim.stats()["requests"]
    assert made.returncode == 0, made.stderr
    post = json.loads(made.stdout)
    assert (post["backend"], post["model"]) == ("speedy", "vllm-h200")
    assert requests >= 1  # the default backend, llm.test, is never reached
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT backend, model FROM posts WHERE id = %s",
                              (post["post_id"],)).fetchone()
    assert stored == ("speedy", "vllm-h200")


def test_serve_logs_only_json_lines(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([AUTOPOSTER, "serve", "--port", str(port)],
                               env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Uvicorn running" in line or len(lines) > 50:
                break
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[1]
    lines += rest.splitlines()
    assert any("Uvicorn running" in line for line in lines), lines
    for line in filter(str.strip, lines):
        assert isinstance(json.loads(line), dict), line


def _no_such_database(database_url: str) -> str:
    return database_url.rpartition("/")[0] + "/nonexistent_db"


@pytest.mark.parametrize("url", ["nonexistent", "postgresql://postgres@127.0.0.1:1/x", "notaurl"])
def test_unreachable_database_is_one_line_naming_database_url(
    env: dict[str, str], database_url: str, url: str
) -> None:
    url = _no_such_database(database_url) if url == "nonexistent" else url
    started = time.monotonic()
    result = _run({**env, "DATABASE_URL": url}, "posts", timeout=60)
    assert result.returncode == 1, result.stderr
    assert [line.split(" at ")[0] for line in result.stderr.strip().splitlines()] == [
        "error: DATABASE_URL: cannot connect to PostgreSQL"]
    assert time.monotonic() - started < 12  # libpq's 5 s timeout, not the pool's 15 s


def test_unreachable_database_password_is_redacted(env: dict[str, str]) -> None:
    url = "postgresql://postgres:hunter22@127.0.0.1:1/x"
    result = _run({**env, "DATABASE_URL": url}, "kols", timeout=60)
    assert "postgresql://postgres:***@127.0.0.1:1/x: " in result.stderr
    assert "hunter22" not in result.stderr


def test_serve_with_unreachable_database_logs_one_line_and_exits_1(
    env: dict[str, str], database_url: str
) -> None:
    result = _run({**env, "DATABASE_URL": _no_such_database(database_url)}, "serve",
                  "--port", "1", timeout=60)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    record = json.loads(line)
    assert record["event"] == "server.start_failed"
    assert record["error"].startswith("DATABASE_URL: cannot connect to PostgreSQL at")


def test_posts_unknown_status_is_one_line_naming_the_choices(env: dict[str, str]) -> None:
    result = _run(env, "posts", "--status", "bogus")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "--status" in line and "'draft'" in line and "'cancelled'" in line


def test_serve_refuses_zero_workers(env: dict[str, str]) -> None:
    result = _run(env, "serve", "--port", "1", "--workers", "0", timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "--workers" in line


def _post_ids(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass('posts')").fetchone()[0] is None:
            return set()  # the command has not migrated this fresh database yet
        return {str(row[0]) for row in conn.execute("SELECT id FROM posts")}


def _post_status(database_url: str, post_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT status FROM posts WHERE id = %s", (post_id,)).fetchone()[0]


def _new_post(database_url: str, before: set[str], process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while not (new := _post_ids(database_url) - before):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    [post_id] = new
    return post_id


def test_generate_sigterm_stores_post_cancelled_and_exits_143(
    env: dict[str, str], database_url: str
) -> None:
    from inference.simulator import Simulator

    # The stream stalls after a few tokens, so the post is surely in progress.
    with Simulator(profile="gpt-4o-mini", fault_rates={"stall": 1.0}, stall_s=60,
                   seed=5) as sim:
        stalled = {**env, "AUTOPOSTER_BACKENDS__SIM__KIND": "vllm",
                   "AUTOPOSTER_BACKENDS__SIM__BASE_URL": sim.base_url,
                   "AUTOPOSTER_BACKENDS__SIM__MODEL": "gpt-4o-mini",
                   "AUTOPOSTER_BACKEND": "sim"}
        before = _post_ids(database_url)
        process = subprocess.Popen(
            [AUTOPOSTER, "generate", "--stock", "2330", "--kol", "208", "--type", "analysis",
             "--max-words", "2000", "--json"],
            env={**os.environ, **stalled}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        try:
            post_id = _new_post(database_url, before, process)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 143, stderr
    assert _post_status(database_url, post_id) == "cancelled"
    assert "Traceback" not in stderr
