"""The `autoposter` command as a user runs it: a real process, the real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
