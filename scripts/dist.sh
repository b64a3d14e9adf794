#!/usr/bin/env bash
# Builds the self-contained artifact: target/jvhost-VERSION.tar.gz holding
#   jvhost/jvhost                  the launcher (finds a Java 25+; runs the jar beside it, never builds)
#   jvhost/jvhost.jar              the shaded jar (every dependency inside)
#   jvhost/scripts/find-java.sh    the launcher's Java check
#   jvhost/contrib/...             the systemd unit and a sample config
# Install:  tar -C /opt -xzf target/jvhost-*.tar.gz   (then /opt/jvhost/jvhost --help)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
. scripts/find-java.sh
mvn -B -ntp -q -DskipTests package
version=$(sed -n 's/.*String VERSION = "\(.*\)";/\1/p' src/main/java/io/jvhost/rpc/FrameworkRpc.java)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/jvhost/scripts" "$stage/jvhost/contrib"
cp jvhost "$stage/jvhost/jvhost"
cp target/jvhost.jar "$stage/jvhost/jvhost.jar"
cp scripts/find-java.sh "$stage/jvhost/scripts/"
cp -r contrib/. "$stage/jvhost/contrib/"
chmod 0755 "$stage/jvhost/jvhost"
out="target/jvhost-$version.tar.gz"
tar -C "$stage" --owner=0 --group=0 -czf "$out" jvhost
echo "$out"
