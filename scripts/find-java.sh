# Sourced by ./jvhost and ./test.sh: exports JAVA_HOME pointing at a JDK >= 25.
# Order: $JAVA_HOME if it is new enough, then any JDK under /usr/lib/jvm, newest first.
_jvhost_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1
}
_jvhost_pick_java() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    v=$(_jvhost_java_major "$JAVA_HOME"); if [ "${v:-0}" -ge 25 ] 2>/dev/null; then return 0; fi
  fi
  for d in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -rV); do
    d=${d%/}
    [ -x "$d/bin/javac" ] || continue
    v=$(_jvhost_java_major "$d")
    if [ "${v:-0}" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$d"; return 0; fi
  done
  echo "jvhost: no JDK 25 or newer found. Install one (e.g. Temurin 25 from adoptium.net, or" >&2
  echo "        'apt-get install temurin-25-jdk' from the Adoptium apt repository) and set JAVA_HOME." >&2
  return 1
}
_jvhost_pick_java || exit 1
export PATH="$JAVA_HOME/bin:$PATH"
