#!/usr/bin/env bash
# bench/run-launch.sh [BUILD_DIR] - the LTI launch benchmark (bench/README.md).
#
# Starts the ceiling (bench/ceiling.c: libmicrohttpd reading the body and
# answering 303, verifying nothing) and `ltibadges serve` on 127.0.0.1 with a
# fresh database, then for 2 and 64 connections runs wrk (2 threads,
# BENCH_DURATION seconds, --latency) against each, every launch pre-signed
# with a fresh nonce by bench/presign. Prints requests/s, p50, p99, errors,
# server CPU per request and peak RSS, and the ratios to the ceiling measured
# in this same run (compare ratios, not absolute numbers, with PEERS.md).
#
# Installs nothing. Needs wrk (apt-get install wrk) and, to check that the
# launches were really accepted, the sqlite3 CLI or python3.
# Environment: BENCH_DURATION (default 10), BENCH_CONNS (default "2 64"),
# BENCH_KEEP=1 keeps the temporary directory, BENCH_WARMUP=S sends S seconds
# of unmeasured launches first (a term under way), BENCH_REPEAT=N measures N times
# (alternating with the ceiling) and reports medians, BENCH_ENROLLMENT_RULE=1 runs the
# launches with a consumer-wide enrollment badge active (awards queued and issued).
set -euo pipefail

build=${1:-./build}
duration=${BENCH_DURATION:-10}
conns_list=${BENCH_CONNS:-"2 64"}
wrk_threads=2
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/launch.lua"

die() {
    echo "run-launch: $*" >&2
    exit 1
}

ltibadges="$build/ltibadges"
ceiling="$build/bench/ceiling"
presign="$build/bench/presign"
[ -x "$ltibadges" ] || die "$ltibadges not found: build first (cmake -B build && cmake --build build -j2)"
for b in "$ceiling" "$presign"; do
    [ -x "$b" ] || die "$b not found: cmake --build $build --target ceiling presign"
done
command -v wrk >/dev/null 2>&1 || die "wrk not found: install it (apt-get install wrk)"
if command -v sqlite3 >/dev/null 2>&1; then
    count_sessions() { sqlite3 -readonly "$1" 'SELECT count(*) FROM sessions' 2>/dev/null || echo -1; }
elif command -v python3 >/dev/null 2>&1; then
    count_sessions() {
        python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("SELECT count(*) FROM sessions").fetchone()[0])' "$1" 2>/dev/null || echo -1
    }
else
    count_sessions() { echo -1; }
    echo "run-launch: neither sqlite3 nor python3: accepted launches will not be counted" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ltibadges-bench.XXXXXX")
pids=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "run-launch: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until FILE holds a line matching RE (the server printed its address).
wait_for() {
    local file=$1 re=$2 pid=$3
    for _ in $(seq 100); do
        grep -q "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# utime + stime of PID in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# ---- start both servers -------------------------------------------------
"$ceiling" 0 >"$tmp/ceiling.out" 2>"$tmp/ceiling.err" &
ceiling_pid=$!
pids+=("$ceiling_pid")
wait_for "$tmp/ceiling.out" 'listening on' "$ceiling_pid" || die "ceiling did not start: $(cat "$tmp/ceiling.err")"
ceiling_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/ceiling.out")
ceiling_url="http://127.0.0.1:$ceiling_port/lti/launch"

printf '[server]\naccess_log = off\n' >"$tmp/ltibadges.ini"
"$ltibadges" serve --demo --config "$tmp/ltibadges.ini" --db "$tmp/bench.db" \
    --listen 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
pids+=("$server_pid")
wait_for "$tmp/server.out" '^ltibadges: listening on' "$server_pid" ||
    die "ltibadges did not start: $(cat "$tmp/server.err")"
key=$(awk '/consumer key:/ {print $3}' "$tmp/server.out")
secret=$(awk '/shared secret:/ {print $3}' "$tmp/server.out")
server_url=$(awk '/launch URL:/ {print $3}' "$tmp/server.out")
if [ -z "$key" ] || [ -z "$secret" ] || [ -z "$server_url" ]; then
    die "no demo consumer in ltibadges' output"
fi
case $server_url in http://127.0.0.1:*) ;; *) die "unexpected launch URL $server_url" ;; esac
if [ "${BENCH_ENROLLMENT_RULE:-0}" = 1 ]; then
    # a consumer-wide enrollment badge: every first launch of a learner in a course
    # queues an award in the launch's transaction, and the worker issues it meanwhile
    printf '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>' >"$tmp/badge.svg"
    "$ltibadges" badge create --db "$tmp/bench.db" --consumer "$key" --name Welcome \
        --description "Joined a course" --image "$tmp/badge.svg" --rule enrollment >/dev/null ||
        die "cannot create the enrollment badge"
    echo "run-launch: enrollment rule active" >&2
fi

# ---- one wrk run ----------------------------------------------------------
# run NAME PID URL CONNS SECONDS BODIES MODE: sets r_rps r_p50 r_p99 r_reqs r_bad r_sockerr r_exh r_cpu_us
to_ms() {
    # wrk prints 812.00us, 1.23ms, 1.02s, 2.00m
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}
run() {
    local name=$1 pid=$2 url=$3 c=$4 secs=$5 bodies=$6 mode=$7 out t0 t1
    out="$tmp/wrk-$name-$c-$secs.txt"
    t0=$(cpu_ticks "$pid")
    wrk -t"$wrk_threads" -c"$c" -d"${secs}s" --timeout 5s --latency -s "$lua" "$url" \
        -- "$bodies" "$wrk_threads" "$mode" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    t1=$(cpu_ticks "$pid")
    # the rate while every wrk thread was sending (bench/launch.lua), else wrk's own
    r_rps=$(awk '/^launch.lua: steady rate/ {printf "%.0f", $4}' "$out")
    [ -n "$r_rps" ] || r_rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    r_reqs=$(awk '/ requests in / {print $1}' "$out")
    r_p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    r_p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    r_bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
    r_bad=${r_bad:-0}
    r_sockerr=$(awk '/Socket errors:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i; print n + 0 }' "$out")
    r_sockerr=${r_sockerr:-0}
    r_exh=$(awk '/^launch.lua: .* exhausted$/ {print $(NF - 2)}' "$out")
    r_exh=${r_exh:-0}
    r_cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$r_reqs" \
        'BEGIN { if (n > 0) printf "%.0f", d / hz * 1e6 / n; else print "-" }')
    if [ -z "$r_rps" ] || [ -z "$r_reqs" ]; then
        die "cannot read wrk's output: $(cat "$out")"
    fi
}

# ---- the ceiling ------------------------------------------------------------
echo "run-launch: ceiling on 127.0.0.1:$ceiling_port, ltibadges on ${server_url%/lti/launch}" >&2
"$presign" "$key" "$secret" "$ceiling_url" 20000 "$tmp/ceiling-bodies.txt"
declare -A rps p50 p99 bad sockerr exh cpu acc reqs
ceiling_runs() {
    for c in $conns_list; do
        echo "run-launch: ceiling, $c connections, ${duration}s" >&2
        run ceiling "$ceiling_pid" "$ceiling_url" "$c" "$duration" "$tmp/ceiling-bodies.txt" cycle
        rps[ceiling,$c]=$r_rps p50[ceiling,$c]=$r_p50 p99[ceiling,$c]=$r_p99 bad[ceiling,$c]=$r_bad
        sockerr[ceiling,$c]=$r_sockerr exh[ceiling,$c]=0 cpu[ceiling,$c]=$r_cpu_us acc[ceiling,$c]=-
        reqs[ceiling,$c]=$r_reqs
    done
}

# ---- ltibadges --------------------------------------------------------------
# Every launch may be sent once, so the bodies must outlast the run: a short
# calibration run at the highest connection count (which also warms the
# database up: users, courses and links exist, as in a term under way) tells
# the rate (the second of two runs: the first starts on an empty database and
# ramps up), and each measured run gets rate * duration * 2.5 fresh launches
# (the measured runs go faster than the calibration).
max_c=0
min_c=
for c in $conns_list; do
    if [ "$c" -gt "$max_c" ]; then
        max_c=$c
    fi
    if [ -z "$min_c" ] || [ "$c" -lt "$min_c" ]; then
        min_c=$c
    fi
done
# BENCH_WARMUP=S: first S seconds of launches at the highest connection count,
# unmeasured, so that most (user, course, link) of the 80 000 exist with their
# outcome binding, as late in a term; the default measures an early term,
# where a launch is often a user's first on that link.
warmup=${BENCH_WARMUP:-0}
if [ "$warmup" -gt 0 ]; then
    nwarm=$((warmup * 30000))
    "$presign" "$key" "$secret" "$server_url" "$nwarm" "$tmp/bodies.txt" "$warmup"
    echo "run-launch: warm-up, $max_c connections, ${warmup}s, up to $nwarm launches" >&2
    run warmup "$server_pid" "$server_url" "$max_c" "$warmup" "$tmp/bodies.txt" once
fi
ncal=30000
ncal_runs=0
while :; do
    "$presign" "$key" "$secret" "$server_url" "$ncal" "$tmp/bodies.txt" 2
    echo "run-launch: ltibadges calibration, $max_c connections, 2s, $ncal launches" >&2
    run calibrate "$server_pid" "$server_url" "$max_c" 2 "$tmp/bodies.txt" once
    ncal_runs=$((ncal_runs + 1))
    if [ "$r_exh" != 0 ] && [ "$ncal" -lt 480000 ]; then
        ncal=$((ncal * 4))
        continue
    fi
    # the first run starts on an empty database and ramps up: a second one gives the rate
    if [ "$ncal_runs" -ge 2 ]; then
        break
    fi
done
cal_rps=$r_rps
need=$(awk -v r="$cal_rps" -v d="$duration" 'BEGIN { n = int(r * d * 2.5); if (n < 10000) n = 10000; print n }')
# the launches' timestamps spread over the run's duration, as an LMS stamps each launch when it
# is clicked (not all of them in the second presign ran); the measured runs go faster than the
# calibration and send only part of the bodies, so the stamps they send are, if anything, denser
# than the stamps of real launches at that rate
spread=$duration

ltibadges_runs() {
    for c in $conns_list; do
        "$presign" "$key" "$secret" "$server_url" "$need" "$tmp/bodies.txt" "$spread"
        before=$(count_sessions "$tmp/bench.db")
        echo "run-launch: ltibadges, $c connections, ${duration}s, $need fresh launches" >&2
        run ltibadges "$server_pid" "$server_url" "$c" "$duration" "$tmp/bodies.txt" once
        sleep 0.2 # launches answered after wrk stopped still commit; count them too
        after=$(count_sessions "$tmp/bench.db")
        rps[ltibadges,$c]=$r_rps p50[ltibadges,$c]=$r_p50 p99[ltibadges,$c]=$r_p99
        bad[ltibadges,$c]=$r_bad sockerr[ltibadges,$c]=$r_sockerr exh[ltibadges,$c]=$r_exh
        cpu[ltibadges,$c]=$r_cpu_us reqs[ltibadges,$c]=$r_reqs
        if [ "$before" -ge 0 ] && [ "$after" -ge 0 ]; then
            acc[ltibadges,$c]=$((after - before))
        else
            acc[ltibadges,$c]=-
        fi
    done
}

# The checks of one repetition: every answer a 3xx, no socket error, no thread out of
# launches, one stored session per answer. Sets status=1 and warns otherwise.
status=0
check_runs() {
    for c in $conns_list; do
        if [ "${bad[ltibadges,$c]}" != 0 ] || [ "${sockerr[ltibadges,$c]}" != 0 ]; then
            echo "run-launch: WARNING: ltibadges at $c connections: ${bad[ltibadges,$c]} non-3xx answers, ${sockerr[ltibadges,$c]} socket errors" >&2
            status=1
        fi
        if [ "${exh[ltibadges,$c]}" != 0 ]; then
            echo "run-launch: WARNING: ltibadges at $c connections ran out of pre-signed launches: its rate is a lower bound" >&2
            status=1
        fi
        a=${acc[ltibadges,$c]}
        if [ "$a" != - ]; then
            # every answered request must be a stored session (a few more: answered after wrk stopped)
            if [ "$a" -lt "${reqs[ltibadges,$c]}" ] || [ "$a" -gt $((${reqs[ltibadges,$c]} + c + 2)) ]; then
                echo "run-launch: WARNING: ltibadges at $c connections: $a sessions stored for ${reqs[ltibadges,$c]} requests" >&2
                status=1
            fi
        fi
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# BENCH_REPEAT=N: the ceiling and ltibadges measured N times, alternately (the
# machine's speed drifts; a ceiling measured next to each run keeps the ratio
# honest); the report gives the medians and every repetition's ratio.
repeat=${BENCH_REPEAT:-1}
declare -A all_rps all_p50 all_p99 all_cpu all_ratio
for rep in $(seq 1 "$repeat"); do
    [ "$repeat" -gt 1 ] && echo "run-launch: repetition $rep of $repeat" >&2
    ceiling_runs
    ltibadges_runs
    check_runs
    for t in ceiling ltibadges; do
        for c in $conns_list; do
            all_rps[$t,$c]+=" ${rps[$t,$c]}" all_p50[$t,$c]+=" ${p50[$t,$c]}"
            all_p99[$t,$c]+=" ${p99[$t,$c]}" all_cpu[$t,$c]+=" ${cpu[$t,$c]}"
        done
    done
    for c in $conns_list; do
        all_ratio[$c]+=" $(ratio "${rps[ltibadges,$c]}" "${rps[ceiling,$c]}")"
    done
done
if [ "$repeat" -gt 1 ]; then
    for t in ceiling ltibadges; do
        for c in $conns_list; do
            rps[$t,$c]=$(median "${all_rps[$t,$c]}") p50[$t,$c]=$(median "${all_p50[$t,$c]}")
            p99[$t,$c]=$(median "${all_p99[$t,$c]}") cpu[$t,$c]=$(median "${all_cpu[$t,$c]}")
        done
    done
fi

# the write-ahead log should stay bounded under load (the checkpointer keeps up)
db_mib=$(du -m "$tmp/bench.db" | cut -f1)
wal_mib=$(du -m "$tmp/bench.db-wal" 2>/dev/null | cut -f1 || echo 0)
rss_ceiling=$(peak_rss_mib "$ceiling_pid")
rss_server=$(peak_rss_mib "$server_pid")

# ---- report -----------------------------------------------------------------
echo
echo "LTI launch benchmark: $(nproc) cores, wrk -t$wrk_threads -d${duration}s, bodies ~$(awk '{n += length($0)} END {printf "%.1f", n / NR / 1024}' "$tmp/bodies.txt") KiB, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "| target | conns | requests/s | × ceiling | p50 ms | p99 ms | requests | sessions stored | non-3xx | socket errors | server CPU µs/req | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in ceiling ltibadges; do
    for c in $conns_list; do
        if [ "$t" = ceiling ]; then rss=$rss_ceiling; else rss=$rss_server; fi
        echo "| $t | $c | ${rps[$t,$c]} | $(ratio "${rps[$t,$c]}" "${rps[ceiling,$c]}") | ${p50[$t,$c]} | ${p99[$t,$c]} | ${reqs[$t,$c]} | ${acc[$t,$c]} | ${bad[$t,$c]} | ${sockerr[$t,$c]} | ${cpu[$t,$c]} | $rss |"
    done
done
echo
lo=$min_c
hi=$max_c
echo "| target | × ceiling at $lo conns | × ceiling at $hi conns | p99 ms at $hi | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|"
echo "| ceiling | 1.000 | 1.000 | ${p99[ceiling,$hi]} | $rss_ceiling |"
echo "| ltibadges | $(ratio "${rps[ltibadges,$lo]}" "${rps[ceiling,$lo]}") | $(ratio "${rps[ltibadges,$hi]}" "${rps[ceiling,$hi]}") | ${p99[ltibadges,$hi]} | $rss_server |"
echo
if [ "$repeat" -gt 1 ]; then
    echo "Medians of $repeat repetitions (requests/s, p50, p99, CPU; requests, sessions and errors"
    echo "are the last repetition's). × ceiling in each repetition:"
    for c in $conns_list; do
        echo "- $c connections:${all_ratio[$c]} (median $(median "${all_ratio[$c]}"))"
    done
    echo
fi
echo "ltibadges' database after the runs: ${db_mib} MiB, write-ahead log ${wal_mib} MiB"
echo

exit $status
