#!/usr/bin/env bash
# Builds and runs the JMH benchmarks (src/jmh/java, Maven profile "jmh"): never part of
# ./test.sh, mvn verify or CI.
#   bench/jmh.sh                          # all benchmarks: -f 1 -wi 3 -w 1s -i 5 -r 1s -prof gc
#   bench/jmh.sh SplitRingBench           # JMH arguments replace the defaults (here: one class,
#                                         # with the annotations' defaults and no profiler)
#   bench/jmh.sh -l                       # list the benchmarks
#   bench/jmh.sh -h                       # JMH's own help
# Set JMH_SKIP_BUILD=1 to run what was built last time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
. scripts/find-java.sh
if [ "${JMH_SKIP_BUILD:-0}" != 1 ]; then
  # process-classes: main classes, then the benchmarks and JMH's generated harness into
  # target/jmh-classes, and the runtime classpath into target/jmh.classpath. No tests, no jars.
  mvn -B -ntp -q -Dstyle.color=never -Pjmh process-classes
fi
cp="target/jmh-classes:target/classes:$(cat target/jmh.classpath)"
if [ $# -eq 0 ]; then
  set -- -f 1 -wi 3 -w 1s -i 5 -r 1s -prof gc
fi
# The forks get --enable-native-access from each benchmark's @Fork(jvmArgsAppend); this JVM only
# runs the harness.
exec java --enable-native-access=ALL-UNNAMED -cp "$cp" org.openjdk.jmh.Main "$@"
