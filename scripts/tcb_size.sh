#!/usr/bin/env bash
# Size of the replayer's trusted computing base: lines of code (no blank or comment-only
# lines) of replay/ (decoder, signature check, verifier, replayer, platform interface,
# recording model) plus the SKU table it links, and the stripped size of the compiled
# objects. Usage: scripts/tcb_size.sh [--check] [build-dir]; with --check it exits 1 when
# the code lines exceed the budget (CI runs it so).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
budget=2500
build=${1:-build}
files=(replay/*.h replay/*.cpp hw/sku.h hw/sku.cpp hw/v3d_regs.h hw/poll_backoff.h)
loc() {  # non-blank lines that are not only a // comment
  grep -v -E '^\s*(//.*)?$' "$@" | wc -l
}
total=0
for f in "${files[@]}"; do
  n=$(loc "$f")
  total=$((total + n))
  printf '%6d  %s\n' "$n" "$f"
done
printf '%6d  total (code lines; budget %d)\n' "$total" "$budget"
objs=$(find "$build/replay" "$build/hw/CMakeFiles/rplayer_sku.dir" -name '*.o' 2>/dev/null || true)
if [ -n "$objs" ]; then
  tmp=$(mktemp -d)
  bytes=0
  for o in $objs; do
    cp "$o" "$tmp/x.o" && strip --strip-unneeded "$tmp/x.o"
    bytes=$((bytes + $(size -A "$tmp/x.o" | awk '/^\.text|^\.rodata|^\.data/ {s += $2} END {print s+0}')))
  done
  rm -rf "$tmp"
  printf '%6d  bytes of code and data in the stripped objects (.text + .rodata + .data)\n' "$bytes"
fi
if [ $check = 1 ] && [ "$total" -gt "$budget" ]; then
  echo "tcb_size: the trusted core has $total code lines, over its budget of $budget" >&2
  exit 1
fi
