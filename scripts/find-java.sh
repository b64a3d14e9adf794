# Sourced by ./jvhost and ./test.sh: exports JAVA_HOME pointing at a Java >= 25.
# Order: $JAVA_HOME if it is new enough, then any JDK under $JVHOST_JVM_DIR (default /usr/lib/jvm),
# newest first. JVHOST_JAVA_TOOL=java accepts a runtime without javac (the installed launcher
# runs a prebuilt jar); the default, javac, wants a JDK (building needs one).
_jvhost_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1
}
_jvhost_pick_java() {
  local tool="${JVHOST_JAVA_TOOL:-javac}" jvm_dir="${JVHOST_JVM_DIR:-/usr/lib/jvm}" v d old=""
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/$tool" ]; then
    v=$(_jvhost_java_major "$JAVA_HOME"); if [ "${v:-0}" -ge 25 ] 2>/dev/null; then return 0; fi
    old="JAVA_HOME=$JAVA_HOME is Java ${v:-of unknown version}; "
  elif [ -n "${JAVA_HOME:-}" ]; then
    old="JAVA_HOME=$JAVA_HOME has no bin/$tool; "
  fi
  for d in $(ls -d "$jvm_dir"/*/ 2>/dev/null | sort -rV); do
    d=${d%/}
    [ -x "$d/bin/$tool" ] || continue
    v=$(_jvhost_java_major "$d")
    if [ "${v:-0}" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$d"; return 0; fi
  done
  # One line that names the fix.
  echo "jvhost: needs Java 25 or newer: ${old}none found in $jvm_dir either; install a JDK 25 (e.g. Temurin 25: apt-get install temurin-25-jdk from the Adoptium apt repository) and set JAVA_HOME to it" >&2
  return 1
}
_jvhost_pick_java || exit 1
export PATH="$JAVA_HOME/bin:$PATH"
