#!/bin/sh
# scripts/test.sh - install what is missing, build with warnings as errors,
# and run the suite in three builds: gcc RelWithDebInfo (every test), gcc
# Release (unit tests), and clang under AddressSanitizer and
# UndefinedBehaviorSanitizer (LeakSanitizer included; every test but the
# package and the style check); then each fuzz target
# over its seeds and for a few seconds (scripts/fuzz.sh). A throwaway
# PostgreSQL server runs for the whole suite (tests/pgserver.sh). The browser tests
# (tests/browser) need the npm packages of their lock file: npm ci below.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh test
jobs=$(nproc)
# ctest runs twice as many tests as there are cores: the integration tests spend most of their
# time waiting on the server and the platforms' fakes (test_obf_e2e_faults: 70 s, 20 s of CPU),
# and the plain build's run took 231 s at -j4 against 364 s at -j2 on 2 cores

# The browser tests' npm packages (tests/browser/package-lock.json), installed
# again only when node_modules is missing or older than the lock file.
if [ ! -f tests/browser/node_modules/.package-lock.json ] ||
    [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    echo "== npm ci (tests/browser)"
    (cd tests/browser && CI=true npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

# A throwaway PostgreSQL server (tests/pgserver.sh) for the store's PostgreSQL tests, stopped
# and removed at the end whatever happens (the trap); its URL goes to the tests, which fail
# without it when CI=true.
pgdir=$(mktemp -d /tmp/ltibadges-pg.XXXXXX)
trap 'sh tests/pgserver.sh stop "$pgdir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo "== PostgreSQL test server ($pgdir)"
LTIBADGES_TEST_DATABASE_URL=$(sh tests/pgserver.sh start "$pgdir")
export LTIBADGES_TEST_DATABASE_URL

# One configuration: build it with warnings as errors and run the tests in it whose
# names match $2 (a ctest regex; '.' for all) and not $3 (one; '^$' for none).
suite() {
    dir=$1
    only=$2
    except=$3
    shift 3
    cmake -S . -B "$dir" -DLTIBADGES_TESTS=ON -DLTIBADGES_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    (cd "$dir" &&
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --output-on-failure -j"$((jobs * 2))" -R "$only" -E "$except")
    # ctest names a skipped test but not why: the tests print it (SKIPPED NAME: REASON)
    grep -h '^SKIPPED ' "$dir/Testing/Temporary/LastTest.log" || true
}

# What users and packagers build: gcc's RelWithDebInfo (the default), every test; gcc's
# Release, whose optimizer warns of more (maybe-uninitialized, format-truncation), built with
# warnings as errors and its unit tests run (the integration and browser tests drive the
# same server the plain build's run drove); then clang under the sanitizers, at -O1 (as
# AddressSanitizer advises: its reports are as exact, and the tests' servers run faster than
# at -O0), every unit and integration test but the integration tests' PostgreSQL variants
# (integration_*_pg: the plain run drove the same server code on PostgreSQL, and they would
# add minutes to the sanitized run; the store's unit tests run there on both engines). Not
# there either: the static style check (the plain run did it) and the browser flows, whose
# requests to the server the integration tests make too (the flows check what a browser does
# with the pages: the plain run did it; each runs a chromium, a third of a core for minutes).
# The Debian package's test (package_deb: its own /usr build, debootstrap, dpkg) runs in the
# first only.
echo "== plain build (gcc, RelWithDebInfo)"
suite build . '^$' -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== release build (gcc, Release): unit tests"
suite build-release '^(unit_|oauthlib_)' '^$' -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release \
    -DLTIBADGES_TEST_PACKAGE=OFF
echo "== sanitized build (clang, ASan + UBSan)"
suite build-clang-asan '^(unit_|oauthlib_|integration_|i18n_)' '^integration_.*_pg$' \
    -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG='-g -O1' \
    -DLTIBADGES_SANITIZE=ON \
    -DLTIBADGES_TEST_PACKAGE=OFF

echo "== fuzz targets (clang, ASan + UBSan): seeds, then ${LTIBADGES_FUZZ_SECONDS:-5} s each"
sh scripts/fuzz.sh "${LTIBADGES_FUZZ_SECONDS:-5}"
