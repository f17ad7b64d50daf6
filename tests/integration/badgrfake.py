"""A contract fake of the Badgr v2 API (badgr-server, Parchment Digital Badges
ex Canvas Credentials, the older api.*badgr.io), for the integration suite.
Standard library only; it listens on 127.0.0.1 alone, plain HTTP or TLS with a
certificate of a CA the test makes (make_ca()).

Written from the public API guide (../../../shared/seeds/001_*.txt, "Badgr
App Developers API Guide") and from reading badgr-server's open-source code
(github.com/concentricsky/badgr-server, branch develop); no code is copied.
Each behaviour names its source in a comment: [guide] the API guide,
[oauth2_api] apps/mainsite/oauth2_api.py TokenView, [utils]
apps/mainsite/utils.py (throttleable, backoff), [validator]
apps/mainsite/oauth_validator.py, [auth] apps/mainsite/authentication.py,
[entity] apps/entity/{api,views,serializers}.py (envelope, exception
handler), [ser2] apps/issuer/serializers_v2.py, [api] apps/issuer/api.py,
[models] apps/issuer/{models,managers,utils}.py, [fields]
apps/mainsite/{drf_fields,validators,serializers}.py, [pagination]
apps/mainsite/pagination.py, [settings] apps/mainsite/settings.py, [dot]
django-oauth-toolkit and oauthlib as badgr-server uses them (token
rotation, error bodies), [drf] Django REST framework's field messages.
Where the real service's behaviour is not in those sources (the hosted
service's rate limits) the fake says so.

    fake = BadgrFake()                      # tls=make_ca(dir) for https
    fake.add_account("badges@example.edu", "secret")
    issuer = fake.add_issuer("Example U", staff={"badges@example.edu": "owner"})
    with fake:
        ... the client talks to fake.base_url ...
        fake.badgeclasses(issuer)           # state, for assertions
        fake.assertions(badgeclass_id)
        fake.wait_for(lambda r: r.path.endswith("/assertions") and r.status == 201)

Faults are queued (add_fault, or POST /_fake/faults) and each is matched by
method and a path regex, taken by the next matching request: html500,
status (503, 429 + Retry-After, ...), hang (until release() or stop()),
drop (no answer, nothing done), lost (the work done, then no answer: a
BadgeClass or assertion created and the connection closed), hang_after (the
work done, then a hang until release() or stop(), then no answer: a client
killed between sending and recording), unauthorized
(one 401), malformed (a 2xx whose JSON does not parse, the work done),
no_entity (a 2xx envelope whose result lacks entityId, the work done),
invalid_grant (a refused token grant). Controls: expire_tokens(),
refuse_refresh(), set_rate_limit(), advance() (the fake's clock),
set_clock_behind() (the platform's clock, for issuedOn). The state API
(badgeclasses, assertions, records, GET /_fake/state) reads; it never
creates, awards or lets a request past a check.
"""
import base64
import binascii
import dataclasses
import datetime
import hashlib
import http.server
import json
import mimetypes
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

MAX_BODY = 8 << 20
TOKEN_LIFETIME = 86400              # [settings] OAUTH2_PROVIDER ACCESS_TOKEN_EXPIRE_SECONDS
BACKOFF_PERIOD = 2                  # [utils] TOKEN_BACKOFF_PERIOD_SECONDS default
BACKOFF_MAX = 3600                  # [utils] TOKEN_BACKOFF_MAXIMUM_SECONDS default
PUBLIC_SCOPES = "rw:profile rw:issuer rw:backpack"   # seed.py's `public` ApplicationInfo
SVG_NS = "{http://www.w3.org/2000/svg}svg"
HTML_500 = b"<h1>Server Error (500)</h1>"            # Django's handler500 with DEBUG off
HTML_404 = (b"<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n"
            b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this "
            b"server.</p>\n</body>\n</html>\n")
HTML_503 = (b"<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
            b"<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>")
FAULT_KINDS = ("html500", "status", "hang", "drop", "lost", "hang_after", "unauthorized",
               "malformed", "no_entity", "invalid_grant")
ROLES = ("staff", "editor", "owner")
EXPIRES_DURATIONS = ("days", "weeks", "months", "years")   # [models] EXPIRES_DURATION_CHOICES
RECIPIENT_TYPES = ("email", "openBadgeId", "telephone", "url")
DUPLICATE = "A previous award of this badge already exists for this recipient."   # [ser2]
FUTURE_ISSUED_ON = "Only issuedOn dates in the past are acceptable."              # [ser2]
DATETIME_FORMAT_ERROR = ("Datetime has wrong format. Use one of these formats instead: "
                         "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].")     # [drf]
NOT_A_FILE = "The submitted data was not a file. Check the encoding type on the form."   # [drf]
# django.utils.dateparse.datetime_re, which DRF's DateTimeField uses for ISO 8601
DATETIME_RE = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?\s*"
    r"(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$")
# Django's URLValidator, simplified: a scheme it accepts, a host, an optional port and path
URL_RE = re.compile(r"^(?:https?|ftps?)://(?:[^\s:@/]+(?::[^\s:@/]*)?@)?"
                    r"(?:localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|"
                    r"(?:[a-zA-Z0-9\u00a1-\uffff](?:[a-zA-Z0-9\u00a1-\uffff-]{0,61}"
                    r"[a-zA-Z0-9\u00a1-\uffff])?\.)+[a-zA-Z\u00a1-\uffff]{2,63}\.?)"
                    r"(?::\d{1,5})?(?:[/?#][^\s]*)?$", re.I)
EMAIL_RE = re.compile(r"^[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*"
                      r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                      r"[A-Za-z0-9-]{2,63}$")
TAG_RE = re.compile(r"<[^>]*>")


# ---- records ----------------------------------------------------------------


@dataclasses.dataclass
class Record:
    """One request the fake received and what it answered. `status` is None
    when no answer went out (drop, lost, hang); `done` is True when the
    request's work happened (an entity created, revoked or updated) whether
    or not the answer was delivered."""
    time: float
    method: str
    path: str
    query: str
    headers: list
    body: bytes
    json: object = None
    form: dict = None
    client: str = None          # the token's "username" or app, or None
    fault: str = None
    status: int = None
    response_headers: list = dataclasses.field(default_factory=list)
    response_body: bytes = b""
    delivered: bool = True
    done: bool = False
    entity: str = None          # the entityId created or acted upon

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def answer(self):
        """The answer's JSON, or None."""
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


class _Invalid(Exception):
    """A DRF ValidationError: fieldErrors (dict) and/or validationErrors (list)."""

    def __init__(self, field_errors=None, validation_errors=None):
        super().__init__(field_errors or validation_errors)
        self.field_errors = field_errors or {}
        self.validation_errors = validation_errors or []


# ---- helpers ----------------------------------------------------------------


def entity_id():
    """[utils] generate_entity_uri: base64url of a UUID4's bytes, '=' trimmed."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def iso(t):
    """[fields] DateTimeWithUtcZAtEndField: UTC, 'Z' at the end, microseconds when any."""
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        s += ".%06d" % d.microsecond
    return s + "Z"


def parse_datetime(value):
    """DRF's DateTimeField.to_internal_value with ISO 8601 input: epoch seconds or raises."""
    if not isinstance(value, str):
        raise ValueError(DATETIME_FORMAT_ERROR)
    m = DATETIME_RE.match(value.strip())
    if not m:
        raise ValueError(DATETIME_FORMAT_ERROR)
    g = m.groupdict()
    tz = datetime.timezone.utc
    if g["tzinfo"] and g["tzinfo"] != "Z":
        t = g["tzinfo"]
        sign = -1 if t[0] == "-" else 1
        hh, mm = int(t[1:3]), int(t[-2:]) if len(t) > 3 else 0
        tz = datetime.timezone(sign * datetime.timedelta(hours=hh, minutes=mm))
    try:
        d = datetime.datetime(int(g["year"]), int(g["month"]), int(g["day"]), int(g["hour"]),
                              int(g["minute"]), int(g["second"] or 0),
                              int((g["microsecond"] or "0").ljust(6, "0")), tz)
    except ValueError:
        raise ValueError(DATETIME_FORMAT_ERROR) from None
    return d.timestamp(), d.year


def sha256_identity(identity, salt):
    """[models] generate_sha256_hashstring: 'sha256$' + hex(SHA-256(identity + salt))."""
    return "sha256$" + hashlib.sha256((identity + (salt or "")).encode()).hexdigest()


def recipient_hash(email, salt):
    """What a verifier compares: the hash of the lower-cased address with the salt."""
    return sha256_identity(email.lower(), salt)


def png_ok(data):
    """PIL's Image.open + verify() on a PNG, as the fake can do without PIL: the
    signature, chunks whose CRCs hold, IHDR first, IEND last."""
    import zlib
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, first, seen_end = 8, True, False
    while pos + 12 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            return False
        crc = int.from_bytes(data[pos + 8 + n:pos + 12 + n], "big")
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            return False
        if first and (kind != b"IHDR" or n != 13):
            return False
        first = False
        pos += 12 + n
        if kind == b"IEND":
            seen_end = True
            break
    return seen_end


def other_raster(data):
    """Formats PIL opens that are not PNG: [fields] ValidImageValidator says 'Invalid PNG'."""
    return data[:3] == b"\xff\xd8\xff" or data[:6] in (b"GIF87a", b"GIF89a") or \
        data[:2] == b"BM" or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def svg_ok(data):
    """[utils] verify_svg: the first element is {http://www.w3.org/2000/svg}svg."""
    import io
    try:
        for _, el in ET.iterparse(io.BytesIO(data), events=("start",)):
            return el.tag == SVG_NS
    except ET.ParseError:
        return False
    return False


def data_uri_png(png):
    return "data:image/png;base64," + base64.b64encode(png).decode()


def tiny_png():
    """A valid 1x1 PNG."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0\x10\x20\x30\xff")) + chunk(b"IEND", b""))


def make_ca(directory, name="badgrfake"):
    """Makes a test CA and a server certificate for 127.0.0.1 and localhost with
    the openssl command; returns {"ca": ca.pem, "cert": server.pem, "key": server.key}."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, "%s-%s" % (name, v)) for k, v in
         (("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"), ("key", "server.key"),
          ("csr", "server.csr"), ("ext", "server.ext"))}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", p["ca_key"], "-out", p["ca"], "-days", "2",
        "-subj", "/CN=%s test CA" % name, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", p["key"], "-out", p["csr"], "-subj", "/CN=127.0.0.1")
    with open(p["ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n")
    run("x509", "-req", "-in", p["csr"], "-CA", p["ca"], "-CAkey", p["ca_key"],
        "-CAcreateserial", "-out", p["cert"], "-days", "2", "-extfile", p["ext"])
    return {"ca": p["ca"], "cert": p["cert"], "key": p["key"]}


# ---- field validation as the serializers do it ------------------------------------


def _char(value, name, errors, *, required=True, allow_null=False, allow_blank=False,
          max_length=None, present=True):
    """DRF CharField (+ [fields] StripTagsCharField): the cleaned value or None."""
    if not present:
        if required:
            errors[name] = ["This field is required."]
        return None
    if value is None:
        if not allow_null:
            errors[name] = ["This field may not be null."]
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        errors[name] = ["Not a valid string."]
        return None
    value = str(value).strip()
    if value == "" and not allow_blank:
        errors[name] = ["This field may not be blank."]
        return None
    if max_length is not None and len(value) > max_length:
        errors[name] = ["Ensure this field has no more than %d characters." % max_length]
        return None
    return TAG_RE.sub("", value)


def _markdown(value, name, errors, present):
    """[fields] MarkdownCharField: no images."""
    v = _char(value, name, errors, required=False, allow_null=True, present=present)
    if v is not None and "![" in v:
        errors[name] = ["Images not supported in markdown"]
        return None
    return v


def _url(value, name, errors, *, required=True, allow_null=False, present=True):
    v = _char(value, name, errors, required=required, allow_null=allow_null, present=present)
    if v is not None and not URL_RE.match(v):
        errors[name] = ["Enter a valid URL."]
        return None
    return v


def _bool(value, name, errors, default):
    """DRF BooleanField ([fields] HumanReadableBooleanField adds on/off)."""
    if value is _ABSENT:
        return default
    if value in (True, 1, "true", "True", "TRUE", "1", "on", "On", "ON", "yes", "y"):
        return True
    if value in (False, 0, "false", "False", "FALSE", "0", "off", "Off", "OFF", "no", "n"):
        return False
    errors[name] = ["Must be a valid boolean."]
    return None


_ABSENT = object()


def _image(value, errors):
    """[fields] ValidImageField: a data URI (PNG or SVG), an http(s) URL skipped
    (None, "skip"), else the errors it gives. Returns (bytes, mime) or None."""
    if value is _ABSENT:
        return None
    if value is None:
        return None                      # allow_null=True
    if not isinstance(value, str):
        raise TypeError("image is not a string")   # data.replace(): AttributeError, a 500
    if urlsplit(value).scheme in ("http", "https"):
        return "skip"
    try:
        mime, encoded = value.replace("data:", "", 1).split(";base64,")
    except ValueError:
        errors["image"] = [NOT_A_FILE]
        return None
    if mime not in ("image/jpeg", "audio/wav", "image/svg+xml") and \
            mimetypes.guess_extension(mime) is None:
        errors["image"] = ["Invalid MIME type"]
        return None
    try:
        data = base64.b64decode(encoded)
    except (ValueError, binascii.Error):
        errors["image"] = [NOT_A_FILE]
        return None
    if not data:
        errors["image"] = ["The submitted file is empty."]
        return None
    if png_ok(data):
        return data, "image/png"
    if other_raster(data):
        errors["image"] = ["Invalid PNG"]
        return None
    if svg_ok(data):
        return data, "image/svg+xml"
    errors["image"] = ["Invalid image."]
    return None


# ---- the HTTP server -------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def get_request(self):
        sock, addr = super().get_request()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK hold each answer about 40 ms
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.fake._tls_ctx is not None:
            # the handshake happens in the handler's thread, on first read
            sock = self.fake._tls_ctx.wrap_socket(sock, server_side=True,
                                                  do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass                     # a client that fails the handshake is no error of the fake


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BadgrFake/1.0"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def setup(self):
        super().setup()
        self.server.fake._conn_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._conn_closed(self.connection)

    def _dispatch(self):
        self.server.fake._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


# ---- the fake --------------------------------------------------------------------


class BadgrFake:
    """The fake Badgr server.

    tls: None for plain HTTP, or make_ca()'s dict (cert, key) for HTTPS.
    token_lifetime: expires_in of new access tokens (seconds).
    page_size: None = list endpoints paginate only when the client sends
        ?num= ([api] UncachedPaginatedViewMixin); N = N per page by default
        (as a hosted deployment may), Link headers either way.
    require_criteria: refuse a BadgeClass with neither criteriaUrl nor
        criteriaNarrative, as the API guide says ("Criteria is required");
        badgr-server's v2 serializer itself does not check it.
    sliding: extend a token used in the second half of its life ([auth]).
    """

    def __init__(self, *, tls=None, token_lifetime=TOKEN_LIFETIME, page_size=None,
                 require_criteria=True, sliding=True, backoff_period=BACKOFF_PERIOD,
                 origin=None, port=0):
        self.host = "127.0.0.1"
        self.port = port
        self.tls = tls
        self._tls_ctx = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls["cert"], tls["key"])
            self._tls_ctx = ctx
        self.token_lifetime = token_lifetime
        self.page_size = page_size
        self.max_page_size = None        # set_paging(): a cap on ?num= (a hosted deployment's)
        self.require_criteria = require_criteria
        self.sliding = sliding
        self.backoff_period = backoff_period
        self.origin = origin
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._release = threading.Event()
        self._server = None
        self._thread = None
        self._conns = set()
        self._hanging = 0
        self._offset = 0.0               # advance()
        self._behind = 0.0               # set_clock_behind()
        self._records = []
        self._faults = []
        self._refuse_refresh = 0
        self._rate = None                # (rate/s, burst, retry_after)
        self._buckets = {}
        self._backoff = {}               # [utils] cache key -> {"count", "until"}
        self.accounts = {}               # username -> {"password", "verified"}
        self.apps = {}                   # client_id -> {...}
        self.issuers = {}
        self._badgeclasses = {}
        self._assertions = {}
        self._by_identifier = {}         # stored identifier -> its assertions (an index)
        self._tokens = {}                # access token -> {...}
        self._refresh = {}               # refresh token -> {...}
        self.notified = []               # (email, assertion id): the e-mails the service sent
        # [models] AccessTokenProxyManager / seed.py: the `public` application, password
        # grant, public client, rw:profile rw:issuer rw:backpack, refresh tokens issued
        self.add_app("public", secret="", grant="password", scopes=PUBLIC_SCOPES,
                     confidential=False)

    # -- life cycle --

    def start(self):
        self._stopping.clear()
        with self._lock:
            if self._release.is_set():
                self._release = threading.Event()
        srv = _Server((self.host, self.port), _Handler)
        srv.fake = self
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="badgrfake-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving: hung requests end (no answer), open connections close."""
        self._stopping.set()
        with self._lock:
            self._release.set()          # stays set: a hang that starts now ends at once
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

    def _conn_closed(self, c):
        with self._lock:
            self._conns.discard(c)

    @property
    def base_url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    def now(self):
        return time.time() + self._offset

    # -- setup --

    def add_account(self, username, password, verified=True):
        with self._lock:
            self.accounts[username] = {"password": password, "verified": verified}

    def add_app(self, client_id, secret, grant="client_credentials", user=None, scopes="rw:issuer",
                refresh_tokens=True, confidential=True):
        """An OAuth application ([dot] Application + [models] ApplicationInfo):
        grant "password" or "client_credentials" (acting as `user`)."""
        with self._lock:
            self.apps[client_id] = {"secret": secret, "grant": grant, "user": user,
                                    "scopes": scopes.split(), "refresh": refresh_tokens,
                                    "confidential": confidential}

    def add_issuer(self, name, staff=None, entity=None):
        """An issuer and its staff: {username: "staff" | "editor" | "owner"}."""
        eid = entity or entity_id()
        with self._lock:
            self.issuers[eid] = {"entityId": eid, "name": name, "staff": dict(staff or {}),
                                 "createdAt": iso(self.now())}
        return eid

    # -- state (read only) --

    def badgeclasses(self, issuer=None):
        with self._lock:
            return [json.loads(json.dumps(b)) for b in self._badgeclasses.values()
                    if issuer is None or b["issuer"] == issuer]

    def badgeclass(self, eid):
        with self._lock:
            b = self._badgeclasses.get(eid)
            return json.loads(json.dumps(b)) if b else None

    def assertions(self, badgeclass=None, email=None, include_revoked=True):
        with self._lock:
            return [json.loads(json.dumps(a)) for a in self._assertions.values()
                    if (badgeclass is None or a["badgeclass"] == badgeclass)
                    and (email is None or a["_identifier"] == email.lower())
                    and (include_revoked or not a["revoked"])]

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
                    raise AssertionError("badgrfake: %d of %d matching requests after %.1fs; "
                                         "got %s" % (len(found), count, timeout, seen or "none"))
                self._cond.wait(left)

    @property
    def hanging(self):
        """How many requests hang now."""
        with self._lock:
            return self._hanging

    def wait_hanging(self, n=1, timeout=10.0):
        """Waits until `n` requests hang (a hang is recorded only when it ends)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._hanging < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("badgrfake: %d of %d requests hanging after %.1fs"
                                         % (self._hanging, n, timeout))
                self._cond.wait(left)

    def state(self):
        """What GET /_fake/state answers."""
        with self._lock:
            return {"issuers": list(self.issuers.values()),
                    "badgeclasses": self.badgeclasses(),
                    "assertions": self.assertions(),
                    "notified": [list(n) for n in self.notified],
                    "requests": [{"method": r.method, "path": r.path, "query": r.query,
                                  "status": r.status, "fault": r.fault, "done": r.done,
                                  "delivered": r.delivered, "client": r.client,
                                  "entity": r.entity, "time": r.time,
                                  "body": r.body.decode("utf-8", "replace")[:4096]}
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
        """Every access token issued so far expires now (refresh tokens stay)."""
        with self._lock:
            for t in self._tokens.values():
                t["expires"] = self.now() - 1

    def refuse_refresh(self, count=1):
        """The next `count` refresh grants are refused (invalid_grant), the refresh
        token revoked, as when the platform revoked the app's tokens."""
        with self._lock:
            self._refuse_refresh += count

    def set_rate_limit(self, rate=None, burst=None, retry_after=1):
        """Per-client rate limit on /v2 (a token bucket per access token's owner):
        past it, 429 with Retry-After. None switches it off. badgr-server has no
        DRF throttle classes configured ([settings] REST_FRAMEWORK); the hosted
        service's limits are not published, so this answers as DRF's Throttled
        would through [entity]'s v2 exception handler, plus a Retry-After."""
        with self._lock:
            self._rate = None if rate is None else (float(rate), float(burst or rate),
                                                    retry_after)
            self._buckets.clear()

    def set_paging(self, default=None, maximum=None):
        """Pages of list endpoints: `default` per page without ?num=, at most `maximum`."""
        with self._lock:
            self.page_size = default
            self.max_page_size = maximum

    def advance(self, seconds):
        """Moves the fake's clock (token expiry, login back-off) forward."""
        with self._lock:
            self._offset += seconds

    def set_clock_behind(self, seconds):
        """The platform's clock, as issuedOn is checked against it, is `seconds`
        behind ours: an issuedOn of 'now' sent by the client is in its future."""
        with self._lock:
            self._behind = seconds

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
                     headers=list(h.headers.items()), body=b"")
        try:
            rec.body = self._read_body(h)
        except ValueError as e:
            h.close_connection = True
            self._send(h, rec, _Answer(400, str(e), "text/plain"))
            return
        if rec.path.startswith("/_fake/"):
            self._send(h, None, self._control(rec))
            return
        fault = self._take_fault(rec.method, rec.path)
        kind = fault["kind"] if fault else None
        rec.fault = kind
        if kind in ("drop", "hang"):
            if kind == "hang":
                with self._cond:
                    ev = self._release
                    self._hanging += 1
                    self._cond.notify_all()
                ev.wait()
                with self._cond:
                    self._hanging -= 1
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        if kind in ("html500", "status", "unauthorized"):
            ans = self._fault_answer(rec, fault)
        elif kind == "invalid_grant":
            ans = _Answer(400, {"error": "invalid_grant"}, headers=_NO_STORE)
        else:
            try:
                ans = self._route(rec, h)
            except Exception as e:  # noqa: BLE001 - an unhandled error is Django's 500
                rec.fault = rec.fault or "exception: %r" % e
                ans = _Answer(500, HTML_500, "text/html")
        if kind == "hang_after":
            with self._cond:
                ev = self._release
                self._hanging += 1
                self._cond.notify_all()
            ev.wait()
            with self._cond:
                self._hanging -= 1
        if kind in ("lost", "hang_after"):
            rec.status = ans.status
            rec.response_body = ans.body
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        if kind == "malformed" and 200 <= ans.status < 300:
            ans = _Answer(ans.status, ans.body[: max(1, len(ans.body) // 2)], ans.content_type)
        if kind == "no_entity" and 200 <= ans.status < 300:
            doc = json.loads(ans.body)
            for item in doc.get("result", []):
                item.pop("entityId", None)
            ans = _Answer(ans.status, doc, ans.content_type)
        self._send(h, rec, ans)

    def _fault_answer(self, rec, f):
        if f["kind"] == "html500":
            return _Answer(500, f["body"] or HTML_500, "text/html; charset=utf-8")
        if f["kind"] == "unauthorized":
            return self._error(401, "no valid auth token found")
        headers = []
        if f["retry_after"] is not None:
            headers.append(("Retry-After", str(f["retry_after"])))
        body = f["body"]
        if body is None:
            body = HTML_503 if f["status"] == 503 else (
                "<html><body><h1>%d</h1></body></html>" % f["status"]).encode()
        return _Answer(f["status"], body, f["content_type"] or "text/html; charset=utf-8",
                       headers)

    def _read_body(self, h):
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                line = h.rfile.readline(100)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += h.rfile.read(size)
                h.rfile.readline(10)
                if len(out) > MAX_BODY:
                    raise ValueError("request body too large")
        try:
            n = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("bad Content-Length") from None
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return h.rfile.read(n) if n else b""

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
            if p == "/_fake/refresh/refuse" and m == "POST":
                self.refuse_refresh(doc.get("count", 1))
                return _Answer(200, {})
            if p == "/_fake/rate" and m == "POST":
                self.set_rate_limit(doc.get("rate"), doc.get("burst"), doc.get("retry_after", 1))
                return _Answer(200, {})
            if p == "/_fake/clock" and m == "POST":
                if "advance" in doc:
                    self.advance(float(doc["advance"]))
                if "behind" in doc:
                    self.set_clock_behind(float(doc["behind"]))
                return _Answer(200, {})
            if p == "/_fake/paging" and m == "POST":
                self.set_paging(doc.get("default"), doc.get("max"))
                return _Answer(200, {})
            if p == "/_fake/requests" and m == "DELETE":
                with self._lock:
                    self._records.clear()
                return _Answer(200, {})
            if p == "/_fake/release" and m == "POST":
                self.release()
                return _Answer(200, {})
        except (TypeError, ValueError) as e:
            return _Answer(400, {"error": str(e)})
        return _Answer(404, {"error": "no such control"})

    # -- routing --

    def _route(self, rec, h):
        p, m = rec.path, rec.method
        if p == "/o/token":
            if m != "POST":
                return _Answer(405, "", "text/html; charset=utf-8", [("Allow", "POST, OPTIONS")])
            return self._token(rec, h)
        if not p.startswith("/v2/"):
            return _Answer(404, HTML_404, "text/html")
        routes = (
            (r"^/v2/issuers/(?P<id>[^/]+)$", {"GET": self._issuer_get}),
            (r"^/v2/issuers/(?P<id>[^/]+)/badgeclasses$",
             {"GET": self._issuer_badgeclasses, "POST": self._badgeclass_create}),
            (r"^/v2/badgeclasses/(?P<id>[^/]+)$",
             {"GET": self._badgeclass_get, "PUT": self._badgeclass_put}),
            (r"^/v2/badgeclasses/(?P<id>[^/]+)/assertions$",
             {"GET": self._assertion_list, "POST": self._assertion_create}),
            (r"^/v2/assertions/(?P<id>[^/]+)$",
             {"GET": self._assertion_get, "DELETE": self._assertion_delete}),
        )
        for pattern, methods in routes:
            mt = re.match(pattern, p)
            if not mt:
                continue
            user = self._authenticate(rec)
            if user is None:
                return self._error(401, "no valid auth token found")
            limited = self._rate_limited(rec)
            if limited:
                return limited
            fn = methods.get(m)
            if fn is None:
                # [entity] exception handler: an APIException's detail goes in fieldErrors
                return self._error(405, "miscellaneous error",
                                   field_errors='Method "%s" not allowed.' % m)
            return fn(rec, h, user, mt.group("id"))
        return _Answer(404, HTML_404, "text/html")

    def _ctype(self, h):
        """DRF content negotiation over [settings] DEFAULT_RENDERER_CLASSES: the
        JSON-LD renderer comes first, so an Accept without application/json
        gets application/ld+json."""
        accept = h.headers.get("Accept", "*/*")
        return "application/json" if "application/json" in accept else "application/ld+json"

    def _ok(self, h, status, result, headers=()):
        """[entity] BaseSerializerV2.response_envelope: status, result (a list)."""
        return _Answer(status, {"status": {"success": True, "description": "ok"},
                                "result": result}, self._ctype(h), headers)

    @staticmethod
    def _error(status, description, field_errors=None, validation_errors=None):
        """[entity] exception_handler + V2ErrorSerializer: non_field_errors move to
        validationErrors; both keys are present on every error."""
        fe = field_errors if field_errors is not None else {}
        ve = list(validation_errors or [])
        if isinstance(fe, dict) and "non_field_errors" in fe:
            fe = dict(fe)
            ve += fe.pop("non_field_errors")
        return _Answer(status, {"status": {"success": False, "description": description},
                                "result": [], "fieldErrors": fe, "validationErrors": ve})

    def _not_found(self):
        return self._error(404, "entity not found or insufficient privileges")

    def _json_body(self, rec):
        """DRF's parsers: JSON (the fake takes no form bodies on /v2, which a JSON
        client never sends). Raises _Invalid / returns an _Answer for refusals."""
        ct = (rec.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not rec.body:
            return {}
        if ct != "application/json":
            return self._error(415, "miscellaneous error",
                               field_errors='Unsupported media type "%s" in request.' % ct)
        try:
            rec.json = json.loads(rec.body)
        except ValueError as e:
            return self._error(400, "bad request",
                               validation_errors=["JSON parse error - %s" % e])
        return rec.json

    # -- authentication --

    def _authenticate(self, rec):
        """[auth] BadgrOAuth2Authentication: a Bearer token, valid and not expired,
        with rw:issuer ([api] valid_scopes); its life extended when used in its
        second half. Returns the username or None (then 401)."""
        a = rec.header("Authorization") or ""
        if not a.startswith("Bearer "):
            return None
        with self._lock:
            t = self._tokens.get(a[7:].strip())
            now = self.now()
            if t is None or t["expires"] <= now:
                return None
            if self.sliding and t["expires"] < now + self.token_lifetime / 2:
                t["expires"] = now + self.token_lifetime
            rec.client = t["user"]
            t["used"] += 1
            if "rw:issuer" not in t["scope"]:
                return ""            # authenticated, but every issuer view is 404 to it
            return t["user"]

    def _rate_limited(self, rec):
        with self._lock:
            if self._rate is None:
                return None
            rate, burst, retry = self._rate
            key = rec.client
            now = time.monotonic()
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = retry if retry is not None else max(1, int((1 - tokens) / rate + 0.999))
                a = self._error(429, "miscellaneous error",
                                field_errors="Request was throttled. Expected available in %d "
                                             "second%s." % (wait, "" if wait == 1 else "s"))
                a.headers.append(("Retry-After", str(wait)))
                rec.fault = "rate"
                return a
            self._buckets[key] = (tokens - 1, now)
        return None

    # -- the token endpoint --

    def _token(self, rec, h):
        """[oauth2_api] TokenView.post inside [utils] throttleable."""
        form = {}
        ct = (rec.header("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ct == "application/x-www-form-urlencoded":
            # Django fills request.POST from form bodies only; a JSON body reads as empty
            form = dict(parse_qsl(rec.body.decode("utf-8", "replace"), keep_blank_values=True))
        rec.form = form
        username = form.get("username")
        key = "failed_token_backoff_%s" % (username if username else "127.0.0.1")
        now = self.now()
        with self._lock:
            backoff = self._backoff.get(key)
            if backoff is not None and backoff["stored"] + BACKOFF_MAX <= now:
                backoff = None             # the cache entry's timeout
            if backoff is not None and backoff["until"] > now:
                # [utils] no count increase, no Retry-After; HttpResponse's default type
                return _Answer(429, json.dumps({
                    "error_description": "Too many login attempts. Please wait and try again.",
                    "error": "login attempts throttled",
                    "expires": self._backoff_seconds(backoff["count"])}),
                    "text/html; charset=utf-8")
        ans = self._token_inner(rec, h, form)
        with self._lock:
            if 200 <= ans.status < 300:
                self._backoff.pop(key, None)
            else:
                count = (backoff["count"] if backoff else 0) + 1
                self._backoff[key] = {"count": count, "stored": now,
                                      "until": now + self._backoff_seconds(count)}
        return ans

    def _backoff_seconds(self, count):
        """[utils] clamped_backoff_in_seconds."""
        return min(BACKOFF_MAX, self.backoff_period ** min(12, count))

    def _token_inner(self, rec, h, form):
        html = "text/html; charset=utf-8"
        if rec.query:
            return _Answer(400, json.dumps({"error": "Token grant parameters must be sent in "
                                                     "post body, not query parameters"}), html)
        grant = form.get("grant_type") or "password"        # [validator] the default grant
        basic_id = basic_secret = None
        auth = rec.header("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                basic_id, basic_secret = base64.b64decode(auth[6:].strip()).decode(
                    "ascii").split(":")
            except (ValueError, UnicodeDecodeError, binascii.Error):
                basic_id = basic_secret = None
        client_id = basic_id if basic_id is not None else form.get("client_id")
        client_secret = basic_secret if basic_id is not None else form.get("client_secret")
        requested = form.get("scope", "").split()
        with self._lock:
            app = None
            if client_id:
                app = self.apps.get(client_id)
                if app is None:
                    return _Answer(400, json.dumps({"error": "invalid client_id"}), html)
                if client_secret and app["secret"] != client_secret:
                    return _Answer(400, json.dumps({"error": "invalid client_secret"}), html)
                if set(requested) - set(app["scopes"]):
                    return _Answer(400, json.dumps({"error": "invalid scope requested"}), html)
            else:
                app = self.apps["public"]            # [validator] authenticate_client default
                client_id = "public"
            scope = " ".join(requested) if requested else " ".join(app["scopes"])
            if grant == "password":
                return self._grant_password(form, client_id, app, scope)
            if grant == "client_credentials":
                if not app["confidential"] or not client_secret or \
                        client_secret != app["secret"]:
                    return _Answer(401, {"error": "invalid_client"}, headers=_NO_STORE)
                if app["grant"] != "client_credentials":
                    return _Answer(400, {"error": "unauthorized_client"}, headers=_NO_STORE)
                # oauthlib's client credentials grant issues no refresh token
                return self._issue(app["user"], client_id, scope, refresh=False)
            if grant == "refresh_token":
                return self._grant_refresh(form, client_id, app)
            return _Answer(400, {"error": "unsupported_grant_type"}, headers=_NO_STORE)

    def _grant_password(self, form, client_id, app, scope):
        for p in ("username", "password"):
            if not form.get(p):
                return _Answer(400, {"error": "invalid_request",
                                     "error_description": "Request is missing %s parameter." % p},
                               headers=_NO_STORE)
        if app["grant"] != "password":
            return _Answer(400, {"error": "unauthorized_client"}, headers=_NO_STORE)
        acct = self.accounts.get(form["username"])
        if acct is None or acct["password"] != form["password"] or not acct["password"]:
            return _Answer(400, {"error": "invalid_grant",
                                 "error_description": "Invalid credentials given."},
                           headers=_NO_STORE)
        return self._issue(form["username"], client_id, scope, refresh=app["refresh"])

    def _grant_refresh(self, form, client_id, app):
        rt = form.get("refresh_token")
        if not rt:
            return _Answer(400, {"error": "invalid_request",
                                 "error_description": "Missing refresh token parameter."},
                           headers=_NO_STORE)
        r = self._refresh.get(rt)
        if self._refuse_refresh > 0 and r is not None:
            self._refuse_refresh -= 1
            r["revoked"] = True
        if r is None or r["revoked"] or r["client_id"] != client_id:
            return _Answer(400, {"error": "invalid_grant"}, headers=_NO_STORE)
        # [dot] ROTATE_REFRESH_TOKEN: the old refresh token is revoked and its access
        # token deleted; a new pair comes back
        r["revoked"] = True
        self._tokens.pop(r["access"], None)
        return self._issue(r["user"], client_id, r["scope"], refresh=True)

    def _issue(self, user, client_id, scope, refresh):
        at = secrets.token_urlsafe(22)
        self._tokens[at] = {"user": user, "client_id": client_id, "scope": scope.split(),
                            "expires": self.now() + self.token_lifetime, "used": 0}
        body = {"access_token": at, "expires_in": self.token_lifetime, "token_type": "Bearer",
                "scope": scope}
        if refresh:
            rt = secrets.token_urlsafe(22)
            self._refresh[rt] = {"access": at, "user": user, "client_id": client_id,
                                 "scope": scope, "revoked": False}
            body["refresh_token"] = rt
        return _Answer(200, body, headers=_NO_STORE)

    # -- permissions --

    def _role(self, user, issuer_id):
        iss = self.issuers.get(issuer_id)
        if iss is None or not user:
            return None
        return iss["staff"].get(user)

    # -- issuers --

    def _issuer_json(self, iss):
        return {"entityType": "Issuer", "entityId": iss["entityId"],
                "openBadgeId": self._origin() + "/public/issuers/" + iss["entityId"],
                "createdAt": iss["createdAt"], "name": iss["name"],
                "email": "issuer@example.edu", "url": "https://example.edu",
                "description": "", "image": None,
                "staff": [{"user": u, "role": r} for u, r in iss["staff"].items()],
                "extensions": {}}

    def _origin(self):
        return self.origin or self.base_url

    def _issuer_get(self, rec, h, user, eid):
        with self._lock:
            if self._role(user, eid) is None:          # [api] IssuerDetail: IsEditorButOwner...
                return self._not_found()
            return self._ok(h, 200, [self._issuer_json(self.issuers[eid])])

    def _issuer_badgeclasses(self, rec, h, user, eid):
        with self._lock:
            if self._role(user, eid) is None:
                return self._not_found()
            items = sorted((b for b in self._badgeclasses.values() if b["issuer"] == eid),
                           key=lambda b: b["_created"])
            return self._page(rec, h, [self._bc_public(b) for b in items])

    # -- BadgeClasses --

    def _bc_public(self, b):
        return {k: v for k, v in b.items() if not k.startswith("_")}

    def _badgeclass_fields(self, doc, errors, creating):
        """[ser2] BadgeClassSerializerV2's fields; returns the validated values."""
        if not isinstance(doc, dict):
            raise _Invalid(validation_errors=[
                "Invalid data. Expected a dictionary, but got %s." % type(doc).__name__])
        v = {}
        g = doc.get
        v["name"] = _char(g("name"), "name", errors, max_length=1024, present="name" in doc)
        v["description"] = _char(g("description"), "description", errors, max_length=16384,
                                 present="description" in doc)
        if "criteriaUrl" in doc:
            v["criteriaUrl"] = _url(g("criteriaUrl"), "criteriaUrl", errors, required=False,
                                    allow_null=True)
        if "criteriaNarrative" in doc:
            v["criteriaNarrative"] = _markdown(g("criteriaNarrative"), "criteriaNarrative",
                                               errors, True)
        img = _image(doc.get("image", _ABSENT), errors)
        if img not in (None, "skip"):
            v["image"] = img
        if "tags" in doc:
            tags = g("tags")
            if not isinstance(tags, list):
                errors["tags"] = ['Expected a list of items but got type "%s".'
                                  % type(tags).__name__]
            else:
                te, out = {}, []
                for i, t in enumerate(tags):
                    e = {}
                    c = _char(t, "t", e, max_length=1024)
                    if e:
                        te[str(i)] = e["t"]
                    out.append(c)
                if te:
                    errors["tags"] = te
                else:
                    v["tags"] = out
        if "alignments" in doc:
            al = g("alignments")
            if not isinstance(al, list):
                errors["alignments"] = {"non_field_errors": [
                    'Expected a list of items but got type "%s".' % type(al).__name__]}
            else:
                ae, out, bad = [], [], False
                for item in al:
                    e = {}
                    if not isinstance(item, dict):
                        e["non_field_errors"] = ["Invalid data. Expected a dictionary, but got "
                                                 "%s." % type(item).__name__]
                        ae.append(e)
                        bad = True
                        continue
                    o = {"targetName": _char(item.get("targetName"), "targetName", e,
                                             present="targetName" in item),
                         "targetUrl": _url(item.get("targetUrl"), "targetUrl", e,
                                           present="targetUrl" in item)}
                    for k in ("targetDescription", "targetFramework", "targetCode"):
                        o[k] = _char(item.get(k), k, e, required=False, allow_null=True,
                                     allow_blank=True, present=k in item)
                    ae.append(e)
                    bad = bad or bool(e)
                    out.append(o)
                if bad:
                    errors["alignments"] = ae
                else:
                    v["alignments"] = out
        if "expires" in doc and doc["expires"]:        # [ser2] a blank expires is dropped
            ex = doc["expires"]
            if not isinstance(ex, dict):
                errors["expires"] = {"non_field_errors": [
                    "Invalid data. Expected a dictionary, but got %s." % type(ex).__name__]}
            else:
                e = {}
                amount, duration = ex.get("amount", _ABSENT), ex.get("duration", _ABSENT)
                if amount is _ABSENT:
                    e["amount"] = ["This field is required."]
                elif amount is not None and (isinstance(amount, bool) or not re.fullmatch(
                        r"-?\d+", str(amount).strip())):
                    e["amount"] = ["A valid integer is required."]
                elif amount is not None and int(str(amount)) < 1:
                    e["amount"] = ["Must be a positive integer"]
                if duration is _ABSENT:
                    e["duration"] = ["This field is required."]
                elif duration is not None and duration not in EXPIRES_DURATIONS:
                    e["duration"] = ['"%s" is not a valid choice.' % duration]
                if e:
                    errors["expires"] = e
                else:
                    v["expires"] = {"amount": None if amount is None else int(str(amount)),
                                    "duration": duration}
        return v

    def _badgeclass_create(self, rec, h, user, issuer_id):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        with self._lock:
            role = self._role(user, issuer_id)
            if role not in ("editor", "owner"):        # [api] IsEditor on the issuer
                return self._not_found()
            errors = {}
            try:
                v = self._badgeclass_fields(doc, errors, True)
            except TypeError:
                return _Answer(500, HTML_500, "text/html")
            except _Invalid as e:
                return self._error(400, "bad request", e.field_errors, e.validation_errors)
            if errors:
                return self._error(400, "bad request", errors)
            if "image" not in v:
                # [ser2] create(): a dict ValidationError keeps its string as is
                return self._error(400, "bad request",
                                   {"image": "Valid image file or data URI required."})
            if self.require_criteria and not v.get("criteriaUrl") and \
                    not v.get("criteriaNarrative"):
                # [guide] "One or both of criteriaNarrative ... and/or criteriaUrl ... must be
                # supplied"; the wording is the fake's
                return self._error(400, "bad request", validation_errors=[
                    "One or both of criteriaNarrative and criteriaUrl must be provided."])
            eid = entity_id()
            now = self.now()
            b = {"entityType": "BadgeClass", "entityId": eid,
                 "openBadgeId": self._origin() + "/public/badges/" + eid,
                 "createdAt": iso(now), "createdBy": user, "issuer": issuer_id,
                 "issuerOpenBadgeId": self._origin() + "/public/issuers/" + issuer_id,
                 "name": v["name"], "description": v["description"],
                 "image": self._origin() + "/media/uploads/badges/issuer_badgeclass_%s%s" % (
                     uuid.uuid4(), ".png" if v["image"][1] == "image/png" else ".svg"),
                 "criteriaUrl": v.get("criteriaUrl"),
                 "criteriaNarrative": v.get("criteriaNarrative"),
                 "alignments": v.get("alignments", []), "tags": v.get("tags", []),
                 "expires": v.get("expires", {"amount": None, "duration": None}),
                 "extensions": {},
                 "_created": now, "_image": base64.b64encode(v["image"][0]).decode(),
                 "_image_type": v["image"][1], "_updates": 0}
            self._badgeclasses[eid] = b
            rec.done, rec.entity = True, eid
            return self._ok(h, 201, [self._bc_public(b)])

    def _badgeclass_get(self, rec, h, user, eid):
        with self._lock:
            b = self._badgeclasses.get(eid)
            if b is None or self._role(user, b["issuer"]) is None:   # [api] MayEditBadgeClass
                return self._not_found()
            return self._ok(h, 200, [self._bc_public(b)])

    def _badgeclass_put(self, rec, h, user, eid):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        with self._lock:
            b = self._badgeclasses.get(eid)
            if b is None or self._role(user, b["issuer"]) not in ("editor", "owner"):
                return self._not_found()
            errors = {}
            try:
                v = self._badgeclass_fields(doc, errors, False)
            except TypeError:
                return _Answer(500, HTML_500, "text/html")
            except _Invalid as e:
                return self._error(400, "bad request", e.field_errors, e.validation_errors)
            if errors:
                return self._error(400, "bad request", errors)
            for k in ("name", "description", "criteriaUrl", "criteriaNarrative", "tags",
                      "alignments", "expires"):
                if k in v:
                    b[k] = v[k]
            if "image" in v:
                b["_image"] = base64.b64encode(v["image"][0]).decode()
                b["_image_type"] = v["image"][1]
            b["_updates"] += 1
            rec.done, rec.entity = True, eid
            return self._ok(h, 200, [self._bc_public(b)])

    # -- assertions --

    def _as_public(self, a):
        out = {k: v for k, v in a.items() if not k.startswith("_")}
        out["recipient"] = dict(a["recipient"])
        return out

    def _assertion_create(self, rec, h, user, bc_id):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        with self._lock:
            b = self._badgeclasses.get(bc_id)
            # [api] BadgeInstanceList: MayIssueBadgeClass (any staff role)
            if b is None or self._role(user, b["issuer"]) is None:
                return self._not_found()
            if not isinstance(doc, dict):
                return self._error(400, "bad request", validation_errors=[
                    "Invalid data. Expected a dictionary, but got %s." % type(doc).__name__])
            errors = {}
            now = self.now()
            r = doc.get("recipient", _ABSENT)
            ident = rtype = hashed = None
            if r is not _ABSENT:
                re_ = {}
                if not isinstance(r, dict):
                    errors["recipient"] = {"non_field_errors": [
                        "Invalid data. Expected a dictionary, but got %s." % type(r).__name__]}
                else:
                    ident = _char(r.get("identity"), "identity", re_, present="identity" in r)
                    rtype = r.get("type", "email")
                    if rtype not in RECIPIENT_TYPES:
                        re_["type"] = ['"%s" is not a valid choice.' % rtype]
                    hashed = r.get("hashed")
                    if hashed is not None:
                        hashed = _bool(hashed, "hashed", re_, None)
                    if not re_ and rtype == "email" and not EMAIL_RE.match(ident or ""):
                        re_["non_field_errors"] = ["Enter a valid email address."]
                    if re_:
                        errors["recipient"] = re_
            issued_on = None
            if "issuedOn" in doc:
                try:
                    issued_on, year = parse_datetime(doc["issuedOn"])
                except ValueError as e:
                    errors["issuedOn"] = [str(e)]
                else:
                    # [ser2] validate_issuedOn, against the platform's own clock
                    if issued_on > now - self._behind:
                        errors["issuedOn"] = [FUTURE_ISSUED_ON]
                    elif year < 1583:
                        errors["issuedOn"] = ["Only issuedOn dates after the introduction of "
                                              "the Gregorian calendar are allowed."]
            expires = None
            if doc.get("expires") is not None:
                try:
                    expires, _ = parse_datetime(doc["expires"])
                except ValueError as e:
                    errors["expires"] = [str(e)]
            narrative = _markdown(doc.get("narrative"), "narrative", errors, "narrative" in doc)
            evidence = []
            if "evidence" in doc:
                ev = doc["evidence"]
                if not isinstance(ev, list):
                    errors["evidence"] = {"non_field_errors": [
                        'Expected a list of items but got type "%s".' % type(ev).__name__]}
                else:
                    ee, bad = [], False
                    for item in ev:
                        e = {}
                        if not isinstance(item, dict):
                            e["non_field_errors"] = ["Invalid data. Expected a dictionary, but "
                                                     "got %s." % type(item).__name__]
                        else:
                            url = _url(item.get("url"), "url", e, required=False,
                                       present="url" in item) if "url" in item else None
                            nar = _markdown(item.get("narrative"), "narrative", e,
                                            "narrative" in item)
                            if not e and not (url or nar):
                                e["non_field_errors"] = ["Either url or narrative is required"]
                            evidence.append({"url": url, "narrative": nar})
                        bad = bad or bool(e)
                        ee.append(e)
                    if bad:
                        errors["evidence"] = ee
            notify = _bool(doc.get("notify", _ABSENT), "notify", errors, False)
            allow_dup = _bool(doc.get("allowDuplicateAwards", _ABSENT), "allowDuplicateAwards",
                              errors, True)
            if errors:
                return self._error(400, "bad request", errors)
            if ident is None:
                return self._error(400, "bad request", {"recipient": ["This field is required"]})
            if allow_dup is False:
                # [ser2] validate(): compares the identity as sent with the stored (lower-cased)
                # ones, unexpired and unrevoked; case-sensitively, as on a case-sensitive database
                for a in self._by_identifier.get(ident, ()):
                    if a["badgeclass"] == bc_id and \
                            not a["revoked"] and (a["_expires"] is None or a["_expires"] > now):
                        return self._error(400, "bad request", validation_errors=[DUPLICATE])
            # [models] BadgeInstanceManager.create: sanitize_id lower-cases e-mail identities
            stored = ident.lower() if rtype == "email" else ident
            if hashed is None:
                hashed = rtype in ("email", "telephone")      # [ser2] HASHED_DEFAULTS
            salt = uuid.uuid4().hex
            eid = entity_id()
            first = stored not in self._by_identifier
            a = {"entityType": "Assertion", "entityId": eid,
                 "openBadgeId": self._origin() + "/public/assertions/" + eid,
                 "createdAt": iso(now), "createdBy": user, "badgeclass": bc_id,
                 "badgeclassOpenBadgeId": b["openBadgeId"], "issuer": b["issuer"],
                 "issuerOpenBadgeId": b["issuerOpenBadgeId"],
                 "image": self._origin() + "/media/uploads/badges/assertion-%s.png" % eid,
                 "recipient": {"identity": sha256_identity(stored, salt) if hashed else stored,
                               "hashed": hashed, "type": rtype, "plaintextIdentity": stored,
                               "salt": salt if hashed else None},
                 "issuedOn": iso(issued_on if issued_on is not None else now),
                 "narrative": narrative, "evidence": evidence, "revoked": False,
                 "revocationReason": None, "acceptance": "Unaccepted",
                 "expires": iso(expires) if expires is not None else None, "extensions": {},
                 "_identifier": stored, "_expires": expires, "_created": now,
                 "_notify": notify, "_sent": doc}
            self._assertions[eid] = a
            self._by_identifier.setdefault(stored, []).append(a)
            # [models] manager create(): GDPR_COMPLIANCE_NOTIFY_ON_FIRST_AWARD ([settings]
            # True) mails the first award to an address even when notify is false
            if notify or first:
                self.notified.append((stored, eid))
            rec.done, rec.entity = True, eid
            return self._ok(h, 201, [self._as_public(a)])

    def _assertion_list(self, rec, h, user, bc_id):
        q = parse_qs(rec.query, keep_blank_values=True)
        with self._lock:
            b = self._badgeclasses.get(bc_id)
            if b is None or self._role(user, b["issuer"]) is None:
                return self._not_found()
            now = self.now()
            recipients = q.get("recipient", [])
            inc_exp = q.get("include_expired", [""])[0].lower() in ("1", "true")
            inc_rev = q.get("include_revoked", [""])[0].lower() in ("1", "true")
            # [api] BadgeInstanceList.get_queryset: recipient_identifier__in (exact), not
            # expired, not revoked unless asked; newest first ([entity] ordering -created_at)
            items = [a for a in self._assertions.values() if a["badgeclass"] == bc_id
                     and (not recipients or a["_identifier"] in recipients)
                     and (inc_exp or a["_expires"] is None or a["_expires"] >= now)
                     and (inc_rev or not a["revoked"])]
            items.sort(key=lambda a: a["_created"], reverse=True)
            return self._page(rec, h, [self._as_public(a) for a in items])

    def _page(self, rec, h, items):
        """[pagination] BadgrCursorPagination with ?num= (or the fake's page_size):
        Link: <absolute next URL>; rel="next", other query parameters kept."""
        q = parse_qsl(rec.query, keep_blank_values=True)
        qd = dict(q)
        size = None
        if "num" in qd:
            try:
                size = max(1, min(500, int(qd["num"])))
            except ValueError:
                size = None
        elif self.page_size:
            size = self.page_size
        if size is not None and self.max_page_size:
            size = min(size, self.max_page_size)
        if size is None:
            return self._ok(h, 200, items)
        try:
            start = int(base64.urlsafe_b64decode(qd.get("cursor", "") + "==").decode() or 0) \
                if qd.get("cursor") else 0
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return self._error(404, "miscellaneous error", field_errors="Invalid cursor")
        page = items[start:start + size]
        links = []
        host = h.headers.get("Host") or "%s:%d" % (self.host, self.port)
        scheme = "https" if self.tls else "http"

        def link(offset, rel):
            params = [(k, v) for k, v in q if k != "cursor"]
            if offset > 0:
                params.append(("cursor", base64.urlsafe_b64encode(str(offset).encode())
                               .decode().rstrip("=")))
            return '<%s://%s%s?%s>; rel="%s"' % (scheme, host, rec.path,
                                                  urlencode(params), rel)
        if start + size < len(items):
            links.append(link(start + size, "next"))
        if start > 0:
            links.append(link(max(0, start - size), "prev"))
        return self._ok(h, 200, page, [("Link", ", ".join(links))] if links else [])

    def _assertion_get(self, rec, h, user, eid):
        with self._lock:
            a = self._assertions.get(eid)
            if a is None or self._role(user, a["issuer"]) is None:
                return self._not_found()
            return self._ok(h, 200, [self._as_public(a)])

    def _assertion_delete(self, rec, h, user, eid):
        doc = self._json_body(rec)
        if isinstance(doc, _Answer):
            return doc
        with self._lock:
            a = self._assertions.get(eid)
            # [api] BadgeInstanceDetail.delete: MayEditBadgeClass, unsafe: editor or owner
            if a is None or self._role(user, a["issuer"]) not in ("editor", "owner"):
                return self._not_found()
            reason = doc.get("revocation_reason") if isinstance(doc, dict) else None
            if not reason:
                return self._error(400, "bad request",
                                   {"revocation_reason": "This field is required"})
            if a["revoked"]:
                # [models] BadgeInstance.revoke raises; the view re-raises it as a list
                return self._error(400, "bad request",
                                   validation_errors=["Assertion is already revoked"])
            a["revoked"] = True
            a["revocationReason"] = str(reason)
            rec.done, rec.entity = True, eid
            return self._ok(h, 200, [self._as_public(a)])


_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def main(argv):
    """Runs a fake on its own (for C tests and bench/): an account and its issuer,
    another issuer (and a BadgeClass of it) the account is not staff of, and a
    client credentials app, printed as JSON on the first line of stdout; stops
    on SIGTERM or SIGINT. Tests steer it through /_fake/."""
    import argparse
    import signal
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-dir")
    ap.add_argument("--username", default="badges@example.edu")
    ap.add_argument("--password", default="badgr-fake-password")
    ap.add_argument("--token-lifetime", type=int, default=TOKEN_LIFETIME)
    args = ap.parse_args(argv)
    tls = make_ca(args.tls_dir) if args.tls_dir else None
    fake = BadgrFake(tls=tls, port=args.port, token_lifetime=args.token_lifetime)
    fake.add_account(args.username, args.password)
    fake.add_account("other@example.org", "other-password")
    issuer = fake.add_issuer("Fake issuer", staff={args.username: "owner"})
    other = fake.add_issuer("Other issuer", staff={"other@example.org": "owner"})
    # a BadgeClass of the other issuer, which this account is not staff of
    fake._badgeclasses["OtherIssuersBadge00001"] = {
        "entityType": "BadgeClass", "entityId": "OtherIssuersBadge00001", "issuer": other,
        "name": "Theirs", "description": "", "tags": [], "alignments": [], "_created": 0}
    fake.add_app("lti-app", "app-secret", grant="client_credentials", user=args.username)
    fake.start()
    print(json.dumps({"base_url": fake.base_url, "issuer": issuer, "other_issuer": other,
                      "other_badgeclass": "OtherIssuersBadge00001", "ca": tls and tls["ca"],
                      "username": args.username, "password": args.password,
                      "client_id": "lti-app", "client_secret": "app-secret"}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(1):
        pass
    fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
