#!/bin/sh
# scripts/deps.sh [build|test|bench]... - installs the Debian packages ltibadges
# needs that are missing (apt-get update only when something is missing).
set -eu

pkgs_build="gcc make cmake pkg-config libc6-dev libmicrohttpd-dev libsqlite3-dev
libssl-dev libxml2-dev libjansson-dev libinih-dev libpng-dev libcurl4-openssl-dev
ca-certificates gettext libsystemd-dev libpq-dev"
# nginx and caddy: the README's reverse-proxy examples, run by tests/integration/test_proxy.py
# on loopback ports (where systemd runs, apt also starts their services on ports 80 and 443)
# postgresql: the throwaway server the store's PostgreSQL tests run against (tests/pgserver.sh);
# haproxy: the load balancer in front of several instances on one PostgreSQL database
# groff-base renders the man page (test_manpage); dpkg-dev (dpkg-shlibdeps), file and
# debootstrap build the Debian package and the fresh Debian 12 root it is installed in
pkgs_test="libcmocka-dev python3 python3-oauthlib ruby-oauth python3-aiosmtpd python3-prometheus-client
binutils chromium nodejs npm clang libclang-rt-14-dev openssl nginx caddy
groff-base dpkg-dev file debootstrap postgresql haproxy"
pkgs_bench="wrk python3"

want=""
for set in "$@"; do
    case $set in
    build) want="$want $pkgs_build" ;;
    test) want="$want $pkgs_build $pkgs_test" ;;
    bench) want="$want $pkgs_build $pkgs_bench" ;;
    *) echo "deps.sh: unknown set '$set' (build, test or bench)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    # A Node.js installed some other way (NodeSource's nodejs bundles npm and
    # conflicts with Debian's npm package) serves as well: the commands count.
    case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
    fi
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps.sh: run as root or install:$missing" >&2; exit 1; }
    sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
