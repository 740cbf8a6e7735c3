#!/usr/bin/env bash
# Builds nothing: runs the libFuzzer targets of build-fuzz/ (make fuzz builds them first).
#
#   fuzz/run.sh [TARGET...]          default: every target
#   FUZZ_SECONDS=60                  per target
#   FUZZ_BUILD=build-fuzz            the RPLAYER_FUZZ=ON build
#   RPLAYER=build/rplayer            if executable: `rplayer record --model mnist` adds real
#                                    network recordings to the seeds (else the seeds are the
#                                    recordings fuzz/make_seeds.cpp makes on the modeled SoC)
#   FUZZ_ARGS=                       extra libFuzzer flags
#   FUZZ_KEEP_SEEDS=1                reuse $FUZZ_BUILD/seeds (parallel campaigns)
#
# Seeds are generated into $FUZZ_BUILD/seeds/ on every run (from ../shared and the built
# tools; never committed); each target keeps its growing corpus in $FUZZ_BUILD/corpus/T/
# and writes crash inputs to $FUZZ_BUILD/artifacts/T/. Prints per target the executions,
# rate, coverage (cov = edges, ft = features), corpus size and crashes, then
# "N passed, N failed"; exits non-zero if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
B=${FUZZ_BUILD:-build-fuzz}
RPLAYER=${RPLAYER:-build/rplayer}
SHARED=${SHARED:-../shared}
ALL_TARGETS="decode replay smc soc_wire ncnn onnx image shim"
TARGETS=${*:-$ALL_TARGETS}

# ---- seeds ------------------------------------------------------------------------------
recs=()
if [ -n "${FUZZ_KEEP_SEEDS:-}" ] && [ -d "$B/seeds" ]; then
  :
elif [ -x "$RPLAYER" ]; then
  mkdir -p "$B/recordings"
  export RPLAYER_KEYS="$B/recordings/keys"
  [ -f "$RPLAYER_KEYS/signing.key" ] || "$RPLAYER" keygen >/dev/null
  for spec in "mnist:" "mnist-omit:--omit-weights"; do
    name=${spec%%:*} flags=${spec#*:}
    out="$B/recordings/$name.rec"
    [ -f "$out" ] || "$RPLAYER" record --model mnist $flags -o "$out" >/dev/null 2>&1 \
      || echo "note: rplayer record --model mnist $flags failed; continuing without it"
    [ -f "$out" ] && recs+=("$out")
  done
fi
if [ -z "${FUZZ_KEEP_SEEDS:-}" ] || [ ! -d "$B/seeds" ]; then
  rm -rf "$B/seeds"
  "$B/fuzz/make_seeds" "$B/seeds" "$SHARED" "${recs[@]}" || exit 1
fi

# ---- run --------------------------------------------------------------------------------
passed=0 failed=0
for t in $TARGETS; do
  bin="$B/fuzz/fuzz_$t"
  corpus="$B/corpus/$t" artifacts="$B/artifacts/$t" log="$B/logs/$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  # -timeout=10: any single execution over 10 s is a hang; -rss_limit_mb: an OOM is a crash.
  "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" ${FUZZ_ARGS:-} \
    "$corpus" "$B/seeds/$t" >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'exec/s: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  units=$(ls "$corpus" | wc -l)
  crashes=$(ls "$artifacts" | grep -cE '^(crash|timeout|oom|leak|slow-unit)-' || true)
  if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ]; then
    verdict=PASS; passed=$((passed + 1))
  else
    verdict="FAIL (exit $rc, log $log)"; failed=$((failed + 1))
  fi
  printf '%-9s %10s execs %7s exec/s  cov %5s ft %6s  corpus %5s  crashes %s  %s\n' \
    "$t" "${execs:-0}" "${rate:-0}" "${cov:-0}" "${ft:-0}" "$units" "$crashes" "$verdict"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
