#!/usr/bin/env bash
# The guest-data copy variants of GuestCopyBench (src/jmh), in ROUNDS rounds of one JMH run each
# (every variant once per round, one fork each, pinned to CPU ${CPU:-1}), then per-round ratios
# against MemorySegment.copy with default flags and their medians (bench/guest-copy-table.py).
#   bench/guest-copy.sh                 # ROUNDS=3, OUT=/tmp/guest-copy
#   REGEX='...' bench/guest-copy.sh     # other benchmarks (a JMH regex)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
ROUNDS=${ROUNDS:-3}; OUT=${OUT:-/tmp/guest-copy}; CPU=${CPU:-1}
REGEX=${REGEX:-'GuestCopyBench\.(segmentCopy|chunked2k|chunked16k|longLoop|memmove)$|GuestCopyBench\.(MaxVector32|Avx3Threshold0|UseAvx2)\.segmentCopy$'}
mkdir -p "$OUT"
[ "${JMH_SKIP_BUILD:-0}" = 1 ] || { . scripts/find-java.sh; mvn -B -ntp -q -Dstyle.color=never -Pjmh process-classes; }
for r in $(seq 1 "$ROUNDS"); do
  JMH_SKIP_BUILD=1 taskset -c "$CPU" bench/jmh.sh "$REGEX" -wi 2 -w 500ms -i 3 -r 500ms \
      -rf json -rff "$OUT/round-$r.json" ${JMH_EXTRA:-} > "$OUT/round-$r.log" 2>&1
  echo "round $r done $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
done
python3 bench/guest-copy-table.py "$OUT"/round-*.json
