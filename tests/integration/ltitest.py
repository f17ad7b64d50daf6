"""Helpers of the integration suite: run the real ltibadges binary, sign LTI
1.1 launches with oauthlib (an implementation independent of ours), send
them over HTTP without following redirects, and read the store's state through the
CLI's --json output (cli_json), whichever engine holds it.

Run the test files with Debian's /usr/bin/python3 (it has python3-oauthlib).
The binary is $LTIBADGES_BIN, by default build/ltibadges of this checkout.

With LTIBADGES_TEST_ENGINE=postgresql the same tests run on PostgreSQL: every database path a
test names (a Server's, or --db PATH of a CLI call) stands for a database of its own on the
throwaway server of LTIBADGES_TEST_DATABASE_URL (tests/pgserver.sh), created at its first use
and dropped with the test's folder; `serve` and the CLI are given its URL
(LTIBADGES_DATABASE_URL) instead of --db. Without the server the module's tests are skipped
(exit 77), except under CI=true, where that is a failure.
"""
import atexit
import base64
import csv
import hashlib
import hmac
import html
import http.client
import io
import json
import os
import re
import secrets
import select
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from oauthlib import oauth1
from oauthlib.oauth1.rfc5849 import signature as oauth_sig

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("LTIBADGES_BIN",
                     os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "ltibadges"))
FORM = "application/x-www-form-urlencoded"
TABLES = (
    "consumers",
    "nonces",
    "users",
    "contexts",
    "resource_links",
    "enrollments",
    "outcome_bindings",
    "sessions",
)
HMAC_SHA1 = oauth1.SIGNATURE_HMAC_SHA1
HMAC_SHA256 = oauth1.SIGNATURE_HMAC_SHA256
# A sanitized build is slower; stopping must still be prompt.
STOP_TIMEOUT = float(os.environ.get("LTIBADGES_STOP_TIMEOUT", "5"))
START_TIMEOUT = 20.0
LISTEN_RE = re.compile(r"^ltibadges: listening on (\S+):(\d+), public URL (\S+), version (\S+)$")
LOCATION_RE = re.compile(r"^(?P<base>.+)/badges\?s=(?P<token>[1-9][0-9]*-[0-9a-f]{64})$")
ENGINE = os.environ.get("LTIBADGES_TEST_ENGINE", "sqlite")
if ENGINE not in ("sqlite", "postgresql"):
    raise SystemExit("LTIBADGES_TEST_ENGINE must be sqlite or postgresql, not %r" % ENGINE)
ON_PG = ENGINE == "postgresql"
PG_SERVER_URL = os.environ.get("LTIBADGES_TEST_DATABASE_URL", "")


def clean_env(extra=None):
    """The environment without LTIBADGES_* settings (which would change defaults), backends'
    secrets (LTIBADGES_BACKEND_*) included, and LTIBADGES_CONFIG empty: no configuration file
    unless a test names one (not even an /etc/ltibadges/ltibadges.ini installed on this
    machine)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LTIBADGES_LISTEN", "LTIBADGES_DB", "LTIBADGES_PUBLIC_URL",
                        "LTIBADGES_SMTP_URL", "LTIBADGES_SMTP_PASSWORD", "LTIBADGES_DATABASE_URL")
           and not k.startswith("LTIBADGES_BACKEND_")}
    env.pop("LTIBADGES_DEBUG", None)
    env["LTIBADGES_CONFIG"] = ""
    if extra:
        env.update(extra)
    return env


def hex_id(nbytes=20):
    return secrets.token_hex(nbytes)


# ---- PostgreSQL ---------------------------------------------------------------

# database path (absolute) -> (database name, URL) on the throwaway server
_pg_databases = {}
_pg_migrated = set()


def need_pg_server():
    """On PostgreSQL without LTIBADGES_TEST_DATABASE_URL: the module's tests skip (exit 77),
    saying why, or fail under CI=true (scripts/test.sh starts the server)."""
    if not ON_PG or PG_SERVER_URL:
        return
    if os.environ.get("CI") == "true":
        raise SystemExit("LTIBADGES_TEST_ENGINE=postgresql without LTIBADGES_TEST_DATABASE_URL "
                         "under CI=true: scripts/test.sh starts a PostgreSQL server for it")
    print("SKIPPED %s: LTIBADGES_TEST_ENGINE=postgresql and LTIBADGES_TEST_DATABASE_URL not set "
          "(scripts/test.sh sets it)" % os.path.basename(sys.argv[0]))
    sys.exit(77)


def require_pg_server():
    """For a test of PostgreSQL itself, whichever engine the others run on: skips it, saying
    why, without LTIBADGES_TEST_DATABASE_URL, or fails under CI=true (scripts/test.sh starts
    the server)."""
    if PG_SERVER_URL:
        return
    if os.environ.get("CI") == "true":
        raise AssertionError("LTIBADGES_TEST_DATABASE_URL is not set under CI=true: "
                             "scripts/test.sh starts a PostgreSQL server for it")
    raise unittest.SkipTest("LTIBADGES_TEST_DATABASE_URL not set (scripts/test.sh sets it)")


def psql(url, sql, tuples_only=False):
    """Runs `sql` with psql on `url`; returns its output (tuples_only: the rows alone,
    unaligned, stripped)."""
    args = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]
    if tuples_only:
        args[1:1] = ["-A", "-t"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql %r: %s" % (sql, p.stderr))
    return p.stdout.strip() if tuples_only else p.stdout


def pg_url_with_database(url, name):
    """`url` (postgresql://user:pw@/db?host=DIR) naming database `name` instead."""
    head, _, q = url.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + ("?" + q if q else "")


def pg_url(db):
    """The URL of the PostgreSQL database that stands for the database path `db`, created
    (empty, not migrated) at its first use."""
    key = os.path.abspath(db)
    if key not in _pg_databases:
        need_pg_server()
        name = "lbit_%d_%s" % (os.getpid(), secrets.token_hex(6))
        psql(PG_SERVER_URL, "CREATE DATABASE %s" % name)
        _pg_databases[key] = (name, pg_url_with_database(PG_SERVER_URL, name))
    return _pg_databases[key][1]


def pg_drop_under(folder=None):
    """Drops the databases of the paths under `folder` (every one without it)."""
    for key in list(_pg_databases):
        if folder is None or key.startswith(os.path.abspath(folder) + os.sep):
            name, _ = _pg_databases.pop(key)
            _pg_migrated.discard(key)
            psql(PG_SERVER_URL, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


atexit.register(pg_drop_under)
need_pg_server()


def db_env(db, env):
    """On PostgreSQL, the environment `env` plus the URL of `db`'s database (and an
    LTIBADGES_DB the test set: its database's URL instead)."""
    env = dict(env or {})
    if env.get("LTIBADGES_DB"):
        env["LTIBADGES_DATABASE_URL"] = pg_url(env.pop("LTIBADGES_DB"))
    if db is not None:
        env["LTIBADGES_DATABASE_URL"] = pg_url(db)
    return env


def db_exists(db):
    """Whether the database `db` names was made (on sqlite, its file)."""
    if ON_PG:
        return os.path.abspath(db) in _pg_migrated
    return os.path.exists(db)


def skip_on_pg(why):
    """Skips the calling test on PostgreSQL, saying why (what it checks is sqlite's alone)."""
    if ON_PG:
        raise unittest.SkipTest("sqlite only: " + why)


# ---- the command line -------------------------------------------------------


def run_cli(*args, env=None, timeout=30):
    """Runs `ltibadges ARGS...`; returns the CompletedProcess (text mode). On PostgreSQL,
    --db PATH (and LTIBADGES_DB in `env`) becomes the URL of PATH's database."""
    args = [str(a) for a in args]
    if ON_PG and (any(a == "--db" or a.startswith("--db=") for a in args) or
                  (env and env.get("LTIBADGES_DB"))):
        db = None
        for i, a in enumerate(args):
            if a == "--db" and i + 1 < len(args):
                db = args[i + 1]
                del args[i:i + 2]
                break
            if a.startswith("--db="):
                db = a[len("--db="):]
                del args[i]
                break
        env = db_env(db, env)
        if db is not None and args[:2] == ["db", "migrate"]:
            _pg_migrated.add(os.path.abspath(db))
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout)


def parse_kv(stdout):
    out = {}
    for line in stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def migrate(db):
    """`db migrate`: creates the database (only it and `serve` do)."""
    p = run_cli("db", "migrate", "--db", db)
    if p.returncode != 0:
        raise AssertionError("db migrate failed (%d): %s" % (p.returncode, p.stderr))


def add_consumer(db, name, key=None, secret=None):
    """`consumer add` (after `db migrate` when there is no database yet); returns (key, secret)
    as printed."""
    if not db_exists(db):
        migrate(db)
    args = ["consumer", "add", name, "--db", db]
    if key is not None:
        args += ["--key", key]
    if secret is not None:
        args += ["--secret", secret]
    p = run_cli(*args)
    if p.returncode != 0:
        raise AssertionError("consumer add failed (%d): %s" % (p.returncode, p.stderr))
    kv = parse_kv(p.stdout)
    return kv["key"], kv["secret"]


# ---- the database -----------------------------------------------------------
#
# The tests read the store's state through the command line's --json output (cli_json,
# counts), whichever engine holds it: a sqlite file or a PostgreSQL database (`db` is then
# its postgresql:// URL). What no command writes is set up with setup_sql, the one helper
# that writes into the database itself.


def is_postgresql(db):
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def db_cli(db, *args, env=None, timeout=30):
    """`ltibadges ARGS...` on the database `db`: a sqlite path (--db) or a PostgreSQL URL
    (LTIBADGES_DATABASE_URL); the CompletedProcess."""
    # (run_cli gives a path its database's URL on PostgreSQL)
    if is_postgresql(db):
        return run_cli(*args, env=dict(env or {}, LTIBADGES_DATABASE_URL=db), timeout=timeout)
    return run_cli(*(list(args) + ["--db", db]), env=env, timeout=timeout)


# The state readers' commands under AddressSanitizer: without LeakSanitizer's scan at exit,
# 45 ms of a command's 110 there, and these are most of the tests' commands. The commands under test keep it (run_cli), and so do the servers.
READER_ASAN_OPTIONS = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")


def cli_json(db, *args):
    """What `ltibadges ARGS... --json` prints on the database `db`, parsed; a failure of the
    command fails the test. A reader of the store's state: in the sanitized build, the command
    runs without leak checks (READER_ASAN_OPTIONS)."""
    p = db_cli(db, *(list(args) + ["--json"]), env={"ASAN_OPTIONS": READER_ASAN_OPTIONS})
    if p.returncode != 0:
        raise AssertionError("ltibadges %s failed (%d): %s"
                             % (" ".join(map(str, args)), p.returncode, p.stderr))
    return json.loads(p.stdout)


def counts(db):
    """How many rows of each kind the store holds (nonces: those claimed, whether the writer
    moved them from its log yet or not), read through `ltibadges db stats --json`: the
    store's own reading, whichever engine holds it, not the database file opened here."""
    n = cli_json(db, "db", "stats")
    return {t: n[t] for t in TABLES}


def awards(db, *filters):
    """`award list --json` (filters: --state S, --badge SLUG, --backend B)."""
    return cli_json(db, "award", "list", *filters)


def award(db, award_id):
    """One award of `award list --json`, by id."""
    got = [a for a in awards(db) if a["id"] == award_id]
    if not got:
        raise AssertionError("no award %r in 'award list'" % award_id)
    return got[0]


def badge(db, slug):
    """`badge show SLUG --json`."""
    return cli_json(db, "badge", "show", slug)


def consumers(db):
    """`consumer list --json` by key."""
    return {c["key"]: c for c in cli_json(db, "consumer", "list")}


def session(db, token):
    """`session show TOKEN --json`: the live session a token "ID-SECRET" names (the store
    finds it by the SHA-256 of SECRET); None when there is none."""
    p = db_cli(db, "session", "show", token, "--json")
    if p.returncode == 1 and "no live session" in p.stderr:
        return None
    if p.returncode != 0:
        raise AssertionError("session show failed (%d): %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def csrf_of(db, token):
    """The CSRF token a form of this session carries (`session show`)."""
    return session(db, token)["csrf"]


def context(db, consumer_key, lti_context_id):
    """`context show --json`: a course of the consumer with its settings, links and badges;
    None when the store has no such course."""
    p = db_cli(db, "context", "show", "--consumer", consumer_key, "--context", lti_context_id,
               "--json")
    if p.returncode == 1 and "not found" in p.stderr:
        return None
    if p.returncode != 0:
        raise AssertionError("context show failed (%d): %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def user(db, consumer_key, lti_user_id):
    """`user show --json`: a user of the consumer with their enrollments and outcome
    bindings; None when the store has no such user."""
    p = db_cli(db, "user", "show", "--consumer", consumer_key, "--user", lti_user_id, "--json")
    if p.returncode == 1 and "not found" in p.stderr:
        return None
    if p.returncode != 0:
        raise AssertionError("user show failed (%d): %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def database_dump(db):
    """The whole database as text (sqlite's dump, or pg_dump's), for checks that a secret is
    stored nowhere in it, whatever the table."""
    if ON_PG and not is_postgresql(db):
        db = pg_url(db)
    if is_postgresql(db):
        p = subprocess.run(["pg_dump", "--data-only", "-d", db], capture_output=True, text=True,
                           timeout=120)
        if p.returncode != 0:
            raise AssertionError("pg_dump failed: %s" % p.stderr)
        return p.stdout
    c = sqlite3.connect(db, timeout=10)
    try:
        return "\n".join(c.iterdump())
    finally:
        c.close()


def _sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    return "'%s'" % str(v).replace("'", "''")


def _sql_bind(sql, args):
    """`sql` with each ? outside quotes replaced by the literal of the next argument."""
    out, args, quoted = [], list(args), False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
        if ch == "?" and not quoted:
            out.append(_sql_literal(args.pop(0)))
        else:
            out.append(ch)
    if args:
        raise AssertionError("more arguments than ? in %r" % sql)
    return "".join(out)


def setup_sql_batch(db, statements):
    """Test set-up only: runs the statements [(SQL, ARGS), ...] (? placeholders) straight on
    the database, in one transaction, to make a state no command makes (a row back-dated, an
    award as the worker leaves a failed one, a hundred learners at once): sqlite3 on a sqlite
    file, psql on PostgreSQL. Returns the rows the last statement returns (INSERT ...
    RETURNING), as dicts. Never a way to read what a test checks: that is cli_json's."""
    if ON_PG and not is_postgresql(db):
        db = pg_url(db)
    if is_postgresql(db):
        # one transaction (-1); only the last statement's rows are printed (\o)
        script = "\\o /dev/null\n" + "".join(_sql_bind(sql, args) + ";\n"
                                             for sql, args in statements[:-1])
        script += "\\o\n" + _sql_bind(*statements[-1]) + ";\n"
        p = subprocess.run(["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "--csv", "-d", db,
                            "-f", "-"], input=script, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError("set-up SQL failed: %s" % p.stderr)
        rows = list(csv.DictReader(io.StringIO(p.stdout)))
        return [{k: int(v) if re.fullmatch(r"-?[0-9]+", v or "") else v for k, v in r.items()}
                for r in rows]
    c = sqlite3.connect(db, timeout=10)
    c.row_factory = sqlite3.Row
    try:
        for sql, args in statements[:-1]:
            c.execute(sql, tuple(args))
        rows = [dict(r) for r in c.execute(statements[-1][0],
                                           tuple(statements[-1][1])).fetchall()]
        c.commit()
        return rows
    finally:
        c.close()


def setup_sql(db, sql, *args):
    """Test set-up only: one statement of setup_sql_batch."""
    return setup_sql_batch(db, [(sql, args)])


def sqlite_file_query(path, sql, *args):
    """The rows of `sql` on the sqlite file `path` itself, for tests of what only a sqlite file
    has (a backup's integrity and journal mode, the schema version of a file no command has
    opened yet): the state of the store is read with cli_json, on either engine."""
    if ON_PG:
        raise unittest.SkipTest("reads a sqlite file's own properties")
    c = sqlite3.connect(path, timeout=10)
    c.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in c.execute(sql, args).fetchall()]
    finally:
        c.close()


# ---- signing ----------------------------------------------------------------


def encode_params(params, plus=True):
    """Form-encodes a list of (name, value) pairs; spaces as '+' or as '%20'."""
    if plus:
        return urlencode(list(params))
    return urlencode(list(params), quote_via=quote)


def sign(url, params, key, secret, method=HMAC_SHA1, nonce=None, timestamp=None,
         callback=None):
    """Signs a launch with oauthlib.oauth1.Client (signature in the body).

    `params` is a list of pairs (repeated names are kept: oauthlib is given
    the encoded body, not a dict) or an already encoded body. `url` is the
    launch URL as the consumer knows it, its query string included: the
    query parameters are signed too. Returns the body to POST.
    """
    body = params if isinstance(params, str) else encode_params(params)
    client = oauth1.Client(key, client_secret=secret,
                           signature_type=oauth1.SIGNATURE_TYPE_BODY,
                           signature_method=method,
                           nonce=nonce,
                           timestamp=None if timestamp is None else str(timestamp),
                           callback_uri=callback)
    _, _, signed = client.sign(url, http_method="POST", body=body,
                               headers={"Content-Type": FORM})
    return signed


def sign_raw(url, raw_body, key, secret, method=HMAC_SHA1, nonce=None, timestamp=None,
             version="1.0", extra_oauth=(), drop=()):
    """Signs a hand-made body byte for byte: the oauth_* parameters are
    appended to `raw_body` as given (nothing is re-encoded) and the signature
    is computed with oauthlib's RFC 5849 primitives over the decoded
    parameters of the URL's query and the body. `drop` names oauth_*
    parameters to leave out; `extra_oauth` adds pairs (e.g. a bad version).
    """
    oauth = [
        ("oauth_consumer_key", key),
        ("oauth_signature_method", method),
        ("oauth_timestamp", str(int(time.time()) if timestamp is None else timestamp)),
        ("oauth_nonce", nonce or secrets.token_hex(16)),
    ]
    if version is not None:
        oauth.append(("oauth_version", version))
    oauth += list(extra_oauth)
    oauth = [(k, v) for k, v in oauth if k not in drop]
    body = raw_body + ("&" if raw_body else "") + urlencode(oauth, quote_via=quote)
    params = oauth_sig.collect_parameters(uri_query=urlsplit(url).query, body=body,
                                          exclude_oauth_signature=True, with_realm=False)
    base = oauth_sig.signature_base_string("POST", oauth_sig.base_string_uri(url),
                                           oauth_sig.normalize_parameters(params))
    client = SimpleNamespace(client_secret=secret, resource_owner_secret="")
    if method == HMAC_SHA256:
        sig = oauth_sig.sign_hmac_sha256_with_client(base, client)
    else:
        sig = oauth_sig.sign_hmac_sha1_with_client(base, client)
    if "oauth_signature" in drop:
        return body
    return body + "&oauth_signature=" + quote(sig, safe="")


def _pct(b):
    """RFC 3986 percent-encoding of bytes (unreserved characters kept)."""
    return quote(b, safe="-._~").encode("ascii")


def sign_bytes(url, pairs, key, secret, method=HMAC_SHA1, nonce=None, timestamp=None):
    """An independent, byte-exact signer (stdlib only) for values oauthlib cannot
    represent, such as bytes that are not UTF-8. `pairs` are (bytes, bytes);
    the launch URL must have no query. Returns the encoded body (bytes)."""
    oauth = [
        (b"oauth_consumer_key", key.encode()),
        (b"oauth_signature_method", method.encode()),
        (b"oauth_timestamp", str(int(time.time()) if timestamp is None else timestamp).encode()),
        (b"oauth_nonce", (nonce or secrets.token_hex(16)).encode()),
        (b"oauth_version", b"1.0"),
    ]
    allp = list(pairs) + oauth
    enc = sorted((_pct(k), _pct(v)) for k, v in allp)
    param_str = b"&".join(k + b"=" + v for k, v in enc)
    base = b"POST&" + _pct(oauth_sig.base_string_uri(url).encode()) + b"&" + _pct(param_str)
    mac = hmac.new(_pct(secret.encode()) + b"&", base,
                   hashlib.sha256 if method == HMAC_SHA256 else hashlib.sha1).digest()
    sig = base64.b64encode(mac)
    body = b"&".join(_pct(k) + b"=" + _pct(v) for k, v in allp)
    return body + b"&oauth_signature=" + _pct(sig)


def body_pairs(body):
    return parse_qsl(body, keep_blank_values=True)


def without(body, name):
    """The encoded body without any parameter called `name` (kept byte for byte otherwise)."""
    parts = [p for p in body.split("&") if p.split("=", 1)[0] != name]
    return "&".join(parts)


def replace_param(body, name, value):
    parts = []
    for p in body.split("&"):
        if p.split("=", 1)[0] == name:
            p = name + "=" + quote(value, safe="")
        parts.append(p)
    return "&".join(parts)


def base_launch(**over):
    """A minimal valid basic-lti-launch-request (before signing)."""
    p = {
        "lti_message_type": "basic-lti-launch-request",
        "lti_version": "LTI-1p0",
        "resource_link_id": "rl-" + hex_id(6),
        "user_id": "u-" + hex_id(6),
        "roles": "Learner",
        "context_id": "ctx-" + hex_id(6),
        "context_title": "Test course",
        "lis_person_name_full": "Test User",
    }
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return list(p.items())


# ---- HTTP -------------------------------------------------------------------


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8")

    @property
    def plain(self):
        """The body with tags removed and entities decoded, for 'does it say X' checks."""
        return html.unescape(re.sub(r"<[^>]*>", " ", self.text))

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, dict(self.headers.items()), self.body[:300])


def http_request(port, method, path, body=None, headers=None, timeout=20, host="127.0.0.1"):
    """One request on a fresh connection; redirects are never followed."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.reason, resp.msg, data)
    finally:
        conn.close()


# ---- the server -------------------------------------------------------------


class Server:
    """`ltibadges serve` on 127.0.0.1, port 0, stderr (the access log) captured in a file."""

    def __init__(self, workdir, db=None, public_url=None, demo=False, config=None, env=None,
                 listen="127.0.0.1:0", args=()):
        self.workdir = workdir
        # db=False: no --db flag (the configuration or the environment names it)
        self.db = os.path.join(workdir, "ltibadges.db") if db is None else db
        self.public_url_arg = public_url
        self.demo = demo
        self.config = config
        self.env = env
        self.listen = listen
        self.args = list(args)
        self.proc = None
        self.port = None
        self.public_url = None
        self.host = None
        self.version = None
        self.banner = []
        self.stderr_path = os.path.join(workdir, "stderr-%s.log" % secrets.token_hex(4))
        self.returncode = None

    def command(self):
        cmd = [BIN, "serve"]
        if self.db is not False and not ON_PG:
            cmd += ["--db", self.db]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.public_url_arg:
            cmd += ["--public-url", self.public_url_arg]
        if self.config:
            cmd += ["--config", self.config]
        if self.demo:
            cmd.append("--demo")
        return cmd + self.args

    def start(self):
        self._err = open(self.stderr_path, "wb")
        env = self.env
        if ON_PG:
            env = db_env(None if self.db is False else self.db, env)
            if self.db is not False:
                _pg_migrated.add(os.path.abspath(self.db))
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=self._err,
                                     env=clean_env(env), cwd=self.workdir)
        deadline = time.monotonic() + START_TIMEOUT
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("server did not print its listening line; stdout %r, "
                                     "stderr %r" % (buf, self.stderr()))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                rc = self.proc.wait(timeout=10)
                self.returncode = rc
                raise AssertionError("server exited (%d) before listening; stdout %r, stderr %r"
                                     % (rc, buf, self.stderr()))
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                m = LISTEN_RE.match(text)
                if m:
                    self.host, self.port, self.public_url = m.group(1), int(m.group(2)), m.group(3)
                    self.version = m.group(4)
                    return self
                self.banner.append(text)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends `sig`, waits; returns (exit code, seconds). Kills it after `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None), 0.0
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        elapsed = time.monotonic() - t0
        self.returncode = rc
        self._close()
        return rc, elapsed

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close()

    def _close(self):
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "_err", None):
            self._err.close()
            self._err = None

    # requests

    def request(self, method, path, body=None, headers=None, **kw):
        return http_request(self.port, method, path, body=body, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post_form(self, body, path="/lti/launch", content_type=FORM, **kw):
        headers = {"Content-Type": content_type} if content_type else {}
        return self.request("POST", path, body=body, headers=headers, **kw)

    @property
    def launch_url(self):
        return self.public_url + "/lti/launch"

    def launch(self, params, key, secret, method=HMAC_SHA1, sign_url=None, path="/lti/launch",
               **kw):
        """Signs `params` for `sign_url` (default: the public launch URL + the query of
        `path`) and POSTs them to `path`."""
        if sign_url is None:
            q = urlsplit(path).query
            sign_url = self.launch_url + ("?" + q if q else "")
        body = sign(sign_url, params, key, secret, method=method, **kw)
        return self.post_form(body, path=path), body

    def page_path(self, location):
        """The local path of a Location the server gave (PUBLIC/badges?s=...)."""
        if not location.startswith(self.public_url + "/badges?s="):
            raise AssertionError("Location %r is not under the public URL %r"
                                 % (location, self.public_url))
        u = urlsplit(location)
        return u.path + "?" + u.query


# ---- test base --------------------------------------------------------------


def png_bytes(w=4, h=4, rgba=(200, 30, 30, 255), extra_chunks=()):
    """A real PNG written by hand (python has no PNG encoder without extra packages)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(rgba) * w for _ in range(h))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
    for t, d in extra_chunks:
        out += chunk(t, d)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class TempDirTest(unittest.TestCase):
    """A temporary directory per test, with a database path in it (not created), the
    servers a test starts (killed at the end) and the CLI's checks."""

    PREFIX = "ltibadges-cli-"
    DB_NAME = "cli.db"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.PREFIX)
        self.db = os.path.join(self.tmp, self.DB_NAME)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill()
        pg_drop_under(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cli(self, *args, env=None):
        return run_cli(*args, env=env)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve(self, **kw):
        kw.setdefault("db", self.db)
        s = Server(self.tmp, **kw).start()
        self.servers.append(s)
        return s

    def stop(self, s):
        rc, _ = s.stop()
        self.assertEqual(rc, 0, s.stderr()[-1500:])

    def assertOk(self, p):
        self.assertEqual(p.returncode, 0, "stdout %r stderr %r" % (p.stdout, p.stderr))
        return p

    def assertOneLineError(self, p, status=None, *phrases):
        """Non-zero exit (the given one if any), one line on stderr naming the reason,
        nothing on stdout; the line."""
        self.assertNotEqual(p.returncode, 0, p)
        if status is not None:
            self.assertEqual(p.returncode, status, p)
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, "one line on stderr, got %r" % p.stderr)
        self.assertTrue(lines[0].strip())
        for ph in phrases:
            self.assertIn(ph, lines[0])
        self.assertEqual(p.stdout, "", "nothing on stdout for an error")
        return lines[0]


class ServerTestCase(unittest.TestCase):
    """One server (and one temporary directory) for a test class; consumers made with the CLI."""

    server_kwargs = {}
    consumers = (("Test LMS", None, None),)
    CONFIG = None  # the text of a configuration file to start the server with

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise AssertionError("no binary at %s (set LTIBADGES_BIN)" % BIN)
        cls.tmp = tempfile.mkdtemp(prefix="ltibadges-it-")
        if cls.CONFIG is not None:
            cfg = os.path.join(cls.tmp, "tool.ini")
            with open(cfg, "w") as f:
                f.write(cls.CONFIG)
            cls.server_kwargs = dict(cls.server_kwargs, config=cfg)
        cls.db = os.path.join(cls.tmp, "ltibadges.db")
        cls.keys = []
        for name, key, secret in cls.consumers:
            cls.keys.append(add_consumer(cls.db, name, key=key, secret=secret))
        cls.key, cls.secret = cls.keys[0]
        cls.server = Server(cls.tmp, db=cls.db, **cls.server_kwargs)
        # when a subclass's setUpClass fails after this, tearDownClass never runs: the class
        # cleanup still stops the server and removes the directory (a no-op after tearDownClass)
        # (cleanups run last first: the databases are dropped after the server stopped)
        cls.addClassCleanup(pg_drop_under, cls.tmp)
        cls.addClassCleanup(cls.server.kill)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        rc, elapsed = cls.server.stop()
        stderr = cls.server.stderr()
        pg_drop_under(cls.tmp)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError("server exited with %r after %.1fs on SIGTERM; stderr tail: %s"
                                 % (rc, elapsed, stderr[-2000:]))

    # assertions shared by the test files

    def assertRedirectToPage(self, resp):
        """A verified launch: 303 to PUBLIC/badges?s=<id>-<64 hex>, no cookie; returns the token."""
        self.assertEqual(resp.status, 303, resp)
        loc = resp.header("Location")
        self.assertIsNotNone(loc, resp)
        m = LOCATION_RE.match(loc)
        self.assertIsNotNone(m, loc)
        self.assertEqual(m.group("base"), self.server.public_url)
        self.assertIsNone(resp.header("Set-Cookie"), "a launch must not rely on cookies")
        return m.group("token")

    def assertRefusal(self, resp, status, *phrases):
        """A short HTML page with the status, naming the reason; never a redirect."""
        self.assertEqual(resp.status, status, resp)
        self.assertIsNone(resp.header("Location"), resp)
        self.assertIsNone(resp.header("Set-Cookie"), resp)
        ctype = resp.header("Content-Type") or ""
        self.assertTrue(ctype.startswith("text/html"), (ctype, resp))
        self.assertLess(len(resp.body), 4096, "a refusal page should be short")
        self.assertIn("<h1>", resp.text)
        plain = resp.plain
        for p in phrases:
            self.assertIn(p, plain, resp)

    def assertNothingWritten(self, before):
        self.assertEqual(counts(self.db), before)

    def page(self, resp):
        """GETs the page a launch redirected to (no cookies); asserts 200 HTML."""
        page = self.server.get(self.server.page_path(resp.header("Location")))
        self.assertEqual(page.status, 200, page)
        self.assertTrue((page.header("Content-Type") or "").startswith("text/html"))
        return page

    def launch(self, params, key=None, secret=None, **kw):
        return self.server.launch(params, key or self.key, secret or self.secret, **kw)[0]


def page_field(page_text, label):
    """The unescaped text of <dt>label</dt><dd>...</dd> on the landing page."""
    m = re.search(r"<dt>%s</dt><dd>(.*?)</dd>" % re.escape(label), page_text, re.S)
    return html.unescape(re.sub(r"<[^>]*>", "", m.group(1))) if m else None


def page_name(page_text):
    m = re.search(r"<strong>(.*?)</strong>", page_text, re.S)
    return html.unescape(m.group(1)) if m else None


def page_view(page_text):
    m = re.search(r'data-view="([a-z]+)"', page_text)
    return m.group(1) if m else None


def sha256(b):
    return hashlib.sha256(b).digest()


def main(skip_status=None):
    """Runs the module's tests. With skip_status (77 for ctest's SKIP_RETURN_CODE), a run in
    which every test was skipped exits with it, after a line per test giving the reason."""
    if skip_status is None:
        unittest.main(verbosity=2)
        return
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and result.testsRun == len(result.skipped):
        for test, why in result.skipped:
            print("SKIPPED %s: %s" % (test.id(), why))
        sys.exit(skip_status)
