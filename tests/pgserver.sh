#!/bin/sh
# tests/pgserver.sh start|stop|restart|down|up DIR - a throwaway PostgreSQL server for the tests.
#
# start: runs Debian's initdb in DIR/data (DIR: an empty folder, made when missing), starts
# the server listening only on a Unix socket in DIR (no TCP: listen_addresses is empty, and
# the socket is the owner's only), creates the database "ltibadges" owned by the user
# "ltibadges" (a random password, scram-sha-256) and prints its URL on stdout:
#   postgresql://ltibadges:PASSWORD@/ltibadges?host=DIR
# The server is made for tests: fsync off (nothing in it outlives the run), a small memory;
# with PGSERVER_DURABLE=1 it syncs as a production server does (bench/run-pg.py).
# stop: stops that server (if it runs) and removes DIR. Both may run twice.
# restart: pg_ctl restart -m fast (every connection ended, the server back when it returns);
# down: stops the server, keeping DIR (its clients find no socket); up: starts it again. For
# the tests of a database restarted or unreachable under a running `serve`.
#
# PostgreSQL refuses to run as root: as root (the suite in CI) the server runs as `nobody`
# through setpriv (util-linux, in every Debian root, chroots included: no PAM, no login
# session as runuser and su need), and DIR is given to it; as any other user, as that user.
# The binaries: the newest of /usr/lib/postgresql/*/bin (Debian's postgresql package).
set -eu

usage() {
    echo "usage: tests/pgserver.sh start|stop|restart|down|up DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
case $dir in
/*) ;;
*) dir=$(pwd)/$dir ;;
esac

bin=""
for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] || continue
    # the highest major version (the glob sorts 9 after 15; compare numerically)
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    if [ -z "$bin" ] || [ "$v" -gt "$best" ] 2>/dev/null; then
        bin=$d
        best=$v
    fi
done

# as_owner CMD...: runs CMD as the server's owner
if [ "$(id -u)" -eq 0 ]; then
    # from / : nobody may not enter the caller's folder (root's home), and initdb and the
    # server say so ("could not change directory") though they need nothing there
    as_owner() { (cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"); }
else
    as_owner() { "$@"; }
fi

# the server's settings, the same at every start; PGSERVER_DURABLE=1 (the benchmarks): fsync,
# synchronous commits and full page writes on, as a production server runs, and more memory
server_opts() {
    if [ "${PGSERVER_DURABLE:-0}" = 1 ]; then
        echo "-c listen_addresses='' -k $dir -c unix_socket_permissions=0700 \
-c shared_buffers=256MB -c max_connections=200"
    else
        echo "-c listen_addresses='' -k $dir -c unix_socket_permissions=0700 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200"
    fi
}

case $cmd in
start)
    if [ -z "$bin" ]; then
        echo "pgserver.sh: no PostgreSQL under /usr/lib/postgresql/*/bin (sh scripts/deps.sh test installs it)" >&2
        exit 1
    fi
    mkdir -p "$dir"
    if [ -e "$dir/data" ]; then
        echo "pgserver.sh: $dir/data exists already" >&2
        exit 1
    fi
    # the socket's path must fit in sockaddr_un (107 bytes): DIR/.s.PGSQL.5432
    if [ ${#dir} -gt 80 ]; then
        echo "pgserver.sh: '$dir' is too long for a Unix socket's path (80 bytes at most)" >&2
        exit 1
    fi
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir"
    pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077 && printf '%s\n' "$pw" >"$dir/pwfile")
    [ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U ltibadges --pwfile="$dir/pwfile" \
        --auth-local=scram-sha-256 --auth-host=reject -E UTF8 --locale=C.UTF-8 \
        >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    rm -f "$dir/pwfile"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(server_opts)" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    PGPASSWORD=$pw as_owner "$bin/createdb" -h "$dir" -U ltibadges ltibadges
    echo "postgresql://ltibadges:$pw@/ltibadges?host=$dir"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ] && [ -n "$bin" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
restart | down | up)
    [ -f "$dir/data/PG_VERSION" ] || {
        echo "pgserver.sh: no server in $dir (start it first)" >&2
        exit 1
    }
    case $cmd in
    restart) set -- -m fast restart ;;
    down) set -- -m fast stop ;;
    up) set -- start ;;
    esac
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$(server_opts)" \
        "$@" >/dev/null || {
        tail -n 20 "$dir/server.log" >&2
        exit 1
    }
    ;;
*) usage ;;
esac
