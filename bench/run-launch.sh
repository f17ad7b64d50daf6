#!/usr/bin/env bash
# bench/run-launch.sh [BUILD_DIR] - the LTI launch benchmark (bench/README.md).
#
# Starts the ceiling (bench/ceiling.c: libmicrohttpd reading the body and
# answering 303, verifying nothing) and `ltibadges serve` on 127.0.0.1 with a
# fresh database, then for 2 and 64 connections runs wrk (2 threads,
# BENCH_DURATION seconds, --latency) against each, every launch pre-signed by
# bench/presign as Moodle (or Canvas) signs it: a fresh nonce and a fresh
# lis_result_sourcedid on every launch, stamped at click time. Two mixes of
# one 50 000-learner, 2 000-course institution, each next to the ceiling
# measured in the same run: "active" (an hour of a term under way: 5 000
# learners active, their launches relaunches after a warm-up that makes them
# all once, 1 in 50 another learner's) and "term" (the start of a term:
# nearly every launch a learner's first on that link). Prints requests/s, the
# ratio to the ceiling, p50, p99, errors, server CPU per launch (in all and
# per server thread) and peak RSS per mix.
#
# Installs nothing. Needs wrk (apt-get install wrk) and, to check that the
# launches were really accepted, the sqlite3 CLI or python3.
# Environment: BENCH_DURATION (default 10), BENCH_CONNS (default "2 64"),
# BENCH_MIXES (default "active term"), BENCH_LMS (moodle, the default, or
# canvas), BENCH_KEEP=1 keeps the temporary directory, BENCH_REPEAT=N measures
# N times (alternating with the ceiling) and reports medians,
# BENCH_ENROLLMENT_RULE=1 runs the launches with a consumer-wide enrollment
# badge active (awards queued and issued). BENCH_METRICS=on (the default)
# scrapes GET /metrics once a second for the whole run, as Prometheus would
# (faster than its usual 15 s); BENCH_METRICS=off serves with `metrics = off`,
# which also counts nothing; BENCH_METRICS=compare measures each mix twice in
# every repetition, without and with the scraper (in turns), as two targets
# next to each other.
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
# utime + stime of PID's threads by thread name ("NAME TICKS" lines): ltibadges names its
# own (lb-writer, lb-checkpoint, ...); MHD's pool threads keep the process' name
thread_ticks() {
    cat /proc/"$1"/task/*/stat 2>/dev/null | awk '{
        i = index($0, "("); j = match($0, /\) [A-Za-z] /)
        name = substr($0, i + 1, j - i - 1); split(substr($0, j + 2), f, " ")
        t[name] += f[12] + f[13] } END { for (n in t) print n, t[n] }'
}
peak_rss_mib() { awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# starts PID's peak RSS over from its current RSS (Linux 4.0 and later; else it keeps growing)
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }
hz=$(getconf CLK_TCK)

# ---- start both servers -------------------------------------------------
"$ceiling" 0 >"$tmp/ceiling.out" 2>"$tmp/ceiling.err" &
ceiling_pid=$!
pids+=("$ceiling_pid")
wait_for "$tmp/ceiling.out" 'listening on' "$ceiling_pid" || die "ceiling did not start: $(cat "$tmp/ceiling.err")"
ceiling_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/ceiling.out")
ceiling_url="http://127.0.0.1:$ceiling_port/lti/launch"

metrics=${BENCH_METRICS:-on}
case $metrics in
on | compare) metrics_key=on ;;
off) metrics_key=off ;;
*) die "BENCH_METRICS must be on, off or compare, not $metrics" ;;
esac
printf '[server]\naccess_log = off\nmetrics = %s\n' "$metrics_key" >"$tmp/ltibadges.ini"
# compare: the scraper waits while this file exists
if [ "$metrics" = compare ]; then
    : >"$tmp/scrape-paused"
fi
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
if [ "$metrics_key" = on ]; then
    # a scraper: GET /metrics once a second while the server runs, each page checked
    server_port=${server_url#http://127.0.0.1:}
    server_port=${server_port%%/*}
    (
        n=0
        while kill -0 "$server_pid" 2>/dev/null; do
            if [ -e "$tmp/scrape-paused" ]; then
                sleep 0.1
                continue
            fi
            if exec 3<>"/dev/tcp/127.0.0.1/$server_port"; then
                printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
                if grep -q '^ltibadges_launches_total{outcome="accepted"}' <&3; then
                    n=$((n + 1))
                    echo "$n" >"$tmp/scrapes"
                fi
                exec 3>&-
            fi
            sleep 1
        done
    ) &
    pids+=("$!")
fi
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
# run NAME PID URL CONNS SECONDS BODIES MODE: sets r_rps r_p50 r_p99 r_reqs r_bad r_sockerr r_exh
# r_cpu_us r_thr (µs per request: http/writer/checkpoint/other threads) r_upto (last line sent)
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
    thread_ticks "$pid" >"$out.threads0"
    t0=$(cpu_ticks "$pid")
    wrk -t"$wrk_threads" -c"$c" -d"${secs}s" --timeout 5s --latency -s "$lua" "$url" \
        -- "$bodies" "$wrk_threads" "$mode" >"$out" 2>&1 || die "wrk failed: $(cat "$out")"
    t1=$(cpu_ticks "$pid")
    thread_ticks "$pid" >"$out.threads1"
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
    # µs per request in each group of server threads: the writer, MHD's pool (and main), the rest
    r_thr=$(awk -v hz="$hz" -v n="$r_reqs" 'FNR == NR { t0[$1] = $2; next } {
        d = $2 - t0[$1]; g = $1 == "lb-writer" ? "writer" : $1 == "lb-checkpoint" ? "ckpt" : \
            $1 !~ /^lb-/ ? "http" : "other"; u[g] += d }
        END { if (n <= 0) { print "-"; exit }
              printf "%.0f/%.0f/%.0f/%.0f", u["http"] / hz * 1e6 / n, u["writer"] / hz * 1e6 / n,
                     u["ckpt"] / hz * 1e6 / n, u["other"] / hz * 1e6 / n }' \
        "$out.threads0" "$out.threads1")
    r_upto=$(awk '/^launch.lua: lines sent up to/ {print $NF}' "$out")
    r_upto=${r_upto:-0}
    if [ -z "$r_rps" ] || [ -z "$r_reqs" ]; then
        die "cannot read wrk's output: $(cat "$out")"
    fi
}

# ---- the ceiling ------------------------------------------------------------
echo "run-launch: ceiling on 127.0.0.1:$ceiling_port, ltibadges on ${server_url%/lti/launch}" >&2
lms=${BENCH_LMS:-moodle}
case $lms in moodle | canvas) ;; *) die "BENCH_LMS must be moodle or canvas, not $lms" ;; esac
mixes=${BENCH_MIXES:-"active term"}
for m in $mixes; do
    case $m in active | term) ;; *) die "BENCH_MIXES: unknown mix $m (active, term)" ;; esac
done
sign() { "$presign" --lms "$lms" "$@"; }
# the ceiling verifies nothing, so it may send its bodies again and again
sign "$key" "$secret" "$ceiling_url" 20000 "$tmp/ceiling-bodies.txt"
declare -A rps p50 p99 bad sockerr exh cpu thr acc reqs rss
ceiling_runs() {
    for c in $conns_list; do
        echo "run-launch: ceiling, $c connections, ${duration}s" >&2
        run ceiling "$ceiling_pid" "$ceiling_url" "$c" "$duration" "$tmp/ceiling-bodies.txt" cycle
        rps[ceiling,$c]=$r_rps p50[ceiling,$c]=$r_p50 p99[ceiling,$c]=$r_p99 bad[ceiling,$c]=$r_bad
        sockerr[ceiling,$c]=$r_sockerr exh[ceiling,$c]=0 cpu[ceiling,$c]=$r_cpu_us acc[ceiling,$c]=-
        reqs[ceiling,$c]=$r_reqs thr[ceiling,$c]=$r_thr
    done
}

# ---- ltibadges --------------------------------------------------------------
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

# Where each mix's launches go on (presign --start): the term's pairs are never
# launched twice, and the warm-up makes each of the active hour's pairs once.
declare -A start=([active]=0 [term]=0 [warm]=0)
declare -A need
active_pairs=40000 # bench/presign.c: 5 000 learners x 4 courses x 2 links

# The active hour's launches are relaunches: first each of its (user, link)
# pairs is launched once, at the highest connection count, unmeasured.
warm_up() {
    local left rounds=0
    while [ "${start[warm]}" -lt "$active_pairs" ] && [ "$rounds" -lt 12 ]; do
        left=$((active_pairs - start[warm]))
        sign --mix warm --start "${start[warm]}" "$key" "$secret" "$server_url" "$left" \
            "$tmp/bodies.txt" 10
        echo "run-launch: warm-up of the active hour, $max_c connections, pairs ${start[warm]}.. of $active_pairs" >&2
        run warmup "$server_pid" "$server_url" "$max_c" 10 "$tmp/bodies.txt" once
        if [ "$r_bad" != 0 ] || [ "$r_sockerr" != 0 ]; then
            echo "run-launch: WARNING: warm-up: $r_bad non-3xx answers, $r_sockerr socket errors" >&2
            status=1
        fi
        start[warm]=$((start[warm] + r_upto))
        rounds=$((rounds + 1))
    done
}

# Every launch may be sent once, so the bodies must outlast the run: a short
# calibration run at the highest connection count tells the mix's rate (the
# term's twice: the first starts on an empty database and ramps up), and each
# measured run gets rate * duration * 2.5 fresh launches (the measured runs go
# faster than the calibration). A run whose launches run out is repeated with
# 4x as many.
calibrate() {
    local m=$1 ncal=30000 runs=0 want=1
    [ "$m" = term ] && want=2
    while :; do
        sign --mix "$m" --start "${start[$m]}" "$key" "$secret" "$server_url" "$ncal" "$tmp/bodies.txt" 2
        echo "run-launch: ltibadges calibration of $m, $max_c connections, 2s, $ncal launches" >&2
        run "calibrate-$m" "$server_pid" "$server_url" "$max_c" 2 "$tmp/bodies.txt" once
        start[$m]=$((start[$m] + r_upto))
        runs=$((runs + 1))
        if [ "$r_exh" != 0 ] && [ "$ncal" -lt 480000 ]; then
            ncal=$((ncal * 4))
            continue
        fi
        [ "$runs" -ge "$want" ] && break
    done
    need[$m]=$(awk -v r="$r_rps" -v d="$duration" 'BEGIN { n = int(r * d * 2.5); if (n < 10000) n = 10000; print n }')
}

# the launches' timestamps spread over the run's duration, as an LMS stamps each launch when it
# is clicked; the measured runs go faster than the calibration and send only part of the bodies,
# so the stamps they send are, if anything, denser than those of real launches at that rate
# ltibadges_runs MIX [KEY]: the results go under KEY (MIX by default)
ltibadges_runs() {
    local mix=$1 m=${2:-$1} before after
    reset_peak_rss "$server_pid"
    for c in $conns_list; do
        sign --mix "$mix" --start "${start[$mix]}" "$key" "$secret" "$server_url" "${need[$mix]}" \
            "$tmp/bodies.txt" "$duration"
        before=$(count_sessions "$tmp/bench.db")
        echo "run-launch: ltibadges, $m, $c connections, ${duration}s, ${need[$mix]} fresh launches" >&2
        run "$m" "$server_pid" "$server_url" "$c" "$duration" "$tmp/bodies.txt" once
        start[$mix]=$((start[$mix] + r_upto))
        sleep 0.2 # launches answered after wrk stopped still commit; count them too
        after=$(count_sessions "$tmp/bench.db")
        rps[$m,$c]=$r_rps p50[$m,$c]=$r_p50 p99[$m,$c]=$r_p99
        bad[$m,$c]=$r_bad sockerr[$m,$c]=$r_sockerr exh[$m,$c]=$r_exh
        cpu[$m,$c]=$r_cpu_us thr[$m,$c]=$r_thr reqs[$m,$c]=$r_reqs
        if [ "$before" -ge 0 ] && [ "$after" -ge 0 ]; then
            acc[$m,$c]=$((after - before))
        else
            acc[$m,$c]=-
        fi
    done
    # the peak of this mix's runs; the highest of the repetitions is reported
    r=$(peak_rss_mib "$server_pid")
    rss[$m]=$(awk -v a="${rss[$m]:-0}" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
}

# The checks of one repetition: every answer a 3xx, no socket error, no thread out of
# launches, one stored session per answer. Sets status=1 and warns otherwise.
status=0
check_runs() {
    local m=$1 a
    for c in $conns_list; do
        if [ "${bad[$m,$c]}" != 0 ] || [ "${sockerr[$m,$c]}" != 0 ]; then
            echo "run-launch: WARNING: ltibadges ($m) at $c connections: ${bad[$m,$c]} non-3xx answers, ${sockerr[$m,$c]} socket errors" >&2
            status=1
        fi
        if [ "${exh[$m,$c]}" != 0 ]; then
            echo "run-launch: WARNING: ltibadges ($m) at $c connections ran out of pre-signed launches: its rate is a lower bound" >&2
            status=1
        fi
        a=${acc[$m,$c]}
        if [ "$a" != - ]; then
            # every answered request must be a stored session (a few more: answered after wrk stopped)
            if [ "$a" -lt "${reqs[$m,$c]}" ] || [ "$a" -gt $((${reqs[$m,$c]} + c + 2)) ]; then
                echo "run-launch: WARNING: ltibadges ($m) at $c connections: $a sessions stored for ${reqs[$m,$c]} requests" >&2
                status=1
            fi
        fi
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
# shellcheck disable=SC2086 # $1 is a list of words
median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# the medians of "a/b/c/d" strings, field by field
median_thr() {
    local out='' k
    for k in 1 2 3 4; do
        # shellcheck disable=SC2086 # $1 is a list of words
        out+="$(median "$(printf '%s\n' $1 | cut -d/ -f$k)")/"
    done
    echo "${out%/}"
}

# The start of a term comes first, on the empty database; the active hour's
# warm-up then makes its pairs (learners the term mix never launches).
ordered=
for m in term active; do
    case " $mixes " in *" $m "*) ordered+=" $m" ;; esac
done
for m in $ordered; do
    [ "$m" = active ] && warm_up
    calibrate "$m"
done
# compare: each mix measured again with the scraper on, as a target of its own
targets=$ordered
if [ "$metrics" = compare ]; then
    targets=
    for m in $ordered; do
        targets+=" $m $m+scraped"
    done
fi
# a mix's two measures in one repetition, in turns: without the scraper first on odd ones
measure() {
    local m=$1 rep=$2 order="off on" s
    [ $((rep % 2)) = 0 ] && order="on off"
    for s in $order; do
        if [ "$s" = off ]; then
            : >"$tmp/scrape-paused"
            ltibadges_runs "$m"
            check_runs "$m"
        else
            rm -f "$tmp/scrape-paused"
            ltibadges_runs "$m" "$m+scraped"
            check_runs "$m+scraped"
        fi
    done
    : >"$tmp/scrape-paused"
}

# BENCH_REPEAT=N: the ceiling and ltibadges measured N times, alternately (the
# machine's speed drifts; a ceiling measured next to each run keeps the ratio
# honest); the report gives the medians and every repetition's ratio.
repeat=${BENCH_REPEAT:-1}
declare -A all_rps all_p50 all_p99 all_cpu all_thr all_ratio
for rep in $(seq 1 "$repeat"); do
    [ "$repeat" -gt 1 ] && echo "run-launch: repetition $rep of $repeat" >&2
    ceiling_runs
    for m in $ordered; do
        if [ "$metrics" = compare ]; then
            measure "$m" "$rep"
        else
            ltibadges_runs "$m"
            check_runs "$m"
        fi
    done
    for t in ceiling $targets; do
        for c in $conns_list; do
            all_rps[$t,$c]+=" ${rps[$t,$c]}" all_p50[$t,$c]+=" ${p50[$t,$c]}"
            all_p99[$t,$c]+=" ${p99[$t,$c]}" all_cpu[$t,$c]+=" ${cpu[$t,$c]}"
            all_thr[$t,$c]+=" ${thr[$t,$c]}"
            [ "$t" = ceiling ] || all_ratio[$t,$c]+=" $(ratio "${rps[$t,$c]}" "${rps[ceiling,$c]}")"
        done
    done
done
if [ "$repeat" -gt 1 ]; then
    for t in ceiling $targets; do
        for c in $conns_list; do
            rps[$t,$c]=$(median "${all_rps[$t,$c]}") p50[$t,$c]=$(median "${all_p50[$t,$c]}")
            p99[$t,$c]=$(median "${all_p99[$t,$c]}") cpu[$t,$c]=$(median "${all_cpu[$t,$c]}")
            thr[$t,$c]=$(median_thr "${all_thr[$t,$c]}")
        done
    done
fi

# the write-ahead log should stay bounded under load (the checkpointer keeps up)
db_mib=$(du -m "$tmp/bench.db" | cut -f1)
wal_mib=$(du -m "$tmp/bench.db-wal" 2>/dev/null | cut -f1 || echo 0)
rss[ceiling]=$(peak_rss_mib "$ceiling_pid")
if [ "$repeat" -gt 1 ]; then
    for t in $targets; do
        for c in $conns_list; do
            all_ratio[$t,$c]=$(median "${all_ratio[$t,$c]}")" (each:${all_ratio[$t,$c]})"
        done
    done
fi

# ---- report -----------------------------------------------------------------
declare -A label=([ceiling]="ceiling" [active]="ltibadges, active hour" [term]="ltibadges, start of term"
    [active+scraped]="ltibadges, active hour, /metrics scraped" [term+scraped]="ltibadges, start of term, /metrics scraped")
echo
echo "LTI launch benchmark: $(nproc) cores, wrk -t$wrk_threads -d${duration}s, launches signed as $lms signs them (bodies ~$(awk '{n += length($0)} END {printf "%.1f", n / NR / 1024}' "$tmp/bodies.txt") KiB, a fresh sourcedid each), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "| target | conns | requests/s | × ceiling | p50 ms | p99 ms | requests | sessions stored | non-3xx | socket errors | server CPU µs/launch | µs/launch by thread: http/writer/ckpt/other | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in ceiling $targets; do
    for c in $conns_list; do
        echo "| ${label[$t]} | $c | ${rps[$t,$c]} | $(ratio "${rps[$t,$c]}" "${rps[ceiling,$c]}") | ${p50[$t,$c]} | ${p99[$t,$c]} | ${reqs[$t,$c]} | ${acc[$t,$c]} | ${bad[$t,$c]} | ${sockerr[$t,$c]} | ${cpu[$t,$c]} | ${thr[$t,$c]} | ${rss[$t]} |"
    done
done
echo
lo=$min_c
hi=$max_c
echo "| target | × ceiling at $lo conns | × ceiling at $hi conns | p99 ms at $hi | server CPU µs/launch at $hi | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
echo "| ceiling | 1.000 | 1.000 | ${p99[ceiling,$hi]} | ${cpu[ceiling,$hi]} | ${rss[ceiling]} |"
for t in $targets; do
    echo "| ${label[$t]} | $(ratio "${rps[$t,$lo]}" "${rps[ceiling,$lo]}") | $(ratio "${rps[$t,$hi]}" "${rps[ceiling,$hi]}") | ${p99[$t,$hi]} | ${cpu[$t,$hi]} | ${rss[$t]} |"
done
echo
if [ "$repeat" -gt 1 ]; then
    echo "Medians of $repeat repetitions (requests/s, p50, p99, CPU; requests, sessions and errors"
    echo "are the last repetition's; peak RSS the highest). × ceiling, median (each repetition):"
    for t in $targets; do
        for c in $conns_list; do
            echo "- ${label[$t]}, $c connections: ${all_ratio[$t,$c]}"
        done
    done
    echo
fi
echo "ltibadges' database after the runs: ${db_mib} MiB, write-ahead log ${wal_mib} MiB"
if [ "$metrics" = compare ]; then
    echo "metrics: on; each mix measured without and with GET /metrics scraped once a second, in turns ($(cat "$tmp/scrapes" 2>/dev/null || echo 0) pages read)."
    echo "Scraped ÷ not scraped, in the same repetition (median, then each):"
    for m in $ordered; do
        for c in $conns_list; do
            # shellcheck disable=SC2086 # lists of words
            rr=$(paste -d' ' <(printf '%s\n' ${all_rps[$m+scraped,$c]}) <(printf '%s\n' ${all_rps[$m,$c]}) |
                awk '{ printf " %.3f", $1 / $2 }')
            # shellcheck disable=SC2086
            cr=$(paste -d' ' <(printf '%s\n' ${all_cpu[$m+scraped,$c]}) <(printf '%s\n' ${all_cpu[$m,$c]}) |
                awk '{ printf " %.3f", $1 / $2 }')
            echo "- ${label[$m]}, $c connections: requests/s $(median "$rr") (each:$rr), server CPU per launch $(median "$cr") (each:$cr)"
        done
    done
elif [ "$metrics" = on ]; then
    echo "metrics: on, GET /metrics scraped once a second ($(cat "$tmp/scrapes" 2>/dev/null || echo 0) pages read)"
else
    echo "metrics: off (nothing counted, nothing served)"
fi
echo

exit $status
