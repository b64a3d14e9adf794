#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs the whole suite
# (unit tests, in-process target/initiator tests and QEMU guest tests).
#   ./test.sh                 # everything
#   ./test.sh -DexcludedGroups=qemu   # skip the QEMU guest tests (extra args go to Maven)
#   JVHOST_FUZZ_SECONDS=0 ./test.sh   # skip the short coverage-guided fuzz run (default 20 s per fuzzer)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
bash scripts/install-test-deps.sh
. scripts/find-java.sh
echo "test.sh: JAVA_HOME=$JAVA_HOME"
# A short, bounded coverage-guided fuzz run of both fuzzers (scripts/fuzz.sh; the long run is the
# same script with more seconds). Findings fail the run.
fuzz_secs="${JVHOST_FUZZ_SECONDS:-20}"
if [ "$fuzz_secs" != 0 ]; then
  bash scripts/fuzz.sh "$fuzz_secs"
fi
exec mvn -B -ntp verify "$@"
