#!/bin/sh
# tests/fuzz/fuzz_replay.sh BINARY DIR... — run a fuzz target once over every file of DIRs.
set -e
bin="$1"; shift
files=$(find "$@" -type f ! -name .keep)
[ -z "$files" ] && exit 0
# shellcheck disable=SC2086
exec "$bin" -runs=0 $files
