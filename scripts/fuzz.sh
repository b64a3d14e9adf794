#!/usr/bin/env bash
# The long fuzz run: coverage-guided fuzzing (Jazzer) of the vhost-user message handler
# (SessionFuzzTest) and of the ring walker + blk/scsi request parsing (QueueRequestFuzzTest).
#   scripts/fuzz.sh [seconds] [--vanish] [--hangup] [--serial] [Harness...]
#     seconds   how long each harness fuzzes (default 600); the harnesses run side by side
#     Harness   SessionFuzzTest and/or QueueRequestFuzzTest (default: both)
#     --vanish  also truncate guest memory under the target (-Djvhost.fuzz.vanishingMemory=true)
#     --hangup  the front-end may hang up with replies owed (-Djvhost.fuzz.hangUpWithRepliesOwed=true;
#               off by default: it finds the known EPIPE finding of SessionHangUpTest at once)
#     --serial  one harness after the other instead of side by side
# Prints, per harness, the inputs executed and the rate, then the findings. A finding is saved by
# Jazzer as src/test/resources/io/jvhost/vhost/<Harness>Inputs/<method>/crash-<sha1>; from then
# on `mvn test` replays it as a regression seed. The growing corpus lives in .cifuzz-corpus/.
# Exit status: 0 when no harness found anything.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
. scripts/find-java.sh

secs=600
vanish=false
hangup=false
parallel=true
harnesses=()
for a in "$@"; do
  case "$a" in
    --vanish) vanish=true ;;
    --hangup) hangup=true ;;
    --serial) parallel=false ;;
    SessionFuzzTest|QueueRequestFuzzTest) harnesses+=("$a") ;;
    ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds] [--vanish] [--hangup] [--serial] [SessionFuzzTest|QueueRequestFuzzTest...]" >&2; exit 2 ;;
    *) secs="$a" ;;
  esac
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=(SessionFuzzTest QueueRequestFuzzTest)
stats=target/fuzz-stats.txt
mkdir -p target/fuzz-logs
rm -f "$stats"
touch target/fuzz-logs/.start
mvn -B -ntp -q -DskipTests test-compile || exit 1

run() {
  local t=$1
  # surefire:test alone (no lifecycle): the classes are compiled once above, runs can overlap.
  JAZZER_FUZZ=1 mvn -B -ntp surefire:test -Dtest="$t" -DexcludedGroups=qemu -Dsurefire.failIfNoSpecifiedTests=false \
    -Djvhost.testLogLevel=error \
    -Djvhost.fuzzArgs="-Djazzer.max_duration=${secs}s -Djvhost.fuzz.vanishingMemory=$vanish -Djvhost.fuzz.hangUpWithRepliesOwed=$hangup" \
    >"target/fuzz-logs/$t.log" 2>&1
}

echo "fuzz.sh: ${harnesses[*]} for ${secs}s each (vanishing memory: $vanish), logs in target/fuzz-logs/"
start=$(date +%s)
rc=0
if $parallel; then
  pids=()
  for t in "${harnesses[@]}"; do run "$t" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
else
  for t in "${harnesses[@]}"; do run "$t" || rc=1; done
fi
echo "fuzz.sh: done in $(( $(date +%s) - start ))s"
grep -h '^FUZZ-STATS' "$stats" 2>/dev/null | grep 'mode=fuzzing' || echo "fuzz.sh: no statistics written (did a harness fail to start? see target/fuzz-logs/)"
total=$(grep -h '^FUZZ-STATS' "$stats" 2>/dev/null | grep 'mode=fuzzing' | sed -n 's/.* inputs=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
echo "fuzz.sh: inputs executed in total: ${total:-0}"
for t in "${harnesses[@]}"; do grep -h '^FUZZ-DEPTH' "target/surefire-reports/io.jvhost.vhost.$t-output.txt" 2>/dev/null; done
crashes=$(find src/test/resources/io/jvhost/vhost -name 'crash-*' -newer target/fuzz-logs/.start 2>/dev/null)
for t in "${harnesses[@]}"; do
  grep -h 'FuzzTestFinding' "target/surefire-reports/io.jvhost.vhost.$t.txt" 2>/dev/null | head -3
done
if [ -n "$crashes" ] || [ $rc -ne 0 ]; then
  echo "fuzz.sh: FINDINGS (reproduce with: mvn test -Dtest=<Harness>):"
  echo "${crashes:-  (see target/surefire-reports and target/fuzz-logs)}"
  exit 1
fi
echo "fuzz.sh: no findings"
