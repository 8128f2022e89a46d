#!/usr/bin/env bash
# scripts/folder-graph.sh — the dependency graph of src/ as its #include lines draw it.
#
# Prints each folder's edges ("api -> http  (5 files)") and checks two graphs for cycles:
# the folders, and the modules (a .c file with its .h: store/queries). Exit 0 when neither has
# one, 1 with the cycle printed when one does. A folder may use what it points to, never what
# points back to it (docs/architecture.md, "Layout").
set -euo pipefail
cd "$(dirname "$0")/.."

modules=$(mktemp)
folders=$(mktemp)
trap 'rm -f "$modules" "$modules.all" "$folders"' EXIT
# One line per include: "<module> <included module>", e.g. "store/queries store/pg_pool";
# main.c is the module "main" of the folder "main".
find src -name '*.[ch]' | sort | xargs awk '
    FNR == 1 { mod = FILENAME; sub(/^src\//, "", mod); sub(/\.[ch]$/, "", mod) }
    /^#include "[a-z0-9_\/]+\.h"/ {
        to = $2; gsub(/"/, "", to); sub(/\.h$/, "", to)
        if (to != mod) print mod, to, FILENAME
    }' | sort -u >"$modules.all"
awk '{print $1, $2}' "$modules.all" | sort -u >"$modules"
# "<folder> <folder> <file>" for includes that cross folders.
awk '{ f = $1; t = $2; sub(/\/.*/, "", f); sub(/\/.*/, "", t); if (f != t) print f, t, $3 }' "$modules.all" |
    sort -u >"$folders"
rm -f "$modules.all"

echo "folders (an edge: files of the first that include a header of the second):"
sort -u "$folders" | awk '{print $1, $2}' | uniq -c | awk '{printf "  %-7s -> %-7s (%d file%s)\n", $2, $3, $1, $1 == 1 ? "" : "s"}'

status=0
for graph in folders modules; do
    file=$folders
    [ "$graph" = modules ] && file=$modules
    if ! awk '{print $1, $2}' "$file" | sort -u | tsort >/dev/null 2>"$file.err"; then
        echo "a cycle among the $graph:"
        grep -v 'input contains a loop' "$file.err" | sed 's/^tsort: /  /'
        status=1
    fi
    rm -f "$file.err"
done
[ "$status" = 0 ] && echo "no cycle among the folders or the modules"
exit "$status"
