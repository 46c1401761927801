#!/usr/bin/env bash
# Starts the PostgreSQL and Redis that the tests use, when none answer on 127.0.0.1.
# Installs Debian's prometheus package (prometheus and promtool) when promtool is missing;
# the metrics tests start their own Prometheus, never the packaged service. Installs
# Debian's docker-compose (1.29) to check the compose file; no Docker engine is needed.
# Installs Debian's chromium, with CJK fonts for the screenshots, for the review pages'
# browser tests; Playwright drives it, and never downloads a browser of its own.
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1; then
    echo "services: installing prometheus (for promtool and the dashboard test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "services: installing docker-compose 1.29 (to check docker-compose.gpu.yml)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "services: installing chromium (for the review pages' browser tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    browser=(chromium fonts-noto-cjk)
    apt-get install -y -qq --no-install-recommends "${browser[@]}" >/dev/null \
        || { apt-get update -qq \
             && apt-get install -y -qq --no-install-recommends "${browser[@]}" >/dev/null; }
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "services: starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
