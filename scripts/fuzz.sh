#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer harnesses (fuzz/, clang, ASan + UBSan) in build-fuzz and runs
# each for a bounded time on a copy of its seed corpus. A crash fails the script and is copied
# into fuzz/regressions/<target>/, which every build's tests replay (fuzz_replay_* ctests):
# commit it with the fix. docs/FUZZING.md.
# Usage: scripts/fuzz.sh [seconds per target (default 20)] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sse chunk config prom sim_request workload)
fi
cc=${FUZZ_CC:-clang-14}
if ! command -v "$cc" >/dev/null; then
    echo "fuzz.sh: $cc not found; scripts/setup.sh dev installs it" >&2
    exit 2
fi

CC=$cc cmake -S . -B build-fuzz -G Ninja -DTB_FUZZ=ON -DTB_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
for t in "${targets[@]}"; do
    work=build-fuzz/corpus/$t
    art=build-fuzz/artifacts/$t
    rm -rf "$art" && mkdir -p "$work" "$art" # only this run's crashes are kept
    seeds=(fuzz/corpus/"$t")
    if [ -d fuzz/regressions/"$t" ]; then
        seeds+=(fuzz/regressions/"$t")
    fi
    echo "== fuzz $t (${secs}s)"
    # New inputs go to the first directory (build-fuzz), never into the repository's corpus.
    if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        build-fuzz/fuzz_"$t" -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/" \
        "$work" "${seeds[@]}" >"build-fuzz/fuzz_$t.log" 2>&1; then
        status=1
        tail -n 40 "build-fuzz/fuzz_$t.log" >&2
        mkdir -p fuzz/regressions/"$t"
        for f in "$art"/*; do
            [ -f "$f" ] || continue
            cp "$f" fuzz/regressions/"$t"/
            echo "fuzz.sh: $t: kept $f as fuzz/regressions/$t/$(basename "$f")" >&2
        done
    fi
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' \
        "build-fuzz/fuzz_$t.log" || true
done
exit $status
