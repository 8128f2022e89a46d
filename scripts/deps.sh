#!/usr/bin/env bash
# scripts/deps.sh — install the Debian packages rankd builds, tests and runs with.
# Sourced or run by scripts/dev.sh, scripts/test.sh and loadtest/run.sh; idempotent.
set -euo pipefail

RANKD_PACKAGES=(
  build-essential clang libclang-rt-14-dev meson ninja-build pkg-config
  libmicrohttpd-dev libpq-dev libhiredis-dev libjansson-dev libyaml-dev libjemalloc-dev
  libssl-dev libcurl4-openssl-dev zlib1g-dev libbrotli-dev libxxhash-dev libcmocka-dev
  postgresql-15 postgresql-contrib redis-server redis-sentinel curl
  python3-pytest python3-requests python3-psycopg2 python3-redis python3-jsonschema
  python3-cryptography  # the stand-in identity provider of tests/e2e/test_jwks.py signs its JWTs with it
  wrk valgrind
  chromium python3-websocket  # the dashboard's test in a real browser (tests/e2e/browser.py)
  haproxy prometheus  # deploy/ run as shipped: HAProxy in front of two instances, promtool
  nodejs  # the TypeScript client (clients/typescript) and the example web game's stand-in backend
)
# npm for the TypeScript client's packages: Debian's package, only where no npm is on PATH (a
# nodejs from NodeSource brings its own npm, which Debian's npm package would conflict with).
if ! command -v npm >/dev/null 2>&1; then
  RANKD_PACKAGES+=(npm)
fi

missing=()
for p in "${RANKD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
