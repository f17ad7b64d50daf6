"""A contract fake of Open Badge Factory's REST API, v2 (OAuth2 client
credentials) and v1 (client certificates), for the integration suite.
Standard library and the `openssl` command only; it listens on 127.0.0.1
alone, over TLS with certificates of CAs the test makes (make_pki()).

Written from OBF's public documentation and from reading OBF's Moodle plugin
(github.com/openbadgefactory/moodle-local_obf); no code is copied. Each
behaviour names its source in a comment:
  [v1doc]   OBF REST API v1 (../../../shared/seeds/002_*.txt): paths, fields,
            line-delimited lists, return codes 201/204/400/403/404/405/411/413/
            429 + Retry-After/495/496/500/503, meta: filters, Location ids.
  [v2doc]   OBF API v2 as issue 20 quotes openbadgefactory.com/obf-api-v2:
            the token endpoint (form, client credentials, id and secret in the
            body or HTTP Basic, short-lived tokens, at most one per client
            every ten seconds), {result, total} pages, limit <= 1000.
  [plugin]  classes/client.php at HEAD (v2): the token request, Bearer auth,
            badge and event paths, the issue body, revoke, recipient look-up.
  [plugin1] classes/client.php at 790d48a (the last v1 client, 2025-02):
            /v1/ping/{client}, SSLCERT/SSLKEY, decode_ldjson (CRLF lines),
            authenticate(): OBF.rsa.pub, public_decrypt with PKCS#1 padding,
            JSON `id`, a CSR with commonName = id, sign_request {signature,
            request} answered 200 with the PEM, errors as {"error": ...}.
  [fixtures] tests/fixtures/responses/*_v2_*.json at HEAD: the shapes of v2
            answers (resource_id, {result, total}, recipient rows with
            assertion_json_url, log_entry as a JSON string, the badge).
Where none of these says what OBF answers (the status of a token request
within the ten seconds, v2 error bodies, the API key's expiry field), the
fake says it chose ("[fake]").

    pki = make_pki(tmpdir)                          # CAs, server cert, OBF's RSA key
    fake = ObfFake(pki)
    cid, secret = fake.add_client("Example U")      # v2 credentials
    cert = fake.mint_client_cert(cid, tmpdir)       # v1 certificate + key
    with fake:
        ... the client talks to fake.base_url ...
        fake.badges(cid); fake.events(cid)          # state, for assertions
        fake.wait_for(lambda r: r.path.endswith("/issue") and r.status == 201)

Faults are queued (add_fault, or POST /_fake/faults), matched by method and
a path regex, taken by the next matching request: status (429 + Retry-After,
500, 503, ...), hang (until release() or stop(), no answer), drop (no
answer, nothing done), lost (the work done - a badge or event created - then
the connection closed without an answer), hang_after (the work done, then a
hang, then no answer), unauthorized (one 401 on an API call), token_refused
(a token request refused: 401 invalid_client), expired_cert (a v1 request
answered 495 as if its certificate had expired). Controls: expire_tokens(),
advance() (the fake's clock: tokens, certificates, API keys and the
ten-second token limit follow it), release(). The state API (badges, events,
records, GET /_fake/state) reads; it never creates, issues or lets a request
past a check.
"""
import base64
import binascii
import dataclasses
import http.client
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from badgrfake import EMAIL_RE, data_uri_png, png_ok, svg_ok, tiny_png  # noqa: E402,F401

MAX_BODY = 67108864                 # [v1doc] 413: POST and PUT bodies are limited to 64 MiB
TOKEN_LIFETIME = 3600               # [fake] "short-lived" ([v2doc]); the number is the fake's
TOKEN_INTERVAL = 10                 # [v2doc] at most one token per client every ten seconds
MAX_LIMIT = 1000                    # [v2doc] [plugin] "OBF v2 API max 1000"; [v1doc] limit
API_KEY_LIFETIME = 600              # [fake] an API key is valid for minutes (issue 20)
CLIENT_CERT_DAYS = 730              # [fake] how long a signed client certificate lasts
FAULT_KINDS = ("status", "hang", "drop", "lost", "hang_after", "unauthorized",
               "token_refused", "expired_cert")
EMAIL_KEYS = ("email_subject", "email_body", "email_link_text", "email_footer")
MESSAGE_KEYS = ("subject", "body", "link_text", "footer")
ROGUE_CN = "obffake rogue CA"
CLIENT_CA_CN = "obffake client CA"
NO_CHECK_TIME = 0x200000            # X509_V_FLAG_NO_CHECK_TIME: expiry is checked by the fake


# ---- records ----------------------------------------------------------------


@dataclasses.dataclass
class Record:
    """One request the fake received and what it answered. `status` is None
    when no answer went out (drop, lost, hang); `done` is True when the
    request's work happened (a badge or event created, updated, revoked)
    whether or not the answer was delivered."""
    time: float
    method: str
    path: str
    query: str
    headers: list
    body: bytes
    api: str = None             # "v1", "v2" or None
    json: object = None
    client: str = None          # the authenticated client id
    cert_cn: str = None         # v1: the client certificate's commonName
    conn: int = 0               # the connection's number (one TLS handshake each)
    fault: str = None
    status: int = None
    response_headers: list = dataclasses.field(default_factory=list)
    response_body: bytes = b""
    delivered: bool = True
    done: bool = False
    entity: str = None          # the badge or event id created or acted upon

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def answer(self):
        try:
            return json.loads(self.response_body)
        except ValueError:
            return None


class _Answer:
    def __init__(self, status, body=b"", content_type="application/json", headers=()):
        self.status = status
        if not isinstance(body, bytes):
            body = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)


def obf_id():
    """Ids as OBF's look ([fixtures] "SZWOJFaTPKMa4"): 13 upper-case letters and digits."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(13))


def _openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.decode("utf-8", "replace")))
    return r.stdout


# ---- PKI --------------------------------------------------------------------------


def make_pki(directory):
    """Makes, with the openssl command: a server CA and a server certificate for
    127.0.0.1 (`ca` is what a client verifies the fake with), OBF's client CA
    (signs client certificates; `client_ca`, `client_ca_key`), a rogue CA whose
    certificates pass the handshake only so that the fake can answer 495 for
    them as OBF does, and OBF's RSA key pair (`rsa_key`, `rsa_pub`: the API
    keys are encrypted with it, [v1doc] "Get our public RSA key")."""
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, "obffake-" + n)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    for name, cn in (("ca", "obffake server CA"), ("client-ca", CLIENT_CA_CN),
                     ("rogue-ca", ROGUE_CN)):
        _openssl("req", "-x509", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".pem"),
                 "-days", "3650", "-subj", "/CN=" + cn, *ca_ext)
    _openssl("req", *ec, "-keyout", p("server.key"), "-out", p("server.csr"),
             "-subj", "/CN=127.0.0.1")
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n")
    _openssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
             "-set_serial", str(secrets.randbits(63)), "-out", p("server.pem"), "-days", "2",
             "-extfile", p("server.ext"))
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", p("obf-rsa.key"))
    _openssl("pkey", "-in", p("obf-rsa.key"), "-pubout", "-out", p("obf-rsa.pub"))
    return {"dir": directory, "ca": p("ca.pem"), "cert": p("server.pem"), "key": p("server.key"),
            "client_ca": p("client-ca.pem"), "client_ca_key": p("client-ca.key"),
            "rogue_ca": p("rogue-ca.pem"), "rogue_ca_key": p("rogue-ca.key"),
            "rsa_key": p("obf-rsa.key"), "rsa_pub": p("obf-rsa.pub")}


def _sign_csr(pki, csr_path, out_path, days, rogue=False):
    ca = "rogue_ca" if rogue else "client_ca"
    ext = out_path + ".ext"
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n")
    _openssl("x509", "-req", "-in", csr_path, "-CA", pki[ca], "-CAkey", pki[ca + "_key"],
             "-set_serial", str(secrets.randbits(63)), "-days", str(days), "-out", out_path,
             "-extfile", ext)


def mint_client_cert(pki, client_id, directory, days=CLIENT_CERT_DAYS, rogue=False,
                     expired=False, name=None):
    """A client key and certificate with commonName = client_id ([plugin1] the
    CSR's DN), signed by OBF's client CA (or the rogue CA: OBF answers 495);
    expired=True: its notAfter is yesterday. Returns {"cert", "key"} paths,
    the key 0600."""
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, name or "client-%s-%s" % (client_id, secrets.token_hex(3)))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + client_id)
    os.chmod(base + ".key", 0o600)
    _sign_csr(pki, base + ".csr", base + ".pem", -1 if expired else days, rogue)
    return {"cert": base + ".pem", "key": base + ".key"}


def rsa_private_encrypt(pki, data):
    """RSA 'private encrypt' with PKCS#1 v1.5 padding (what [v1doc]'s Perl
    public_decrypt and [plugin1]'s openssl_public_decrypt undo)."""
    return _openssl("pkeyutl", "-sign", "-inkey", pki["rsa_key"], "-pkeyopt",
                    "rsa_padding_mode:pkcs1", data=data)


def rsa_public_decrypt(pki, blob):
    """The reverse, with OBF's public key; raises RuntimeError when it does not decrypt."""
    return _openssl("pkeyutl", "-verifyrecover", "-pubin", "-inkey", pki["rsa_pub"],
                    "-pkeyopt", "rsa_padding_mode:pkcs1", data=blob)


# ---- the HTTP server -------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def get_request(self):
        sock, addr = super().get_request()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK hold each answer ~40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.fake._tls_ctx.wrap_socket(sock, server_side=True,
                                              do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass                     # a client that fails the handshake is no error of the fake


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ObfFake/1.0"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def setup(self):
        super().setup()
        self.conn_no = self.server.fake._conn_opened(self.connection)
        # the handshake now rather than at the first read, to count it: a full one,
        # or a resumed session (a ticket or id the client kept from an earlier one)
        try:
            self.connection.do_handshake()
        except (OSError, ValueError):
            return          # handle() meets the broken connection and ends it, as before
        self.server.fake._handshake_done(self.connection.session_reused)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._conn_closed(self.connection)

    def _dispatch(self):
        self.server.fake._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


# ---- the fake --------------------------------------------------------------------


class ObfFake:
    """The fake OBF server, both API versions on one TLS port (as
    openbadgefactory.com serves both).

    pki: make_pki()'s dict.
    token_lifetime: expires_in of new v2 access tokens (seconds).
    token_interval: the least time between two tokens of one client ([v2doc] 10 s).
    origin: the host the assertion URLs name (default: base_url).
    """

    def __init__(self, pki, *, token_lifetime=TOKEN_LIFETIME, token_interval=TOKEN_INTERVAL,
                 origin=None, port=0):
        self.pki = pki
        self.host = "127.0.0.1"
        self.port = port
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["cert"], pki["key"])
        # [v1doc] 496 when no certificate, 495 when an invalid one: as nginx's
        # ssl_verify_client optional, the handshake goes on and the answer says
        # so. Python has no verify callback, so the rogue CA is trusted at the
        # TLS layer and told apart by the fake, and time is not checked there
        # (the fake checks it against its own clock).
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(pki["client_ca"])
        ctx.load_verify_locations(pki["rogue_ca"])
        ctx.verify_flags |= NO_CHECK_TIME
        self._tls_ctx = ctx
        self.token_lifetime = token_lifetime
        self.token_interval = token_interval
        self.origin = origin
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._release = threading.Event()
        self._server = None
        self._thread = None
        self._conns = set()
        self._conn_count = 0
        self._handshakes = {"full": 0, "resumed": 0}
        self._hanging = 0
        self._offset = 0.0
        self._records = []
        self._faults = []
        self.clients = {}                # client id -> {...}
        self._badges = {}                # badge id -> {...}
        self._events = {}                # event id -> {...}
        self._tokens = {}                # access token -> {"client", "expires"}
        self._last_token = {}            # client id -> time of its last token
        self._api_keys = []              # the API keys minted (for state only)
        self._seq = 0                    # creation order of badges and events
        self.mailed = []                 # (email, event id): the e-mails OBF sent
        with open(pki["rsa_pub"]) as f:
            self.rsa_pub_pem = f.read()

    # -- life cycle --

    def start(self):
        with self._lock:
            if self._release.is_set():
                self._release = threading.Event()
        srv = _Server((self.host, self.port), _Handler)
        srv.fake = self
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="obffake-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving: hung requests end (no answer), open connections close."""
        with self._lock:
            self._release.set()
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _conn_opened(self, c):
        with self._lock:
            self._conns.add(c)
            self._conn_count += 1
            return self._conn_count

    def _handshake_done(self, resumed):
        with self._lock:
            self._handshakes["resumed" if resumed else "full"] += 1

    @property
    def handshakes(self):
        """The TLS handshakes completed so far: {"full": n, "resumed": m}."""
        with self._lock:
            return dict(self._handshakes)

    def _conn_closed(self, c):
        with self._lock:
            self._conns.discard(c)

    @property
    def base_url(self):
        return "https://%s:%d" % (self.host, self.port)

    @property
    def connections(self):
        """How many connections (each one TLS handshake) the fake has accepted."""
        with self._lock:
            return self._conn_count

    def now(self):
        return time.time() + self._offset

    # -- setup --

    def add_client(self, name, client_id=None, secret=None):
        """An OBF organisation with v2 API credentials ([v2doc] Admin tools > API);
        returns (client id, client secret)."""
        cid = client_id or obf_id()
        sec = secret or secrets.token_urlsafe(24)
        with self._lock:
            self.clients[cid] = {"id": cid, "name": name, "secret": sec,
                                 "email": "badges@example.edu", "url": "https://example.edu/",
                                 "description": "", "ctime": int(self.now())}
        return cid, sec

    def add_badge(self, client_id, name="Existing badge", draft=False, deleted=False,
                  metadata=None, image=None, email=True):
        """A badge designed in OBF (the usual flow), for tests that name one by id."""
        bid = obf_id()
        now = int(self.now())
        with self._lock:
            self._badges[bid] = {
                "id": bid, "client_id": client_id, "draft": draft, "deleted": deleted,
                "image": data_uri_png(image or tiny_png()), "primary_language": "en",
                "content": [{"language": "en", "name": name, "description": "Made in OBF",
                             "criteria": "Do the thing", "tag": []}],
                "category": [], "metadata": metadata or {}, "css": "",
                "email_message": ({"subject": "You earned it", "body": "Congratulations",
                                   "link_text": "Accept", "footer": ""} if email else None),
                "expires": 0, "ctime": now, "mtime": now, "api": "fixture",
                "seq": self._next_seq()}
        return bid

    def add_events(self, client_id, badge_id, email, n, issued_on, consumer="ltibadges",
                   uid_prefix="earlier"):
        """n events of a badge for one address issued at `issued_on` (history made
        before the test, as add_badge's badges), each with a log_entry naming award
        "<uid_prefix>-<i>"; returns their ids."""
        ids = []
        with self._lock:
            b = self._badges[badge_id]
            for i in range(n):
                eid = obf_id()
                self._events[eid] = self._new_event(
                    eid, client_id, b, [{"email": email, "name": ""}], issued_on, None,
                    consumer, {"award_uid": "%s-%d" % (uid_prefix, i)}, None, "fixture")
                ids.append(eid)
        return ids

    def _next_seq(self):
        with self._lock:
            self._seq += 1
            return self._seq

    def mint_client_cert(self, client_id, directory, **kw):
        return mint_client_cert(self.pki, client_id, directory, **kw)

    def mint_api_key(self, client_id, lifetime=API_KEY_LIFETIME):
        """An API key as OBF's admin tools give one for v1 enrolment: base64 of the
        JSON {"id": client id, "expires": unix time} ([plugin1] reads `id`; the
        expiry field is [fake]) encrypted with OBF's private key ([v1doc])."""
        doc = json.dumps({"id": client_id, "expires": int(self.now() + lifetime)},
                         separators=(",", ":")).encode()
        key = base64.b64encode(rsa_private_encrypt(self.pki, doc)).decode()
        with self._lock:
            self._api_keys.append(client_id)
        return key

    # -- state (read only) --

    def badges(self, client_id=None, include_deleted=True):
        with self._lock:
            return [json.loads(json.dumps(b)) for b in self._badges.values()
                    if (client_id is None or b["client_id"] == client_id)
                    and (include_deleted or not b["deleted"])]

    def badge(self, bid):
        with self._lock:
            b = self._badges.get(bid)
            return json.loads(json.dumps(b)) if b else None

    def events(self, client_id=None, badge_id=None, email=None):
        with self._lock:
            return [json.loads(json.dumps(e)) for e in self._events.values()
                    if (client_id is None or e["client_id"] == client_id)
                    and (badge_id is None or e["badge_id"] == badge_id)
                    and (email is None or email.lower() in
                         [r["email"].lower() for r in e["recipient"]])]

    def event(self, eid):
        with self._lock:
            e = self._events.get(eid)
            return json.loads(json.dumps(e)) if e else None

    @property
    def records(self):
        with self._lock:
            return list(self._records)

    def matching(self, predicate=None):
        with self._lock:
            return [r for r in self._records if predicate is None or predicate(r)]

    def wait_for(self, predicate=None, timeout=10.0, count=1):
        """Waits until `count` records satisfy `predicate`; returns them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._records if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ["%s %s -> %s (%s)" % (r.method, r.path, r.status, r.fault)
                            for r in self._records]
                    raise AssertionError("obffake: %d of %d matching requests after %.1fs; "
                                         "got %s" % (len(found), count, timeout, seen or "none"))
                self._cond.wait(left)

    @property
    def hanging(self):
        with self._lock:
            return self._hanging

    def wait_hanging(self, n=1, timeout=10.0):
        """Waits until `n` requests hang (a hang is recorded only when it ends)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._hanging < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("obffake: %d of %d requests hanging after %.1fs"
                                         % (self._hanging, n, timeout))
                self._cond.wait(left)

    def token_requests(self, client_id=None):
        """The token requests (granted or not) so far."""
        return self.matching(lambda r: r.path == "/v2/client/oauth2/token" and
                             (client_id is None or r.client == client_id))

    def state(self):
        """What GET /_fake/state answers (client secrets left out)."""
        with self._lock:
            return {"clients": [{k: v for k, v in c.items() if k != "secret"}
                                for c in self.clients.values()],
                    "badges": self.badges(), "events": self.events(),
                    "mailed": [list(m) for m in self.mailed],
                    "connections": self._conn_count,
                    "handshakes": dict(self._handshakes),
                    "requests": [{"method": r.method, "path": r.path, "query": r.query,
                                  "api": r.api, "status": r.status, "fault": r.fault,
                                  "done": r.done, "delivered": r.delivered,
                                  "client": r.client, "cert_cn": r.cert_cn, "conn": r.conn,
                                  "entity": r.entity, "time": r.time,
                                  "body": _redact(r.body.decode("utf-8", "replace")[:4096])}
                                 for r in self._records]}

    # -- faults and controls --

    def add_fault(self, kind, method="*", path=".*", count=1, status=None, retry_after=None,
                  body=None, content_type=None):
        """Queues a fault for the next `count` requests whose method (or "*") and
        path (a regex searched in the path) match. Faults are tried in order."""
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault %r" % kind)
        if kind == "status" and status is None:
            raise ValueError("status needs status=")
        re.compile(path)
        with self._lock:
            self._faults.append({"kind": kind, "method": method.upper(), "path": path,
                                 "count": count, "status": status, "retry_after": retry_after,
                                 "body": body, "content_type": content_type})

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    @property
    def faults(self):
        with self._lock:
            return [dict(f) for f in self._faults]

    def release(self):
        """Ends every hang so far (each closes its connection without an answer)."""
        with self._lock:
            ev, self._release = self._release, threading.Event()
        ev.set()

    def expire_tokens(self):
        """Every v2 access token issued so far expires now."""
        with self._lock:
            for t in self._tokens.values():
                t["expires"] = self.now() - 1

    def advance(self, seconds):
        """Moves the fake's clock forward: token expiry, the ten-second token
        limit, certificate expiry and API key expiry follow it."""
        with self._lock:
            self._offset += seconds

    def _take_fault(self, method, path):
        with self._lock:
            for f in self._faults:
                if f["method"] in ("*", method) and re.search(f["path"], path):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self._faults.remove(f)
                    return dict(f)
        return None

    # -- one request --

    def _handle(self, h):
        u = urlsplit(h.path)
        rec = Record(time=time.time(), method=h.command, path=u.path, query=u.query,
                     headers=list(h.headers.items()), body=b"", conn=h.conn_no)
        if rec.path.startswith("/v1/"):
            rec.api = "v1"
        elif rec.path.startswith("/v2/"):
            rec.api = "v2"
        early = self._read_body(h, rec)
        if early is not None:
            h.close_connection = True
            self._send(h, rec, early)
            return
        if rec.path.startswith("/_fake/"):
            self._send(h, None, self._control(rec))
            return
        fault = self._take_fault(rec.method, rec.path)
        kind = fault["kind"] if fault else None
        rec.fault = kind
        if kind in ("drop", "hang"):
            if kind == "hang":
                self._hang()
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        if kind == "status":
            ans = self._fault_answer(fault)
        else:
            try:
                ans = self._route(rec, h, kind)
            except Exception as e:  # noqa: BLE001 - an unhandled error is a 500
                rec.fault = rec.fault or "exception: %r" % e
                ans = _Answer(500, {"error": "Internal server error"})
        if kind == "hang_after":
            self._hang()
        if kind in ("lost", "hang_after"):
            rec.status = ans.status
            rec.response_body = ans.body
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        self._send(h, rec, ans)

    def _hang(self):
        with self._cond:
            ev = self._release
            self._hanging += 1
            self._cond.notify_all()
        ev.wait()
        with self._cond:
            self._hanging -= 1
            self._cond.notify_all()

    def _fault_answer(self, f):
        headers = []
        if f["retry_after"] is not None:
            headers.append(("Retry-After", str(f["retry_after"])))
        body = f["body"]
        if body is None:
            body = {"error": {429: "Too many requests", 500: "Internal server error",
                              503: "Service unavailable"}.get(f["status"], "Error")}
        return _Answer(f["status"], body, f["content_type"] or "application/json", headers)

    def _read_body(self, h, rec):
        """[v1doc] 411 for a POST or PUT without a length (a chunked body), 413 over
        64 MiB. Returns an answer to send at once, or None."""
        chunked = "chunked" in h.headers.get("Transfer-Encoding", "").lower()
        cl = h.headers.get("Content-Length")
        if chunked or (cl is None and h.command in ("POST", "PUT")):
            if not rec.path.startswith("/_fake/"):
                return _Answer(411, {"error": "Length required"})
            if chunked:
                return _Answer(400, {"error": "control bodies need a Content-Length"})
        try:
            n = int(cl or 0)
        except ValueError:
            return _Answer(400, {"error": "bad Content-Length"})
        if n < 0:
            return _Answer(400, {"error": "bad Content-Length"})
        if n > MAX_BODY:
            return _Answer(413, {"error": "Request entity too large"})
        rec.body = h.rfile.read(n) if n else b""
        return None

    def _send(self, h, rec, ans):
        if rec is not None:
            rec.status = ans.status
            rec.response_body = ans.body
            rec.response_headers = [("Content-Type", ans.content_type)] + ans.headers
            self._append(rec)
        try:
            h.send_response(ans.status)
            h.send_header("Content-Type", ans.content_type)
            h.send_header("Content-Length", str(len(ans.body)))
            for k, v in ans.headers:
                h.send_header(k, v)
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(ans.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError, OSError):
            h.close_connection = True

    def _append(self, rec):
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()

    # -- the control API (tests only, never past a check) --

    def _control(self, rec):
        try:
            doc = json.loads(rec.body) if rec.body else {}
        except ValueError:
            return _Answer(400, {"error": "body is not JSON"})
        p, m = rec.path, rec.method
        try:
            if p == "/_fake/state" and m == "GET":
                return _Answer(200, self.state())
            if p == "/_fake/faults" and m == "POST":
                for f in doc.get("faults", []):
                    self.add_fault(**f)
                return _Answer(200, {"faults": self.faults})
            if p == "/_fake/faults" and m == "DELETE":
                self.clear_faults()
                return _Answer(200, {"faults": []})
            if p == "/_fake/tokens/expire" and m == "POST":
                self.expire_tokens()
                return _Answer(200, {})
            if p == "/_fake/clock" and m == "POST":
                self.advance(float(doc.get("advance", 0)))
                return _Answer(200, {})
            if p == "/_fake/requests" and m == "DELETE":
                with self._lock:
                    self._records.clear()
                return _Answer(200, {})
            if p == "/_fake/release" and m == "POST":
                self.release()
                return _Answer(200, {})
            if p == "/_fake/api-key" and m == "POST":
                # a test's stand-in for OBF's admin tools, which hand out API keys
                return _Answer(200, {"api_key": self.mint_api_key(
                    str(doc["client_id"]), float(doc.get("lifetime", API_KEY_LIFETIME)))})
        except (TypeError, ValueError, KeyError) as e:
            return _Answer(400, {"error": str(e)})
        return _Answer(404, {"error": "no such control"})

    # -- routing --

    def _route(self, rec, h, kind):
        if rec.api == "v2":
            return self._route_v2(rec, h, kind)
        if rec.api == "v1":
            return self._route_v1(rec, h, kind)
        return _Answer(404, {"error": "Not found"})

    @staticmethod
    def _match(routes, rec):
        for pattern, methods in routes:
            mt = re.match(pattern, rec.path)
            if mt:
                fn = methods.get(rec.method)
                if fn is None:
                    # [v1doc] 405: the method is not supported
                    return None, _Answer(405, {"error": "Method not allowed"},
                                         headers=[("Allow", ", ".join(methods))])
                return (fn, mt.groupdict()), None
        return None, _Answer(404, {"error": "Not found"})

    def _json_body(self, rec):
        """The JSON body, or an _Answer refusing it ([v1doc] 400: invalid parameters)."""
        if not rec.body:
            return _Answer(400, {"error": "Request body is missing"})
        try:
            rec.json = json.loads(rec.body)
        except ValueError:
            return _Answer(400, {"error": "Request body is not valid JSON"})
        if not isinstance(rec.json, dict):
            return _Answer(400, {"error": "Request body must be a JSON object"})
        return rec.json

    # ==== v2 ========================================================================

    @staticmethod
    def _v2_error(status, message):
        """[fake] v2 errors: the shape of [fixtures]' success answers with success
        false and OBF's text in `message` (and `error`, as [plugin] reads)."""
        return _Answer(status, {"success": False, "message": message, "error": message,
                                "resource_type": None, "resource_id": None, "count": None})

    @staticmethod
    def _v2_ok(status, resource_type=None, resource_id=None, count=None, headers=()):
        """[fixtures] post_v2_issue_badge / put_v2_revoke_event."""
        return _Answer(status, {"success": True, "message": "", "resource_type": resource_type,
                                "resource_id": resource_id, "count": count}, headers=headers)

    def _route_v2(self, rec, h, kind):
        if rec.path == "/v2/client/oauth2/token":
            if rec.method != "POST":
                return _Answer(405, {"error": "Method not allowed"}, headers=[("Allow", "POST")])
            return self._token(rec, kind)
        c = r"(?P<client>[^/]+)"
        i = r"(?P<id>[^/]+)"
        routes = (
            (r"^/v2/client/%s/ping$" % c, {"GET": self._v2_ping}),
            (r"^/v2/client/%s$" % c, {"GET": self._v2_client}),
            (r"^/v2/badge/%s$" % c, {"GET": self._v2_badge_list, "POST": self._v2_badge_create}),
            (r"^/v2/badge/%s/%s$" % (c, i), {"GET": self._v2_badge_get,
                                             "PUT": self._v2_badge_put,
                                             "DELETE": self._v2_badge_delete}),
            (r"^/v2/event/%s/recipient$" % c, {"GET": self._v2_recipients}),
            (r"^/v2/event/%s$" % c, {"GET": self._v2_event_list}),
            (r"^/v2/event/%s/%s/issue$" % (c, i), {"POST": self._v2_issue}),
            (r"^/v2/event/%s/%s/revoke$" % (c, i), {"PUT": self._v2_revoke}),
            (r"^/v2/event/%s/%s$" % (c, i), {"GET": self._v2_event_get}),
        )
        # [plugin] every call carries "Authorization: Bearer"; checked before routing
        client = self._bearer(rec)
        if client is None or kind == "unauthorized":
            return self._v2_error(401, "Unauthorized")
        found, refusal = self._match(routes, rec)
        if refusal is not None:
            return refusal
        fn, groups = found
        if groups["client"] != client:
            # a token of another client: [plugin] request() retries a 403 with
            # another connection, so OBF answers 403 here
            return self._v2_error(403, "Forbidden")
        return fn(rec, h, client, groups.get("id"))

    def _bearer(self, rec):
        a = rec.header("Authorization") or ""
        if not a.startswith("Bearer "):
            return None
        with self._lock:
            t = self._tokens.get(a[7:].strip())
            if t is None or t["expires"] <= self.now() or t["client"] not in self.clients:
                return None
            rec.client = t["client"]
            return t["client"]

    def _token(self, rec, kind):
        """[v2doc] [plugin] POST /v2/client/oauth2/token, a form body,
        grant_type=client_credentials, client_id and client_secret in the body
        or HTTP Basic; {access_token, token_type, expires_in}."""
        ct = (rec.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ct != "application/x-www-form-urlencoded":
            return _Answer(400, {"error": "invalid_request",
                                 "error_description": "a form body is required"})
        try:
            form = dict(parse_qsl(rec.body.decode("utf-8"), keep_blank_values=True,
                                  strict_parsing=bool(rec.body)))
        except (UnicodeDecodeError, ValueError):
            return _Answer(400, {"error": "invalid_request"})
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = rec.header("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                bid, bsec = base64.b64decode(auth[6:].strip(), validate=True).decode(
                    "utf-8").split(":", 1)
            except (ValueError, UnicodeDecodeError, binascii.Error):
                return _Answer(401, {"error": "invalid_client"})
            if cid is not None and cid != bid:
                return _Answer(400, {"error": "invalid_request",
                                     "error_description": "two different client ids"})
            cid, secret = unquote(bid), unquote(bsec)
        rec.client = cid
        if form.get("grant_type") != "client_credentials":
            return _Answer(400, {"error": "unsupported_grant_type"})
        with self._lock:
            c = self.clients.get(cid or "")
            if kind == "token_refused" or c is None or not secret or \
                    not secrets.compare_digest(secret, c["secret"]):
                return _Answer(401, {"error": "invalid_client",
                                     "error_description": "client authentication failed"})
            now = self.now()
            last = self._last_token.get(cid)
            if last is not None and now - last < self.token_interval:
                # [v2doc] one token per client every ten seconds. [fake] the status:
                # 429 with the seconds left in Retry-After
                wait = max(1, int(self.token_interval - (now - last) + 0.999))
                return _Answer(429, {"error": "too_many_requests",
                                     "error_description": "one access token per %d seconds"
                                     % self.token_interval},
                               headers=[("Retry-After", str(wait))])
            at = secrets.token_urlsafe(32)
            self._tokens[at] = {"client": cid, "expires": now + self.token_lifetime}
            self._last_token[cid] = now
            rec.done = True
        return _Answer(200, {"access_token": at, "token_type": "bearer",
                             "expires_in": self.token_lifetime},
                       headers=[("Cache-Control", "no-store")])

    def _v2_ping(self, rec, h, client, _):
        return _Answer(200, client, "text/plain")        # [fake] the body; [plugin] reads none

    def _client_json(self, client):
        c = self.clients[client]
        return {"id": c["id"], "name": c["name"], "email": c["email"], "url": c["url"],
                "description": c["description"], "image": "", "tier": "pro",
                "ctime": c["ctime"], "mtime": c["ctime"]}   # [fixtures] get_v2_client

    def _v2_client(self, rec, h, client, _):
        with self._lock:
            return _Answer(200, self._client_json(client))

    @staticmethod
    def _int_param(q, name, default, lo, hi):
        v = q.get(name, [None])[0]
        if v is None or v == "":
            return default
        if not re.fullmatch(r"\d+", v) or not lo <= int(v) <= hi:
            raise ValueError("%s must be an integer from %d to %d" % (name, lo, hi))
        return int(v)

    def _page(self, rec, items, fn=None):
        """[v2doc] {result, total}: limit <= 1000 ([plugin] asks 1000), offset;
        fn maps the page's items (only those: a look-up stays cheap)."""
        q = parse_qs(rec.query, keep_blank_values=True)
        try:
            limit = self._int_param(q, "limit", 50, 1, MAX_LIMIT)   # [fake] the default
            offset = self._int_param(q, "offset", 0, 0, 1 << 31)
        except ValueError as e:
            return self._v2_error(400, str(e))
        page = items[offset:offset + limit]
        return _Answer(200, {"result": [fn(i) for i in page] if fn else page,
                             "total": len(items)})

    def _badge_summary(self, b):
        """[fixtures] get_v2_badges: the primary content's name etc. at the top."""
        c = self._primary_content(b)
        return {"id": b["id"], "name": c["name"], "description": c["description"],
                "image": self._origin() + "/v1/badge/_/%s.png" % b["id"],
                "primary_language": b["primary_language"],
                "languages": [x["language"] for x in b["content"]],
                "category": b["category"], "tag": c.get("tag", []), "client_alias_id": [],
                "creator_id": None, "draft": b["draft"], "ctime": b["ctime"],
                "mtime": b["mtime"]}

    @staticmethod
    def _primary_content(b):
        for c in b["content"]:
            if c["language"] == b["primary_language"]:
                return c
        return b["content"][0]

    def _badge_full(self, b):
        """[fixtures] get_v2_badge."""
        return {"id": b["id"], "category": b["category"], "image": b["image"],
                "primary_language": b["primary_language"],
                "content": [dict({"alignment": []}, **c) for c in b["content"]],
                "creator": None, "intent": "", "client_alias_id": [],
                "email_message": b["email_message"], "expires": b["expires"],
                "draft": b["draft"], "ctime": b["ctime"], "mtime": b["mtime"]}

    def _own_badge(self, client, bid):
        b = self._badges.get(bid)
        if b is None or b["client_id"] != client or b["deleted"]:
            return None             # a deleted badge is not found (issue 20)
        return b

    def _v2_badge_list(self, rec, h, client, _):
        q = parse_qs(rec.query, keep_blank_values=True)
        draft = q.get("draft", [None])[0]
        with self._lock:
            items = [self._badge_summary(b) for b in sorted(
                self._badges.values(), key=lambda b: b["seq"])
                if b["client_id"] == client and not b["deleted"]
                and (draft not in ("0", "1") or b["draft"] == (draft == "1"))]
        return self._page(rec, items)

    def _v2_badge_get(self, rec, h, client, bid):
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return self._v2_error(404, "Badge not found")
            return _Answer(200, self._badge_full(b))

    def _v2_badge_fields(self, doc, creating):
        """The v2 badge body ([plugin] export_badge; issue 20's required fields and
        types). Returns (values, None) or (None, message)."""
        v = {}
        if creating or "draft" in doc:
            if not isinstance(doc.get("draft"), bool):
                return None, "draft is required and must be a boolean"
            v["draft"] = doc["draft"]
        if creating or "image" in doc:
            img = doc.get("image")
            if not isinstance(img, str):
                return None, "image is required and must be a data URI"
            m = re.fullmatch(r"data:(image/png|image/svg\+xml);base64,([A-Za-z0-9+/=\s]*)", img)
            if not m:
                return None, "image must be a PNG or SVG data URI"
            try:
                data = base64.b64decode(m.group(2), validate=False)
            except (ValueError, binascii.Error):
                return None, "image is not valid base64"
            if m.group(1) == "image/png" and not png_ok(data):
                return None, "image is not a valid PNG"
            if m.group(1) == "image/svg+xml" and not svg_ok(data):
                return None, "image is not a valid SVG"
            v["image"] = img
        if creating or "primary_language" in doc:
            pl = doc.get("primary_language")
            if not isinstance(pl, str) or not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", pl):
                return None, "primary_language is required and must be a language code"
            v["primary_language"] = pl
        if creating or "content" in doc:
            content = doc.get("content")
            if not isinstance(content, list) or not content:
                return None, "content is required and must be a non-empty array"
            out = []
            for c in content:
                if not isinstance(c, dict):
                    return None, "content items must be objects"
                for k in ("language", "name", "description", "criteria"):
                    if not isinstance(c.get(k), str):
                        return None, "content.%s is required and must be a string" % k
                if not c["name"].strip():
                    return None, "content.name may not be empty"
                tag = c.get("tag", [])
                if not isinstance(tag, list) or not all(isinstance(t, str) for t in tag):
                    return None, "content.tag must be an array of strings"
                out.append({"language": c["language"], "name": c["name"],
                            "description": c["description"], "criteria": c["criteria"],
                            "tag": list(tag)})
            langs = [c["language"] for c in out]
            if len(set(langs)) != len(langs):
                return None, "content has two entries for one language"
            pl = v.get("primary_language", doc.get("primary_language"))
            if pl not in langs:
                return None, "content has no entry in primary_language"
            v["content"] = out
        if "email_message" in doc and doc["email_message"] is not None:
            em = doc["email_message"]
            if not isinstance(em, dict) or not all(isinstance(em.get(k, ""), str)
                                                   for k in MESSAGE_KEYS):
                return None, "email_message must be an object of strings"
            v["email_message"] = {k: em.get(k, "") for k in MESSAGE_KEYS}
        elif "email_message" in doc:
            v["email_message"] = None
        if "category" in doc:
            cat = doc["category"]
            if not isinstance(cat, list) or not all(isinstance(t, str) for t in cat):
                return None, "category must be an array of strings"
            v["category"] = list(cat)
        if "expires" in doc:
            ex = doc["expires"]
            if isinstance(ex, bool) or not isinstance(ex, int) or ex < 0:
                return None, "expires must be a non-negative integer"
            v["expires"] = ex
        return v, None

    def _v2_badge_create(self, rec, h, client, _):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        v, problem = self._v2_badge_fields(doc, True)
        if problem:
            return self._v2_error(400, problem)
        bid = obf_id()
        now = int(self.now())
        with self._lock:
            self._badges[bid] = {
                "id": bid, "client_id": client, "draft": v["draft"], "deleted": False,
                "image": v["image"], "primary_language": v["primary_language"],
                "content": v["content"], "category": v.get("category", []), "metadata": {},
                "css": "", "email_message": v.get("email_message"),
                "expires": v.get("expires", 0), "ctime": now, "mtime": now, "api": "v2",
                "seq": self._next_seq()}
            rec.done, rec.entity = True, bid
        return self._v2_ok(201, "badge", bid, headers=[
            ("Location", "%s/v2/badge/%s/%s" % (self._origin(), client, bid))])

    def _v2_badge_put(self, rec, h, client, bid):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return self._v2_error(404, "Badge not found")
            merged = dict(doc)
            if "content" in doc and "primary_language" not in doc:
                merged["primary_language"] = b["primary_language"]
            v, problem = self._v2_badge_fields(merged, False)
            if problem:
                return self._v2_error(400, problem)
            if "primary_language" in v and "content" not in v and \
                    v["primary_language"] not in [c["language"] for c in b["content"]]:
                return self._v2_error(400, "content has no entry in primary_language")
            b.update(v)
            b["mtime"] = int(self.now())
            rec.done, rec.entity = True, bid
        return self._v2_ok(200, "badge", bid)

    def _v2_badge_delete(self, rec, h, client, bid):
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return self._v2_error(404, "Badge not found")
            b["deleted"] = True
            rec.done, rec.entity = True, bid
        return self._v2_ok(200, "badge", bid)

    def _v2_issue(self, rec, h, client, bid):
        """[plugin] issue_badge: {recipient: [{email, name}], issued_on,
        api_consumer_id, send_email, show_report, log_entry, email_message,
        client_alias_id}; issue 20 adds expires_on. Answer [fixtures]
        post_v2_issue_badge: resource_id = the event id."""
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        rcp = doc.get("recipient")
        if not isinstance(rcp, list) or not rcp:
            return self._v2_error(400, "recipient is required and must be a non-empty array")
        recipients = []
        for r in rcp:
            if not isinstance(r, dict) or not isinstance(r.get("email"), str):
                return self._v2_error(400, "recipient items must be objects with an email")
            if not EMAIL_RE.match(r["email"]):
                return self._v2_error(400, "recipient email '%s' is not valid" % r["email"])
            name = r.get("name", "")
            if not isinstance(name, str):
                return self._v2_error(400, "recipient name must be a string")
            recipients.append({"email": r["email"], "name": name})
        now = int(self.now())
        for k in ("issued_on", "expires_on"):
            x = doc.get(k)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int) or x < 0):
                return self._v2_error(400, "%s must be a unix timestamp" % k)
        issued_on = doc.get("issued_on") if doc.get("issued_on") is not None else now
        expires_on = doc.get("expires_on")
        if expires_on is not None and expires_on <= issued_on:
            return self._v2_error(400, "expires_on must be after issued_on")
        for k in ("send_email", "show_report"):
            if k in doc and not isinstance(doc[k], bool):
                return self._v2_error(400, "%s must be a boolean" % k)
        for k in ("api_consumer_id", "client_alias_id"):
            if doc.get(k) is not None and not isinstance(doc[k], str):
                return self._v2_error(400, "%s must be a string" % k)
        log_entry = doc.get("log_entry")
        if log_entry is not None and not isinstance(log_entry, dict):
            return self._v2_error(400, "log_entry must be an object")
        em = doc.get("email_message")
        if em is not None and (not isinstance(em, dict) or not all(
                isinstance(em.get(k, ""), str) for k in MESSAGE_KEYS)):
            return self._v2_error(400, "email_message must be an object of strings")
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return self._v2_error(404, "Badge not found")
            if b["draft"]:
                return self._v2_error(400, "A draft badge cannot be issued")
            eid = obf_id()
            self._events[eid] = self._new_event(eid, client, b, recipients, issued_on,
                                                expires_on, doc.get("api_consumer_id"),
                                                log_entry, em, "v2")
            if doc.get("send_email", True):      # [fake] the default; [plugin] sends true
                self.mailed.extend((r["email"], eid) for r in recipients)
            rec.done, rec.entity = True, eid
        return self._v2_ok(201, "event", eid, headers=[
            ("Location", "%s/v2/event/%s/%s" % (self._origin(), client, eid))])

    def _new_event(self, eid, client, b, recipients, issued_on, expires_on, consumer,
                   log_entry, email_message, api):
        return {"id": eid, "client_id": client, "badge_id": b["id"],
                "name": self._primary_content(b)["name"], "issued_on": issued_on,
                "expires_on": expires_on, "api_consumer_id": consumer,
                "log_entry": log_entry, "email_message": email_message,
                "recipient": [dict(r, revoked=False, revoked_at=None,
                                   assertion_id=secrets.token_hex(20)) for r in recipients],
                "ctime": int(self.now()), "mtime": int(self.now()), "api": api,
                "seq": self._next_seq()}

    def _event_summary(self, e):
        """[fixtures] get_v2_event."""
        return {"id": e["id"], "name": e["name"], "client_alias_id": None,
                "badge_id": e["badge_id"], "expires_on": e["expires_on"],
                "issued_on": e["issued_on"], "recipient_count": len(e["recipient"]),
                "api_consumer_id": e["api_consumer_id"], "earnable_application_id": None,
                "ctime": e["ctime"], "mtime": e["mtime"]}

    def _event_query(self, client, q):
        """Events of the client matching badge_id, email, api_consumer_id, begin,
        end ([v1doc] Reports; [plugin] get_assertions sends the same to v2)."""
        badge = q.get("badge_id", [None])[0]
        email = q.get("email", [None])[0]
        consumer = q.get("api_consumer_id", [None])[0]
        begin = q.get("begin", [None])[0]
        end = q.get("end", [None])[0]
        out = []
        for e in self._events.values():
            if e["client_id"] != client or (badge and e["badge_id"] != badge):
                continue
            if email and email.lower() not in [r["email"].lower() for r in e["recipient"]]:
                continue
            if consumer and e["api_consumer_id"] != consumer:
                continue
            if begin and re.fullmatch(r"\d+", begin) and e["issued_on"] < int(begin):
                continue
            if end and re.fullmatch(r"\d+", end) and e["issued_on"] > int(end):
                continue
            out.append(e)
        # [v1doc] order_by: "Order results by date" (the issuing date, as begin and
        # end filter it), ties in the order made; [fake] newest first by default
        desc = q.get("order_by", ["desc"])[0] != "asc"
        out.sort(key=lambda e: (e["issued_on"], e["seq"]), reverse=desc)
        return out

    def _v2_event_list(self, rec, h, client, _):
        """[fixtures] get_v2_event's items, plus log_entry as a JSON string:
        [plugin] get_assertions json_decodes each listed event's log_entry."""
        q = parse_qs(rec.query, keep_blank_values=True)

        def item(e):
            out = self._event_summary(e)
            out["log_entry"] = _log_text(e["log_entry"])
            return out
        with self._lock:
            return self._page(rec, self._event_query(client, q), item)

    def _v2_event_get(self, rec, h, client, eid):
        """[fixtures] get_v2_single_event: log_entry as a JSON string."""
        with self._lock:
            e = self._events.get(eid)
            if e is None or e["client_id"] != client:
                return self._v2_error(404, "Event not found")
            b = self._badges[e["badge_id"]]
            out = self._event_summary(e)
            del out["badge_id"], out["recipient_count"]
            out["badge"] = {"id": b["id"], "image": b["image"],
                            "primary_language": b["primary_language"],
                            "content": b["content"], "creator": None}
            out["email_message"] = e["email_message"]
            out["log_entry"] = _log_text(e["log_entry"])
            return _Answer(200, out)

    def _recipient_row(self, e, r):
        """[fixtures] get_v2_single_recipients."""
        return {"event_id": e["id"], "assertion_id": r["assertion_id"], "email": r["email"],
                "name": r["name"],
                "receive_url": self._origin() + "/c/receive?tk=" + r["assertion_id"],
                "assertion_json_url": "%s/obv3/credentials/%s.json" % (self._origin(),
                                                                       r["assertion_id"]),
                "received": False, "in_passport": False, "pdf_downloaded": False,
                "issued_on": e["issued_on"], "expires_on": e["expires_on"],
                "revoked": r["revoked"]}

    def _v2_recipients(self, rec, h, client, _):
        q = parse_qs(rec.query, keep_blank_values=True)
        event_id = q.get("event_id", [None])[0]
        email = q.get("email", [None])[0]
        with self._lock:
            if event_id:
                e = self._events.get(event_id)
                events = [e] if e is not None and e["client_id"] == client else []
            else:
                events = self._event_query(client, {k: v for k, v in q.items()
                                                    if k != "email"})
            rows = [self._recipient_row(e, r) for e in events for r in e["recipient"]
                    if not email or r["email"].lower() == email.lower()]
        return self._page(rec, rows)

    def _v2_revoke(self, rec, h, client, eid):
        """[plugin] revoke_event: PUT {recipient: [emails]}; [fixtures]
        put_v2_revoke_event: count = recipients revoked. [fake] an address
        already revoked counts again (revoking is idempotent)."""
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        emails = doc.get("recipient")
        if not isinstance(emails, list) or not emails or \
                not all(isinstance(x, str) for x in emails):
            return self._v2_error(400, "recipient is required and must be an array of emails")
        with self._lock:
            e = self._events.get(eid)
            if e is None or e["client_id"] != client:
                return self._v2_error(404, "Event not found")
            n = self._revoke(e, emails)
            rec.done, rec.entity = True, eid
        return self._v2_ok(200, None, None, n)

    def _revoke(self, e, emails):
        wanted = {x.lower() for x in emails}
        n = 0
        for r in e["recipient"]:
            if r["email"].lower() in wanted:
                if not r["revoked"]:
                    r["revoked"], r["revoked_at"] = True, int(self.now())
                n += 1
        e["mtime"] = int(self.now())
        return n

    # ==== v1 ========================================================================

    def _cert(self, h, rec):
        """[v1doc] 496 no certificate, 495 an invalid one (the rogue CA's, or
        expired by the fake's clock). Returns the certificate's commonName or an
        _Answer."""
        try:
            cert = h.connection.getpeercert()
        except (ValueError, AttributeError):
            cert = None
        if not cert:
            return _Answer(496, {"error": "Certificate missing"})
        issuer = dict(x[0] for x in cert.get("issuer", ()))
        subject = dict(x[0] for x in cert.get("subject", ()))
        rec.cert_cn = subject.get("commonName")
        if issuer.get("commonName") != CLIENT_CA_CN:
            return _Answer(495, {"error": "Invalid client side certificate"})
        now = self.now()
        if ssl.cert_time_to_seconds(cert["notAfter"]) < now or \
                ssl.cert_time_to_seconds(cert["notBefore"]) > now + 300:
            return _Answer(495, {"error": "Invalid client side certificate"})
        return rec.cert_cn

    def _route_v1(self, rec, h, kind):
        p, m = rec.path, rec.method
        # [plugin1] authenticate(): these two go without a client certificate
        if p == "/v1/client/OBF.rsa.pub":
            if m != "GET":
                return _Answer(405, {"error": "Method not allowed"}, headers=[("Allow", "GET")])
            return _Answer(200, self.rsa_pub_pem, "text/plain")
        mt = re.match(r"^/v1/client/(?P<client>[^/]+)/sign_request$", p)
        if mt:
            if m != "POST":
                return _Answer(405, {"error": "Method not allowed"}, headers=[("Allow", "POST")])
            return self._sign_request(rec, mt.group("client"))
        cn = self._cert(h, rec)
        if isinstance(cn, _Answer):
            return cn
        if kind == "expired_cert":
            return _Answer(495, {"error": "Invalid client side certificate"})
        c = r"(?P<client>[^/]+)"
        i = r"(?P<id>[^/]+)"
        routes = (
            (r"^/v1/ping/%s/?$" % c, {"GET": self._v1_ping}),
            (r"^/v1/client/%s/?$" % c, {"GET": self._v1_client}),
            (r"^/v1/badge/%s/?$" % c, {"GET": self._v1_badge_list,
                                       "POST": self._v1_badge_create}),
            (r"^/v1/badge/%s/%s/?$" % (c, i), {"GET": self._v1_badge_get,
                                               "PUT": self._v1_badge_put,
                                               "POST": self._v1_issue,
                                               "DELETE": self._v1_badge_delete}),
            (r"^/v1/event/%s/?$" % c, {"GET": self._v1_event_list}),
            (r"^/v1/event/%s/%s/revoked/?$" % (c, i), {"GET": self._v1_revoked}),
            (r"^/v1/event/%s/%s/?$" % (c, i), {"GET": self._v1_event_get,
                                               "DELETE": self._v1_revoke}),
        )
        found, refusal = self._match(routes, rec)
        if refusal is not None:
            return refusal
        fn, groups = found
        with self._lock:
            known = cn in self.clients
        if groups["client"] != cn or not known:
            # [v1doc] 403: the client is not authorized to access the resource
            return _Answer(403, {"error": "Forbidden"})
        rec.client = cn
        return fn(rec, h, cn, groups.get("id"))

    def _sign_request(self, rec, client):
        """[plugin1] authenticate(): {signature: the API key, request: a CSR},
        answered 200 with the certificate in PEM; errors {"error": ...}."""
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        sig, csr = doc.get("signature"), doc.get("request")
        if not isinstance(sig, str) or not isinstance(csr, str):
            return _Answer(400, {"error": "signature and request are required strings"})
        try:
            plain = rsa_public_decrypt(self.pki, base64.b64decode(sig.strip(), validate=True))
            key = json.loads(plain)
        except (RuntimeError, ValueError, binascii.Error):
            return _Answer(403, {"error": "Invalid signature"})
        if not isinstance(key, dict) or key.get("id") != client:
            return _Answer(403, {"error": "Invalid signature"})
        with self._lock:
            if client not in self.clients:
                return _Answer(403, {"error": "Invalid signature"})
        if not isinstance(key.get("expires"), int) or key["expires"] < self.now():
            return _Answer(403, {"error": "API key has expired"})
        with tempfile.TemporaryDirectory(prefix="obffake-csr-") as d:
            path = os.path.join(d, "req.csr")
            with open(path, "w") as f:
                f.write(csr)
            try:
                subj = _openssl("req", "-in", path, "-noout", "-verify", "-subject",
                                "-nameopt", "multiline").decode()
            except RuntimeError:
                return _Answer(400, {"error": "Invalid certificate signing request"})
            m = re.search(r"commonName\s*=\s*(\S+)", subj)
            if not m or m.group(1) != client:
                # [plugin1] the CSR's DN is commonName = the client id; [fake] refused otherwise
                return _Answer(400, {"error": "The request's commonName is not the client id"})
            out = os.path.join(d, "cert.pem")
            _sign_csr(self.pki, path, out, CLIENT_CERT_DAYS)
            with open(out) as f:
                pem = f.read()
        rec.done, rec.client = True, client
        return _Answer(200, pem, "application/x-pem-file")

    def _v1_ping(self, rec, h, client, _):
        return _Answer(200, client, "text/plain")         # [fake] the body

    def _v1_client(self, rec, h, client, _):
        with self._lock:
            c = self.clients[client]
            return _Answer(200, {"id": c["id"], "name": c["name"], "email": c["email"],
                                 "url": c["url"], "description": c["description"]})

    @staticmethod
    def _ldjson(items):
        """[v1doc] a list is one JSON object per line, each line ending CRLF."""
        return _Answer(200, "".join(json.dumps(i) + "\r\n" for i in items).encode())

    def _v1_badge_json(self, b):
        c = self._primary_content(b)
        em = b["email_message"] or {}
        out = {"id": b["id"], "name": c["name"], "description": c["description"],
               "image": b["image"].split(",", 1)[1] if b["image"].startswith("data:") else "",
               "css": b["css"], "criteria_html": c["criteria"], "tags": c.get("tag", []),
               "draft": b["draft"], "expires": b["expires"] or None,
               "metadata": b["metadata"], "category": b["category"],
               "ctime": b["ctime"], "mtime": b["mtime"], "deleted": b["deleted"]}
        for k in EMAIL_KEYS:
            out[k] = em.get(k[len("email_"):], "")
        return out

    def _v1_badge_list(self, rec, h, client, _):
        """[v1doc] GET /v1/badge/{client}: draft, category, id, query, meta:KEY."""
        q = parse_qs(rec.query, keep_blank_values=True)
        draft = q.get("draft", [None])[0]
        ids = q.get("id", [""])[0].split("|") if q.get("id", [""])[0] else None
        cats = q.get("category", [""])[0].split("|") if q.get("category", [""])[0] else None
        text = q.get("query", [""])[0].lower()
        meta = {k[5:]: v[0] for k, v in q.items() if k.startswith("meta:")}
        with self._lock:
            out = []
            for b in sorted(self._badges.values(), key=lambda b: b["seq"]):
                if b["client_id"] != client or b["deleted"]:
                    continue
                if draft in ("0", "1") and b["draft"] != (draft == "1"):
                    continue
                if ids is not None and b["id"] not in ids:
                    continue
                if cats is not None and not set(cats) & set(b["category"]):
                    continue
                j = self._v1_badge_json(b)
                if text and text not in j["name"].lower() and text not in \
                        j["description"].lower():
                    continue
                # metadata values compare as their text: ?meta:foo=123 matches {"foo": 123}
                if any(k not in b["metadata"] or _meta_text(b["metadata"][k]) != v
                       for k, v in meta.items()):
                    continue
                out.append(j)
        return self._ldjson(out)

    def _v1_badge_get(self, rec, h, client, bid):
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return _Answer(404, {"error": "Badge not found"})
            return _Answer(200, self._v1_badge_json(b))

    def _v1_badge_fields(self, doc, creating):
        """[v1doc] Create new badge: name, description, draft required; image a
        base64 PNG (PNG only); the rest typed as the page says."""
        v = {}
        for k in ("name", "description"):
            if creating or k in doc:
                if not isinstance(doc.get(k), str) or not doc[k].strip():
                    return None, "%s is required and must be a string" % k
                v[k] = doc[k]
        if creating or "draft" in doc:
            if not isinstance(doc.get("draft"), bool):
                return None, "draft is required and must be a boolean"
            v["draft"] = doc["draft"]
        if doc.get("image") not in (None, ""):
            img = doc["image"]
            if not isinstance(img, str):
                return None, "image must be a base64 encoded PNG"
            if img.startswith("data:"):
                if not img.startswith("data:image/png;base64,"):
                    return None, "image must be a base64 encoded PNG"
                img = img.split(",", 1)[1]
            try:
                data = base64.b64decode(img, validate=True)
            except (ValueError, binascii.Error):
                return None, "image must be a base64 encoded PNG"
            if not png_ok(data):
                return None, "image must be a base64 encoded PNG"
            v["image"] = "data:image/png;base64," + base64.b64encode(data).decode()
        for k in ("css", "criteria_html") + EMAIL_KEYS:
            if k in doc:
                if not isinstance(doc[k], str):
                    return None, "%s must be a string" % k
                v[k] = doc[k]
        if doc.get("expires") not in (None, ""):
            if isinstance(doc["expires"], bool) or not isinstance(doc["expires"], int):
                return None, "expires must be a unix timestamp"
            v["expires"] = doc["expires"]
        if "tags" in doc:
            t = doc["tags"]
            if not isinstance(t, list) or not all(isinstance(x, str) for x in t):
                return None, "tags must be an array of strings"
            v["tags"] = list(t)
        if "metadata" in doc:
            if not isinstance(doc["metadata"], dict):
                return None, "metadata must be an object"
            v["metadata"] = doc["metadata"]
        return v, None

    def _apply_v1(self, b, v):
        c = self._primary_content(b)
        for src, dst in (("name", "name"), ("description", "description"),
                         ("criteria_html", "criteria"), ("tags", "tag")):
            if src in v:
                c[dst] = v[src]
        for k in ("draft", "image", "css", "metadata", "expires"):
            if k in v:
                b[k] = v[k]
        if any(k in v for k in EMAIL_KEYS):
            em = dict(b["email_message"] or {k: "" for k in MESSAGE_KEYS})
            for k in EMAIL_KEYS:
                if k in v:
                    em[k[len("email_"):]] = v[k]
            b["email_message"] = em

    def _v1_badge_create(self, rec, h, client, _):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        v, problem = self._v1_badge_fields(doc, True)
        if problem:
            return _Answer(400, {"error": problem})
        bid = obf_id()
        now = int(self.now())
        b = {"id": bid, "client_id": client, "draft": v["draft"], "deleted": False,
             "image": "", "primary_language": "en",
             "content": [{"language": "en", "name": "", "description": "", "criteria": "",
                          "tag": []}],
             "category": [], "metadata": {}, "css": "", "email_message": None, "expires": 0,
             "ctime": now, "mtime": now, "api": "v1", "seq": self._next_seq()}
        self._apply_v1(b, v)
        with self._lock:
            self._badges[bid] = b
            rec.done, rec.entity = True, bid
        # [v1doc] 201, the Location header names the new badge, the body is empty
        return _Answer(201, b"", "text/plain", [
            ("Location", "%s/v1/badge/%s/%s" % (self._origin(), client, bid))])

    def _v1_badge_put(self, rec, h, client, bid):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        v, problem = self._v1_badge_fields(doc, True)    # [v1doc] the same input as create
        if problem:
            return _Answer(400, {"error": problem})
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return _Answer(404, {"error": "Badge not found"})
            self._apply_v1(b, v)
            b["mtime"] = int(self.now())
            rec.done, rec.entity = True, bid
        return _Answer(204, b"", "text/plain")            # [v1doc] PUT answers 204

    def _v1_badge_delete(self, rec, h, client, bid):
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return _Answer(404, {"error": "Badge not found"})
            b["deleted"] = True
            rec.done, rec.entity = True, bid
        return _Answer(204, b"", "text/plain")

    def _v1_issue(self, rec, h, client, bid):
        """[v1doc] Issue badge: recipient (emails) required; expires, issued_on
        unix times; email parts required unless stored with the badge;
        badge_override, log_entry objects; api_consumer_id. 201 + Location."""
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        rcp = doc.get("recipient")
        if not isinstance(rcp, list) or not rcp or not all(isinstance(x, str) for x in rcp):
            return _Answer(400, {"error": "recipient is required and must be an array of emails"})
        for x in rcp:
            if not EMAIL_RE.match(x):
                return _Answer(400, {"error": "recipient '%s' is not a valid email" % x})
        for k in ("issued_on", "expires"):
            x = doc.get(k)
            if x is not None and (isinstance(x, bool) or not isinstance(x, int) or x < 0):
                return _Answer(400, {"error": "%s must be a unix timestamp" % k})
        for k in ("badge_override", "log_entry"):
            if doc.get(k) is not None and not isinstance(doc[k], dict):
                return _Answer(400, {"error": "%s must be an object" % k})
        for k in EMAIL_KEYS + ("api_consumer_id",):
            if doc.get(k) is not None and not isinstance(doc[k], str):
                return _Answer(400, {"error": "%s must be a string" % k})
        now = int(self.now())
        issued_on = doc["issued_on"] if doc.get("issued_on") is not None else now
        with self._lock:
            b = self._own_badge(client, bid)
            if b is None:
                return _Answer(404, {"error": "Badge not found"})
            if b["draft"]:
                return _Answer(400, {"error": "A draft badge cannot be issued"})
            stored = b["email_message"] or {}
            for k in ("email_subject", "email_body"):
                if not doc.get(k) and not stored.get(k[len("email_"):]):
                    return _Answer(400, {"error": "%s is required unless the badge stores it"
                                         % k})
            em = {k[len("email_"):]: doc[k] for k in EMAIL_KEYS if doc.get(k) is not None}
            eid = obf_id()
            self._events[eid] = self._new_event(
                eid, client, b, [{"email": x, "name": ""} for x in rcp], issued_on,
                doc.get("expires"), doc.get("api_consumer_id"), doc.get("log_entry"),
                em or None, "v1")
            self.mailed.extend((x, eid) for x in rcp)
            rec.done, rec.entity = True, eid
        return _Answer(201, b"", "text/plain", [
            ("Location", "%s/v1/event/%s/%s" % (self._origin(), client, eid))])

    def _v1_event_json(self, e):
        """[fixtures] get_v1_get_all_assertions: recipient a list of emails,
        revoked {email: time}, log_entry an object, timestamp."""
        return {"id": e["id"], "badge_id": e["badge_id"], "name": e["name"],
                "recipient": [r["email"] for r in e["recipient"]],
                "issued_on": e["issued_on"], "expires": e["expires_on"],
                "api_consumer_id": e["api_consumer_id"], "log_entry": e["log_entry"],
                "revoked": {r["email"]: r["revoked_at"] for r in e["recipient"] if r["revoked"]},
                "timestamp": e["ctime"]}

    def _v1_event_list(self, rec, h, client, _):
        """[v1doc] Search for events: api_consumer_id, badge_id, email, begin, end,
        order_by, limit (<= 1000), offset, count_only."""
        q = parse_qs(rec.query, keep_blank_values=True)
        try:
            # [v1doc] limit: "upper limit 1000", with or without one asked for
            limit = self._int_param(q, "limit", MAX_LIMIT, 1, MAX_LIMIT)
            offset = self._int_param(q, "offset", 0, 0, 1 << 31)
        except ValueError as e:
            return _Answer(400, {"error": str(e)})
        with self._lock:
            items = [self._v1_event_json(e) for e in self._event_query(client, q)]
        if q.get("count_only", ["0"])[0] == "1":
            return _Answer(200, {"count": len(items)})   # [fake] the count's shape
        return self._ldjson(items[offset:offset + limit])

    def _v1_event_get(self, rec, h, client, eid):
        with self._lock:
            e = self._events.get(eid)
            if e is None or e["client_id"] != client:
                return _Answer(404, {"error": "Event not found"})
            return _Answer(200, self._v1_event_json(e))

    def _v1_revoke(self, rec, h, client, eid):
        """[v1doc] DELETE /v1/event/{client}/{event}/?email=a|b: 204."""
        q = parse_qs(rec.query, keep_blank_values=True)
        emails = [x for x in q.get("email", [""])[0].split("|") if x]
        if not emails:
            return _Answer(400, {"error": "email is required"})
        with self._lock:
            e = self._events.get(eid)
            if e is None or e["client_id"] != client:
                return _Answer(404, {"error": "Event not found"})
            self._revoke(e, emails)
            rec.done, rec.entity = True, eid
        return _Answer(204, b"", "text/plain")

    def _v1_revoked(self, rec, h, client, eid):
        with self._lock:
            e = self._events.get(eid)
            if e is None or e["client_id"] != client:
                return _Answer(404, {"error": "Event not found"})
            return _Answer(200, {"revoked": self._v1_event_json(e)["revoked"]})

    def _origin(self):
        return self.origin or self.base_url


def _log_text(log_entry):
    """[fixtures] get_v2_single_event: v2 gives log_entry back as a JSON string."""
    return json.dumps(log_entry, separators=(",", ":")) if log_entry is not None else None


def _redact(text):
    """State carries no secret: a token request's client_secret is masked."""
    return re.sub(r"(client_secret=)[^&]*", r"\1(redacted)", text)


def _meta_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


class ResumingConnection(http.client.HTTPSConnection):
    """An HTTPS connection (for the tests and bench/run-obf.py) that offers
    `session`, an ssl.SSLSession of an earlier connection made with the same
    context, for resumption, as libcurl does with the sessions it keeps; after
    a response, .sock.session is the one to offer next."""

    def __init__(self, *args, session=None, **kw):
        super().__init__(*args, **kw)
        self.tls_session = session

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host,
                                              session=self.tls_session)


def decode_png(data):
    """Decodes an 8-bit RGBA, non-interlaced PNG (what libpng's simplified
    writer makes) for the tests: (width, height, pixel) where pixel(x, y) is
    an (r, g, b, a) tuple. Chunk CRCs are checked; anything else (another
    colour type or depth, interlace, a filter type over 4, a short image)
    raises ValueError."""
    import struct
    import zlib
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, ihdr, idat = 8, None, b""
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or zlib.crc32(kind + body) & 0xffffffff != \
                struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("a chunk is cut or its CRC is wrong")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    if ihdr is None:
        raise ValueError("no IHDR")
    w, h, depth, colour, _, _, interlace = ihdr
    if (depth, colour, interlace) != (8, 6, 0):
        raise ValueError("not 8-bit RGBA without interlace: %r" % (ihdr,))
    raw, stride = zlib.decompress(idat), w * 4
    if len(raw) != h * (stride + 1):
        raise ValueError("the image data is %d bytes, not %d" % (len(raw), h * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b, c = prev[i], prev[i - 4] if i >= 4 else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            else:
                raise ValueError("filter type %d" % f)
            line[i] = (line[i] + pred) & 0xff
        rows.append(line)
        prev = line
    return w, h, lambda x, y: tuple(rows[y][x * 4:x * 4 + 4])


def main(argv):
    """Runs a fake on its own (for C tests and bench/): a client with v2
    credentials and a v1 certificate, another client (for 403s), a badge made
    in OBF and a draft, printed as JSON on the first line of stdout; stops on
    SIGTERM or SIGINT. Tests steer it through /_fake/."""
    import argparse
    import signal
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dir", required=True, help="where the PKI and certificates go")
    ap.add_argument("--token-lifetime", type=int, default=TOKEN_LIFETIME)
    ap.add_argument("--token-interval", type=float, default=TOKEN_INTERVAL)
    args = ap.parse_args(argv)
    pki = make_pki(args.dir)
    fake = ObfFake(pki, port=args.port, token_lifetime=args.token_lifetime,
                   token_interval=args.token_interval)
    cid, secret = fake.add_client("Fake organisation")
    other, other_secret = fake.add_client("Other organisation")
    cert = fake.mint_client_cert(cid, args.dir, name="client")
    other_cert = fake.mint_client_cert(other, args.dir, name="other-client")
    rogue = fake.mint_client_cert(cid, args.dir, name="rogue-client", rogue=True)
    expired = fake.mint_client_cert(cid, args.dir, name="expired-client", expired=True)
    badge = fake.add_badge(cid, "Made in OBF")
    draft = fake.add_badge(cid, "Still a draft", draft=True)
    deleted = fake.add_badge(cid, "Deleted in OBF", deleted=True)
    theirs = fake.add_badge(other, "The other client's")
    fake.start()
    print(json.dumps({"base_url": fake.base_url, "ca": pki["ca"], "client_ca": pki["client_ca"],
                      "client_id": cid, "client_secret": secret,
                      "cert": cert["cert"], "key": cert["key"],
                      "other_client_id": other, "other_client_secret": other_secret,
                      "other_cert": other_cert["cert"], "other_key": other_cert["key"],
                      "rogue_cert": rogue["cert"], "rogue_key": rogue["key"],
                      "expired_cert": expired["cert"], "expired_key": expired["key"],
                      "badge": badge, "draft_badge": draft, "deleted_badge": deleted,
                      "other_badge": theirs,
                      "api_key": fake.mint_api_key(cid)}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(1):
        pass
    fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
