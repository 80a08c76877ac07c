#!/usr/bin/env bash
# Fetch the pinned Apache Kafka broker jars from Maven Central into the cache.
# Usage: deploy/kafka/fetch.sh [CACHE_DIR]   (default: .cache/kafka)
# Idempotent: does nothing when the jars for the pinned version are present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${1:-${EXCHANGE_KAFKA_CACHE:-$here/../../.cache/kafka}}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
dest="$cache/$version/libs"
if [ -f "$dest/.complete" ]; then
  echo "kafka $version jars present in $dest"
  exit 0
fi
command -v mvn >/dev/null || { echo "error: Maven (mvn) is required to fetch the Kafka jars" >&2; exit 1; }
command -v java >/dev/null || { echo "error: Java 17+ is required to run the Kafka broker" >&2; exit 1; }
echo "fetching Apache Kafka $version jars from Maven Central into $dest ..."
mkdir -p "$dest"
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dest" -Dmdep.overWriteReleases=false
touch "$dest/.complete"
echo "kafka $version: $(ls "$dest"/*.jar | wc -l) jars in $dest"
