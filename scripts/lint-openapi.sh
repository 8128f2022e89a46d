#!/usr/bin/env bash
# scripts/lint-openapi.sh — lint api/openapi.json with Redocly's OpenAPI linter (npm), at a fixed
# version installed under .run/npm (not in git). Exit status: the linter's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSION=2.77.0
DIR=.run/npm/redocly-$VERSION
if [ ! -x "$DIR/node_modules/.bin/redocly" ]; then
  if ! command -v npm >/dev/null; then  # a machine without Node.js: Debian's
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  mkdir -p "$DIR"
  for attempt in 1 2 3; do
    if (cd "$DIR" && npm install --no-audit --no-fund --silent "@redocly/cli@$VERSION" >/dev/null 2>&1); then
      break
    fi
    [ "$attempt" = 3 ] && { echo "lint-openapi: cannot install @redocly/cli@$VERSION" >&2; exit 1; }
    sleep 5
  done
fi
# Its banner about Node.js versions is noise here; the verdict is the linter's exit status.
set +e +o pipefail
"$DIR/node_modules/.bin/redocly" lint --config api/redocly.yaml api/openapi.json 2>&1 | grep -v '[║╔╚]'
rc=${PIPESTATUS[0]}
exit "$rc"
