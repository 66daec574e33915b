#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/) with -sanitize=fuzzer,address in their own scratch path and
# runs each for SECONDS (default 60) on its committed corpus (Fuzz/corpus/<target>/). New inputs go
# to a scratch corpus (.build-fuzz/corpus/<target>/), not the committed one; a crash leaves its input
# in .build-fuzz/crashes/<target>/ and fails the script.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The plain `swift build` makes replayers of the same targets: `.build/debug/FuzzEncoder FILE...`
# re-runs an input (and the tests replay every committed corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(FuzzEncoder FuzzRequestParsing FuzzCommandParser FuzzTopicMatcher)
scratch=.build-fuzz

for target in "${targets[@]}"; do
  # SwiftPM aliases `main` to `<Module>_main`; -parse-as-library drops the replayer's @main so the
  # target's own `<Module>_main` (see Fuzz/*/Driver.swift) can hand over to libFuzzer.
  swift build -c debug --product "$target" --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING
done

status=0
for target in "${targets[@]}"; do
  work="$scratch/corpus/$target"
  crashes="$scratch/crashes/$target"
  mkdir -p "$work" "$crashes"
  echo "== $target: ${seconds}s"
  # -rss_limit_mb: the embedded channel and the broker are per-input; growth would be a leak.
  if ! "$scratch/debug/$target" "$work" "Fuzz/corpus/$target" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -artifact_prefix="$crashes/" -print_final_stats=1 2>"$scratch/$target.log"; then
    status=1
    echo "!! $target found a crash: $(ls "$crashes")"
  fi
  # The summary: executions, speed, coverage (cov = edges, ft = features), corpus size.
  grep -E "^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$scratch/$target.log" | tail -4
  grep -E "cov: [0-9]+" -o "$scratch/$target.log" | tail -1
done
exit "$status"
