#!/bin/sh
# scripts/fuzz.sh [SECONDS] [TARGET]... - builds the libFuzzer targets of
# tests/fuzz (clang, ASan + UBSan, in build-fuzz) and runs each one: first
# over its committed seeds (tests/fuzz/corpus/TARGET) as a regression run,
# then for SECONDS (default 5) of fuzzing. New inputs are kept in
# build-fuzz/fuzz-corpus/TARGET, never in the repository; a crash's input is
# saved in build-fuzz/fuzz-artifacts/TARGET/. Prints each target's
# executions per second, executions, CPU time and crashes, and fails when
# any target crashed. Targets: form launch oauth pox multipart png svg json
# ini hook (all by default). FUZZ_FLAGS adds libFuzzer flags (e.g. -jobs=1).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-5}
[ $# -gt 0 ] && shift
targets=${*:-form launch oauth pox multipart png svg json ini hook}
build=${LTIBADGES_FUZZ_BUILD:-build-fuzz}
case $secs in '' | *[!0-9]*)
    echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2
    exit 2
    ;;
esac

cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DLTIBADGES_FUZZ=ON -DLTIBADGES_TESTS=OFF -DLTIBADGES_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz >/dev/null

# "0m1.50s" (the format of `times`) in seconds
to_secs() {
    echo "$1" | awk -Fm '{ sub("s", "", $2); printf "%.1f", $1 * 60 + $2 }'
}

failed=""
printf '%-10s %10s %12s %9s %8s\n' target exec/s executions cpu-s crashes
for t in $targets; do
    bin=$build/tests/fuzz/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    work=$build/fuzz-corpus/$t
    art=$build/fuzz-artifacts/$t
    log=$build/fuzz-$t.log
    if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
        echo "fuzz.sh: unknown target '$t'" >&2
        exit 2
    fi
    mkdir -p "$work" "$art"
    # every seed once (the crashes found before stay fixed), then fuzzing from them
    rc=0
    if ! "$bin" -runs=0 -timeout=20 -artifact_prefix="$art/" "$seeds" >"$log" 2>&1; then
        rc=1
    fi
    if [ $rc -eq 0 ]; then
        # shellcheck disable=SC2086
        cpu=$( (
            "$bin" -max_total_time="$secs" -timeout=20 -print_final_stats=1 \
                -artifact_prefix="$art/" ${FUZZ_FLAGS:-} "$work" "$seeds" >>"$log" 2>&1 || echo fail >"$log.rc"
            times
        ))
        # the second line: the CPU time of the subshell's children, the target
        cpu=$(printf '%s\n' "$cpu" | tail -n 1)
        [ -f "$log.rc" ] && rc=1 && rm -f "$log.rc"
    else
        cpu="0m0s 0m0s"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    user=$(to_secs "${cpu%% *}")
    sys=$(to_secs "${cpu##* }")
    cpus=$(echo "$user $sys" | awk '{ printf "%.1f", $1 + $2 }')
    crashes=0
    if [ $rc -ne 0 ]; then
        crashes=1
        failed="$failed $t"
    fi
    printf '%-10s %10s %12s %9s %8s\n' "$t" "${rate:--}" "${execs:--}" "$cpus" "$crashes"
done
if [ -n "$failed" ]; then
    for t in $failed; do
        echo "== fuzz_$t crashed: $build/fuzz-$t.log; input in $build/fuzz-artifacts/$t/" >&2
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*FUZZ_CHECK|.*runtime error)' "$build/fuzz-$t.log" | head -n 5 >&2 || true
    done
    exit 1
fi
