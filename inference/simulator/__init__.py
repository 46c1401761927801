"""A simulated OpenAI-compatible backend: real HTTP on loopback, canned zh-TW posts.

For tests, batch work, benchmarks and load tests. Latency profiles are chosen by the
request's `model` (`instant`, `gpt-4o-mini`, `vllm-h200`) or the server default;
faults come from `X-Sim-*` headers or configured rates (see `_faults`). Counters are at
`GET /sim/stats`.

    async with Simulator(profile="gpt-4o-mini", seed=1) as sim:
        client = openai.AsyncOpenAI(base_url=sim.base_url, api_key="x")
"""

from inference.simulator._faults import FAULT_KINDS
from inference.simulator._profiles import PROFILES, Profile
from inference.simulator._server import Simulator, main, make_config, run
from inference.simulator._state import SimConfig

__all__ = [
    "FAULT_KINDS",
    "PROFILES",
    "Profile",
    "SimConfig",
    "Simulator",
    "main",
    "make_config",
    "run",
]
