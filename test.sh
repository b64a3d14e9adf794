#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing, then runs the whole suite
# (unit tests, in-process target/initiator tests and QEMU guest tests).
#   ./test.sh                 # everything
#   ./test.sh -DexcludedGroups=qemu   # skip the QEMU guest tests (extra args go to Maven)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
bash scripts/install-test-deps.sh
. scripts/find-java.sh
echo "test.sh: JAVA_HOME=$JAVA_HOME"
exec mvn -B -ntp verify "$@"
