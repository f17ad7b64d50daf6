#!/bin/sh
# scripts/demo.sh - install what is missing, build, and serve ltibadges on its
# embedded default: sqlite (./ltibadges.db), 127.0.0.1:8080, with the demo
# consumer created if there is none and its key, secret and URLs printed.
# Extra arguments go to `ltibadges serve` (e.g. --listen 127.0.0.1:9090).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh build
# the suite's own dependencies (cmocka, python3-oauthlib) are not needed to serve
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLTIBADGES_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/ltibadges serve --demo "$@"
