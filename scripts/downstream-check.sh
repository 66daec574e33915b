#!/usr/bin/env bash
# The library as a dependency (issue 16): resolves and builds Examples/Downstream, an app that uses
# only SSEBroker and SSEBrokerServer with `traits: []`, and fails if SwiftPM resolved any package
# the core and the server do not need. Then runs the app and stops it with SIGTERM: the server as a
# Service of a ServiceGroup shuts down gracefully and the process exits 0.
#
#     scripts/downstream-check.sh        # from the repository's root; ~2-3 min cold
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

# What SSEBroker + SSEBrokerServer need (swift-nio and its atomics/collections/system, swift-log,
# swift-metrics, swift-crypto and its asn1, swift-service-lifecycle and its async-algorithms, and
# swift-nio-http2 for the server's HTTP/2, swift-http-types for the requests and statuses of the core's API).
# Anything else here is a leak of a trait-guarded dependency into every app that uses the library.
allowed="swift-asn1 swift-async-algorithms swift-atomics swift-collections swift-crypto swift-http-types swift-log swift-metrics swift-nio swift-nio-http2 swift-service-lifecycle swift-system"

cd Examples/Downstream
rm -f Package.resolved
swift package resolve
resolved=$(python3 -c 'import json; print(" ".join(sorted(p["identity"] for p in json.load(open("Package.resolved"))["pins"])))')
count=$(wc -w <<<"$resolved")
echo "downstream: $count packages resolved: $resolved"
extra=$(comm -23 <(tr ' ' '\n' <<<"$resolved" | sort) <(tr ' ' '\n' <<<"$allowed" | sort))
if [ -n "$extra" ]; then
  echo "downstream: resolved packages the core and the server do not need: $extra" >&2
  exit 1
fi

swift build
port=$(free_port)
log=$(mktemp)
.build/debug/DownstreamApp "$port" 2>"$log" &
app=$!
trap 'kill "$app" 2>/dev/null || true' EXIT
wait_port "$port"
health=$(python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=5).status)")
[ "$health" = 200 ] || { echo "downstream: /healthz answered $health" >&2; exit 1; }
kill -TERM "$app"
status=0
wait "$app" || status=$?
trap - EXIT
rm -f "$log"
[ "$status" = 0 ] || { echo "downstream: exit status $status after SIGTERM" >&2; cat "$log" >&2; exit 1; }
echo "downstream: ok ($count packages; served /healthz, exited 0 on SIGTERM)"
