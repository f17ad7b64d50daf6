#!/bin/sh
# bench/soak.sh [MINUTES] [BUILD] - a soak of `ltibadges serve` on 127.0.0.1:
# launches, learner pages and grades pushed to /lti/outcomes (which earn
# badges) at 64 connections for MINUTES (10 by default), against the contract
# fake of Moodle's outcomes service. Prints the server's RSS, descriptors, WAL
# and outbox each minute; fails on any error or 5xx, an award missing, doubled
# or not issued, descriptors or RSS growing, or a WAL past its bound
# (bench/soak.py says what it checks).
set -eu
cd "$(dirname "$0")/.."
minutes=${1:-10}
build=${2:-build}
if [ ! -x "$build/ltibadges" ]; then
    cmake -S . -B "$build" -DLTIBADGES_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" >/dev/null
fi
exec /usr/bin/python3 bench/soak.py "$build" "$minutes"
