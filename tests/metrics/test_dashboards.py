"""grafana/: the committed dashboards are what build.py makes, and Grafana's schema (as
grafana-foundation-sdk models it) takes them back unchanged."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import Runtime
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import REGISTRY

import server  # noqa: F401 - registers the server's own metrics

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
BOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_build", GRAFANA / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _panels(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["panels"]


def test_committed_json_is_what_build_makes(build: ModuleType) -> None:
    rendered = build.render()
    assert sorted(rendered) == [path.name for path in BOARDS]
    for path in BOARDS:
        assert path.read_text(encoding="utf-8") == rendered[path.name], (
            f"{path.name} is stale: run python grafana/build.py")


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_grafana_schema_takes_the_dashboard_back_unchanged(path: Path) -> None:
    register_default_plugins()
    raw = json.loads(path.read_text(encoding="utf-8"))
    decoded = Dashboard.from_json(raw)
    assert json.loads(json.dumps(decoded, cls=JSONEncoder)) == raw
    known = Runtime().panelcfg_variants
    assert all(p["type"] == "row" or p["type"] in known for p in raw["panels"])


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_panels_tile_the_grid_and_name_the_provisioned_datasource(path: Path) -> None:
    datasource = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    cells: set[tuple[int, int]] = set()
    ids = []
    for panel in _panels(path):
        ids.append(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == datasource["uid"]
            assert target["expr"].strip()
    assert len(ids) == len(set(ids))


def _exported_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum",
                                                                 "_count"))
    return names


def test_every_autoposter_metric_in_a_query_exists() -> None:
    exported = _exported_names()
    for path in BOARDS:
        for panel in _panels(path):
            for target in panel.get("targets", []):
                for name in re.findall(r"\bautoposter_[a-z_]+", target["expr"]):
                    assert name in exported, f"{path.stem} / {panel['title']}: {name}"


def test_prometheus_config_is_valid_and_scrapes_server_workers_and_vllm(promtool: str) -> None:
    config = GRAFANA / "prometheus.yml"
    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert jobs == {"autoposter-server", "autoposter-worker", "vllm"}


def test_dashboard_provider_is_a_file_provider_in_a_folder() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "autoposter.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file"
    assert provider["folder"]
    assert provider["options"]["path"]
