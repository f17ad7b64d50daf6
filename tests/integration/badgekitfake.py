"""A contract fake of Mozilla's BadgeKit API (archived upstream, self-hosted only),
for the integration suite. Standard library only (hmac, hashlib); it listens on
127.0.0.1 alone, plain HTTP.

Written from BadgeKit API's docs and code (github.com/mozilla/badgekit-api,
master a60bdc6); no code is copied. Each behaviour names its source in a
comment: [auth] docs/authorization.md, [issuing] docs/issuing.md, [badges]
docs/badges.md, [hooks] docs/webhooks.md, [mw] app/lib/middleware.js
(verifyRequest: the JWT checks, their order and messages; createFinder: the
404s), [index] app/index.js (restify 2.8 parsers before verifyRequest),
[err] app/lib/error-helper.js (ValidationError, ResourceConflict), [val]
app/lib/validation.js with validator 2.0's default messages, [rb]
app/routes/badges.js, [ri] app/routes/badge-instances.js, [mb]
app/models/badge.js, [mi] app/models/badge-instance.js, [img]
app/lib/image-helper.js + app/models/image.js, [mc] app/models/criteria.js,
[wh] app/models/webhook.js, [sql] app/migrations/ (NOT NULL and UNIQUE keys).
Where the fake departs from the code (a crash of the real service) it says so.

    fake = BadgeKitFake(secret="master-secret")       # the MASTER_SECRET
    fake.add_system("badgekit", consumer=("key", "consumer-secret"),
                    webhook=("http://127.0.0.1:PORT/hooks/badgekit/bk", "hook-secret"))
    fake.add_issuer("badgekit", "uni"); fake.add_program("badgekit", "uni", "cs")
    with fake:
        ... the client talks to fake.base_url, signing with sign_request() ...
        fake.badges(); fake.instances(badge="slug")   # state, read only
        fake.wait_for(lambda r: r.method == "POST" and r.status == 201)

Faults (add_fault, or POST /_fake/faults {kind, method, path, count}) are
matched by method ("*" for any) and a regex searched in the path, taken by the
next matching request: status (an InternalError 500, or status=N, nothing
done), stored_500 (the badge row or instance stored, then BadgeKit's 500: what
[rb] putBadge does when a criterion or tag fails after Model.put; the retry
then gets 409), hang (no answer until release() or stop(), nothing done), drop
(no answer, nothing done), lost (the work done, then the connection closed
without an answer). Hooks out: send_hook() signs as [wh] does, forge_hook()
sends forged ones, replay_hook() resends one sent before; the fake sends
award/revoke hooks itself when a system has a webhook ([ri]). The state API
(badges, instances, records, hooks_sent, GET /_fake/state) only reads.

Departures from the real service, each where the real one crashes or is
loose: a token not of three parts is refused "Could not decode JWT" (jws 0.2
returns null and the middleware's read of its payload answers 500); a header
naming any alg but HS256 is "Invalid token signature" (jws 0.2 verifies by
the header's alg); an instance slug held by another learner answers 500 (the
real 409 branch throws in a promise and never answers); validator 2.0's isUrl
and isEmail are approximated by looser patterns. Not modelled: claim codes,
bulk instances, milestones, applications and reviews (only the review hook),
creating or deleting systems, issuers and programs, image uploads
(multipart), pagination, request bodies over 1 MiB (413 here).
"""
import base64
import binascii
import dataclasses
import datetime
import hashlib
import hmac
import http.client
import http.server
import json
import re
import socket
import sys
import threading
import time
from urllib.parse import urlsplit, unquote

MAX_BODY = 1 << 20
FAULT_KINDS = ("status", "stored_500", "hang", "drop", "lost")
# [val] validator 2.0's default messages for the checks BadgeKit's models use
MSG_REQUIRED = "Required field"                        # [val] required()
MSG_LEN = "String is not in range"                     # validator check().len
MSG_URL = "Invalid URL"                                # validator check().isUrl
MSG_IN = "Unexpected value or invalid argument"        # validator check().isIn
MSG_INT = "Invalid integer"                            # validator check().isInt
MSG_EMAIL = "Invalid email"                            # validator check().isEmail
# a loose form of validator 2.0's isUrl and isEmail (scheme + host; local@domain.tld)
URL_RE = re.compile(r"^(?:(?:https?|ftp)://)?[^\s/:@]+(?:\.[^\s/:@]+)+(?::\d+)?(?:[/?#]\S*)?$",
                    re.I)
URL_LOCAL_RE = re.compile(r"^(?:https?|ftp)://(?:localhost|127\.0\.0\.1)(?::\d+)?(?:[/?#]\S*)?$",
                          re.I)
EMAIL_RE = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
# [mw] getAuthToken: the whole header, lazy token between the quotes
AUTH_RE = re.compile(r'^JWT token="(.+?)"$')
SCOPE_RE = re.compile(r"^/systems/([^/]+)(?:/issuers/([^/]+)(?:/programs/([^/]+))?)?(/.*)?$")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s):
    s = s + "=" * (-len(s) % 4)
    return base64.urlsafe_b64decode(s.encode())


def js_json(obj):
    """JSON.stringify's bytes: no spaces, non-ASCII kept, UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign_jwt(payload, secret, alg="HS256", header=None):
    """A JWS compact token as jws.sign makes it ([wh], [auth]): HS256 over
    base64url(header).base64url(payload). alg "none" gives an empty signature."""
    head = header or {"typ": "JWT", "alg": alg}
    signing = b64url(js_json(head)) + "." + b64url(js_json(payload))
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return signing + "." + b64url(sig)


def sign_request(method, target, key, secret, body=None, exp=None, now=None):
    """The Authorization header a BadgeKit client sends ([auth]): claims key, exp,
    method, path (the exact request target) and, with a body, body {alg, hash}."""
    claims = {"key": key, "exp": int((now or time.time()) + 60) if exp is None else exp,
              "method": method, "path": target}
    if body is not None:
        claims["body"] = {"alg": "sha256", "hash": hashlib.sha256(body).hexdigest()}
    return 'JWT token="%s"' % sign_jwt(claims, secret)


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


@dataclasses.dataclass
class Record:
    time: float
    method: str
    target: str
    path: str
    headers: list
    body: bytes
    status: int = 0
    fault: str = None
    delivered: bool = True
    response_body: bytes = b""


@dataclasses.dataclass
class Hook:
    """A hook the fake sent: what it sent and what it got back (ignored, as [ri] does)."""
    url: str
    body: bytes
    authorization: str
    kind: str
    status: int = 0
    error: str = None


class _Answer:
    def __init__(self, status, body=b"", content_type="application/json", headers=()):
        self.status = status
        if isinstance(body, (dict, list)):
            body = js_json(body)
        elif isinstance(body, str):
            body = body.encode()
        self.body = body
        self.content_type = content_type
        self.headers = list(headers)


def _rest_error(status, code, message):
    """A restify 2.8 RestError's body: {code, message}."""
    return _Answer(status, {"code": code, "message": message})


def _not_authorized(message):
    return _rest_error(403, "NotAuthorized", message)            # [mw] http403


def _not_found(model, field, value):
    # [mw] createFinder
    return _rest_error(404, "ResourceNotFound",
                       "Could not find %s field: `%s`, value: `%s`" % (model, field, value))


def _internal(message="An internal error occured"):
    return _rest_error(500, "InternalError", message)              # [mw] http500


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "restify"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002
        pass

    def setup(self):
        super().setup()
        self.server.fake._conn(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._conn(self.connection, False)

    def _dispatch(self):
        self.server.fake._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch


def _check(value, field, errors, kind, *args, required=False):
    """[val] makeValidator: a failing check adds {message, field, value}
    (value || '' as the code sets it)."""
    if value is None:
        if required:
            errors.append({"message": MSG_REQUIRED, "field": field, "value": ""})
        return
    s = value if isinstance(value, str) else (
        ("true" if value else "false") if isinstance(value, bool) else
        json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    ok = True
    msg = None
    if kind == "len":
        lo, hi = args[0], (args[1] if len(args) > 1 else None)
        ok = len(s) >= lo and (hi is None or len(s) <= hi)
        msg = MSG_LEN
    elif kind == "isIn":
        ok = s in args[0]
        msg = MSG_IN
    elif kind == "isUrl":
        ok = bool(URL_RE.match(s) or URL_LOCAL_RE.match(s)) and len(s) < 2083
        msg = MSG_URL
    elif kind == "isInt":
        ok = bool(re.match(r"^-?\d+$", s))
        msg = MSG_INT
    elif kind == "isEmail":
        ok = bool(EMAIL_RE.match(s))
        msg = MSG_EMAIL
    if not ok:
        errors.append({"message": msg, "field": field, "value": value or ""})


class BadgeKitFake:
    """The fake BadgeKit API.

    secret: the MASTER_SECRET ([mw]: key "master" is signed with it).
    """

    def __init__(self, *, secret="master-secret", port=0):
        self.host = "127.0.0.1"
        self.port = port
        self.master_secret = secret
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._release = threading.Event()
        self._stopping = False
        self._server = None
        self._thread = None
        self._conns = set()
        self._hanging = 0
        self._offset = 0.0
        self._records = []
        self._faults = []
        self._next_id = 1
        self.systems = {}            # slug -> {id, slug, name, issuers: {slug: {..programs}}}
        self.consumers = {}          # apiKey -> {apiSecret, system}
        self.webhooks = {}           # system slug -> (url, secret)
        self._badges = {}            # slug -> row
        self._instances = {}         # slug -> row
        self._hooks = []

    # -- life cycle --

    def start(self):
        with self._lock:
            self._stopping = False
            if self._release.is_set():
                self._release = threading.Event()
        srv = _Server((self.host, self.port), _Handler)
        srv.fake = self
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="badgekitfake-%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving: hung requests end (no answer), open connections close."""
        with self._lock:
            self._stopping = True
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

    def _conn(self, c, opened):
        with self._lock:
            (self._conns.add if opened else self._conns.discard)(c)

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def now(self):
        return time.time() + self._offset

    def advance(self, seconds):
        """Moves the fake's clock (token expiry) forward."""
        with self._lock:
            self._offset += seconds

    # -- setup --

    def _id(self):
        with self._lock:
            self._next_id += 1
            return self._next_id - 1

    def add_system(self, slug, name=None, consumer=None, webhook=None):
        """A system; consumer=(apiKey, apiSecret) binds a key to it ([mw], [sql]
        consumers.systemId); webhook=(url, secret) is its webhooks row ([hooks])."""
        with self._lock:
            self.systems[slug] = {"id": self._id(), "slug": slug, "name": name or slug,
                                  "url": "https://example.edu/", "email": None,
                                  "description": None, "issuers": {}}
            if consumer:
                self.consumers[consumer[0]] = {"apiSecret": consumer[1], "system": slug}
            if webhook:
                self.webhooks[slug] = tuple(webhook)

    def add_issuer(self, system, slug, name=None):
        with self._lock:
            self.systems[system]["issuers"][slug] = {"id": self._id(), "slug": slug,
                                                     "name": name or slug, "programs": {}}

    def add_program(self, system, issuer, slug, name=None):
        with self._lock:
            self.systems[system]["issuers"][issuer]["programs"][slug] = {
                "id": self._id(), "slug": slug, "name": name or slug}

    def set_webhook(self, system, url, secret):
        with self._lock:
            if url is None:
                self.webhooks.pop(system, None)
            else:
                self.webhooks[system] = (url, secret)

    # -- state (read only) --

    def _copy(self, obj):
        return json.loads(json.dumps(obj))

    def badges(self, system=None):
        with self._lock:
            return [self._copy(b) for b in self._badges.values()
                    if system is None or b["system"] == system]

    def badge(self, slug):
        with self._lock:
            b = self._badges.get(slug)
            return self._copy(b) if b else None

    def instances(self, badge=None, email=None):
        with self._lock:
            return [self._copy(i) for i in self._instances.values()
                    if (badge is None or i["badge"] == badge)
                    and (email is None or i["email"] == email)]

    @property
    def records(self):
        with self._lock:
            return list(self._records)

    @property
    def hooks_sent(self):
        with self._lock:
            return list(self._hooks)

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
                    seen = ["%s %s -> %s (%s)" % (r.method, r.target, r.status, r.fault)
                            for r in self._records]
                    raise AssertionError("badgekitfake: %d of %d matching requests after %.1fs;"
                                         " got %s" % (len(found), count, timeout, seen))
                self._cond.wait(left)

    def wait_hooks(self, count=1, timeout=10.0):
        """Waits until `count` hooks were sent (and their answers read or failed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._hooks) < count or any(h.status == 0 and h.error is None
                                                  for h in self._hooks[:count]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("badgekitfake: %d of %d hooks after %.1fs"
                                         % (len(self._hooks), count, timeout))
                self._cond.wait(left)
            return list(self._hooks)

    @property
    def hanging(self):
        with self._lock:
            return self._hanging

    def wait_hanging(self, n=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._hanging < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("badgekitfake: %d of %d requests hanging"
                                         % (self._hanging, n))
                self._cond.wait(left)

    def state(self):
        """What GET /_fake/state answers."""
        with self._lock:
            return {"systems": self._copy(self.systems),
                    "badges": self.badges(), "instances": self.instances(),
                    "hooks": [{"url": h.url, "kind": h.kind, "status": h.status,
                               "error": h.error, "body": h.body.decode("utf-8", "replace")}
                              for h in self._hooks],
                    "faults": self.faults,
                    "requests": [{"method": r.method, "target": r.target, "status": r.status,
                                  "fault": r.fault, "delivered": r.delivered, "time": r.time,
                                  "body": r.body.decode("utf-8", "replace")[:4096]}
                                 for r in self._records]}

    # -- faults --

    def add_fault(self, kind, method="*", path=".*", count=1, status=None):
        """Queues a fault for the next `count` requests whose method (or "*") and path
        (a regex searched in the path, query excluded) match; tried in order."""
        if kind not in FAULT_KINDS:
            raise ValueError("unknown fault %r" % kind)
        re.compile(path)
        with self._lock:
            self._faults.append({"kind": kind, "method": method.upper(), "path": path,
                                 "count": count, "status": status})

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

    def _take_fault(self, method, path):
        with self._lock:
            for f in self._faults:
                if f["method"] in ("*", method) and re.search(f["path"], path):
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self._faults.remove(f)
                    return dict(f)
        return None

    # -- hooks out --

    def _post_hook(self, url, body, authorization, kind):
        """[wh] Webhooks.call: one POST, Content-Type JSON, the answer ignored (only
        logged by [ri]); no retry. Only to 127.0.0.1."""
        return self._deliver(self._record_hook(url, body, authorization, kind))

    def _record_hook(self, url, body, authorization, kind):
        hook = Hook(url=url, body=body, authorization=authorization, kind=kind)
        with self._cond:
            self._hooks.append(hook)
            self._cond.notify_all()
        return hook

    def _deliver(self, hook):
        url, body, authorization = hook.url, hook.body, hook.authorization
        u = urlsplit(url)
        if u.hostname not in ("127.0.0.1", "localhost"):
            hook.error = "refused: not 127.0.0.1"
        else:
            headers = {"Content-Type": "application/json"}
            if authorization is not None:
                headers["Authorization"] = authorization
            try:
                conn = http.client.HTTPConnection("127.0.0.1", u.port or 80, timeout=10)
                try:
                    conn.request("POST", (u.path or "/") + ("?" + u.query if u.query else ""),
                                 body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    hook.status = r.status
                finally:
                    conn.close()
            except OSError as e:
                hook.error = repr(e)
        with self._cond:
            self._cond.notify_all()
        return hook

    @staticmethod
    def hook_authorization(body, secret, alg="HS256", hash_alg="sha256", digest=None):
        """[wh] the token: payload {body: {alg: "sha256", hash: hex sha256(body)}},
        header {typ: JWT, alg: HS256}, signed with the webhook's secret; no exp,
        path, method, key or nonce."""
        h = digest if digest is not None else hashlib.new(hash_alg, body).hexdigest()
        return 'JWT token="%s"' % sign_jwt({"body": {"alg": hash_alg, "hash": h}}, secret, alg)

    def send_hook(self, system, data, url=None, secret=None, asynchronous=False):
        """Sends `data` (a dict, serialised as JSON.stringify does) as [wh] signs it,
        to the system's webhook (or url/secret given). Returns the Hook."""
        with self._lock:
            wurl, wsecret = self.webhooks.get(system, (None, None))
        url, secret = url or wurl, secret if secret is not None else wsecret
        body = js_json(data)
        auth = self.hook_authorization(body, secret)
        if asynchronous:
            # recorded now (hooks_sent shows it at once), posted from another thread
            hook = self._record_hook(url, body, auth, data.get("action"))
            threading.Thread(target=self._deliver, args=(hook,), daemon=True).start()
            return hook
        return self._post_hook(url, body, auth, data.get("action"))

    def forge_hook(self, system, data, how):
        """A hook BadgeKit would not send: how = wrong_secret, tampered (signed,
        then the body changed), alg_none, unsigned (no Authorization), hash_mismatch
        (a correctly signed token whose hash is of other bytes), other_alg (HS512),
        malformed (an Authorization header not of [mw]'s form)."""
        with self._lock:
            url, secret = self.webhooks[system]
        body = js_json(data)
        if how == "wrong_secret":
            auth = self.hook_authorization(body, secret + "-not")
        elif how == "tampered":
            auth = self.hook_authorization(body, secret)
            body = body.replace(b'"award"', b'"revoke"') if b'"award"' in body else body + b" "
        elif how == "alg_none":
            auth = self.hook_authorization(body, secret, alg="none")
        elif how == "unsigned":
            auth = None
        elif how == "hash_mismatch":
            auth = self.hook_authorization(body, secret,
                                           digest=hashlib.sha256(body + b"x").hexdigest())
        elif how == "other_alg":
            auth = self.hook_authorization(body, secret, alg="HS512")
        elif how == "malformed":
            auth = "Bearer " + sign_jwt({"body": {"alg": "sha256", "hash": hashlib.sha256(
                body).hexdigest()}}, secret)
        else:
            raise ValueError("unknown forgery %r" % how)
        return self._post_hook(url, body, auth, "forged:" + how)

    def replay_hook(self, hook):
        """Sends a hook sent before again, byte for byte."""
        return self._post_hook(hook.url, hook.body, hook.authorization, "replay:" + hook.kind)

    def review_hook(self, system, badge_slug, email, approved=True):
        """A `review` hook ([hooks] "New Application Review Submitted")."""
        with self._lock:
            badge = self._badge_response(self._badges[badge_slug])
        data = {"action": "review",
                "application": {"id": self._id(), "slug": hashlib.sha1(
                    str(time.time()).encode()).hexdigest(), "learner": email,
                    "created": iso(self.now()), "assignedTo": None,
                    "assignedExpiration": None, "badge": badge, "processed": None,
                    "evidence": []},
                "review": {"id": self._id(), "slug": hashlib.sha1(
                    str(time.time() + 1).encode()).hexdigest(),
                    "author": "reviewer@example.edu", "comment": "",
                    "reviewItems": []},
                "approved": approved}
        return self.send_hook(system, data)

    # -- the HTTP side --

    def _append(self, rec):
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()

    def _send(self, h, rec, ans):
        try:
            h.send_response(ans.status)
            h.send_header("Content-Type", ans.content_type)
            h.send_header("Content-Length", str(len(ans.body)))
            for k, v in ans.headers:
                h.send_header(k, v)
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(ans.body)
        except OSError:
            pass
        if rec is not None:
            rec.status = ans.status
            rec.response_body = ans.body
            self._append(rec)

    def _hang(self):
        with self._cond:
            ev = self._release
            self._hanging += 1
            self._cond.notify_all()
        ev.wait()
        with self._cond:
            self._hanging -= 1
            self._cond.notify_all()

    def _handle(self, h):
        u = urlsplit(h.path)
        rec = Record(time=time.time(), method=h.command, target=h.path, path=u.path,
                     headers=list(h.headers.items()), body=b"")
        n = int(h.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            h.close_connection = True
            self._send(h, rec, _rest_error(413, "RequestEntityTooLarge",
                                           "Request body size exceeds %d" % MAX_BODY))
            return
        rec.body = h.rfile.read(n) if n else b""
        if u.path.startswith("/_fake/"):
            self._send(h, None, self._control(h.command, u.path, rec.body))
            return
        if u.path.startswith("/public/") or u.path in ("/", "/healthcheck"):
            # [mw] verifyRequest lets these through unsigned; faults apply to them too
            fault = self._take_fault(rec.method, u.path)
            rec.fault = fault and fault["kind"]
            if fault and fault["kind"] in ("hang", "drop", "lost"):
                if fault["kind"] == "hang":
                    self._hang()
                rec.delivered = False
                self._append(rec)
                h.close_connection = True
                return
            if fault:
                self._send(h, rec, _internal())
                return
            with self._lock:
                self._send(h, rec, self._public(h, rec))
            return
        fault = self._take_fault(rec.method, u.path)
        kind = fault["kind"] if fault else None
        rec.fault = kind
        if kind in ("hang", "drop"):
            if kind == "hang":
                self._hang()
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        if kind == "status":
            st = fault["status"] or 500
            ans = _internal() if st == 500 else _rest_error(st, "Fault", "injected %d" % st)
        else:
            try:
                ans = self._route(h, rec, after_store_500=(kind == "stored_500"))
            except Exception as e:  # noqa: BLE001 - restify answers an uncaught error with 500
                rec.fault = rec.fault or "exception: %r" % e
                ans = _internal(str(e))
        if kind == "lost":
            rec.status = ans.status
            rec.response_body = ans.body
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        self._send(h, rec, ans)

    def _control(self, method, path, body):
        if path == "/_fake/state" and method == "GET":
            return _Answer(200, self.state())
        if path == "/_fake/faults" and method == "POST":
            try:
                f = json.loads(body)
                self.add_fault(f["kind"], f.get("method", "*"), f.get("path", ".*"),
                               int(f.get("count", 1)), f.get("status"))
            except (ValueError, KeyError, TypeError) as e:
                return _Answer(400, {"error": str(e)})
            return _Answer(204, b"")
        if path == "/_fake/faults" and method == "DELETE":
            self.clear_faults()
            return _Answer(204, b"")
        if path == "/_fake/release" and method == "POST":
            self.release()
            return _Answer(204, b"")
        if path == "/_fake/advance" and method == "POST":
            self.advance(float(json.loads(body)["seconds"]))
            return _Answer(204, b"")
        if path == "/_fake/hook" and method == "POST":
            # {system, action: review|forge|replay, ...}: hooks out on demand
            d = json.loads(body)
            if d.get("forge"):
                hk = self.forge_hook(d["system"], d["data"], d["forge"])
            elif d.get("replay") is not None:
                hk = self.replay_hook(self.hooks_sent[int(d["replay"])])
            else:
                hk = self.send_hook(d["system"], d["data"])
            return _Answer(200, {"status": hk.status, "error": hk.error})
        return _Answer(404, {"error": "no such control"})

    def _public(self, h, rec):
        """[ri] getAssertion and getBadgeClass; [routes/index.js] / and /healthcheck."""
        if rec.method != "GET":
            return _Answer(405, {"code": "MethodNotAllowed",
                                 "message": "%s is not allowed" % rec.method},
                           headers=[("Allow", "GET")])
        if rec.path in ("/", "/healthcheck"):
            return _Answer(200, {"app": "BadgeKit API", "version": "fake"})
        m = re.match(r"^/public/assertions/([^/]+)$", rec.path)
        if m:
            inst = next(iter(self._ci(self._instances, "slug", unquote(m.group(1)))), None)
            if inst is None:
                return _rest_error(404, "ResourceNotFound", "Could not find badge instance")
            b = self._badges.get(inst["badge"])
            host = "http://%s" % (h.headers.get("Host") or "")
            return _Answer(200, {
                "uid": inst["slug"],
                "recipient": {"identity": "sha256$" + hashlib.sha256(
                    inst["email"].encode()).hexdigest(), "type": "email", "hashed": True},
                "badge": host + self._badge_class_path(b),
                "verify": {"url": host + "/public/assertions/" + inst["slug"],
                           "type": "hosted"},
                "issuedOn": self._unix(inst["issuedOn"]),
                "expires": self._unix(inst["expires"]) if inst["expires"] else None})
        m = re.match(r"^/public(/systems/.*)$", rec.path)
        if m:
            sm = SCOPE_RE.match(m.group(1))
            rest = sm and re.match(r"^/badges/([^/]+)$", sm.group(4) or "")
            if sm and rest:
                scope = {"system": unquote(sm.group(1)), "issuer": sm.group(2) and unquote(
                    sm.group(2)), "program": sm.group(3) and unquote(sm.group(3))}
                found = self._find_scope(scope)
                if isinstance(found, _Answer):
                    return found
                b = self._find_badge(scope, unquote(rest.group(1)))
                if isinstance(b, _Answer):
                    return b
                return _Answer(200, {"name": b["name"], "description": b["consumerDescription"],
                                     "image": b["imageUrl"], "criteria": b["criteriaUrl"],
                                     "alignment": [],
                                     "issuer": "http://%s/public/systems/%s" % (
                                         h.headers.get("Host") or "", b["system"])})
        return _rest_error(404, "ResourceNotFound", "%s does not exist" % rec.path)

    @staticmethod
    def _badge_class_path(b):
        # [routes/utils.js] makeBadgeClassUrl
        if b is None:
            return "/public"
        if b["program"]:
            return "/public/systems/%s/issuers/%s/programs/%s/badges/%s" % (
                b["system"], b["issuer"], b["program"], b["slug"])
        if b["issuer"]:
            return "/public/systems/%s/issuers/%s/badges/%s" % (b["system"], b["issuer"],
                                                                 b["slug"])
        return "/public/systems/%s/badges/%s" % (b["system"], b["slug"])

    @staticmethod
    def _unix(value):
        # [lib/unixtime-from-date.js]
        if isinstance(value, (int, float)):
            return int(value)
        try:
            return int(datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.000Z").replace(
                tzinfo=datetime.timezone.utc).timestamp())
        except (ValueError, TypeError):
            return value

    # [index] the server's routes: restify answers an unknown path 404 and a known
    # path with another method 405, both before any `use` handler (verifyRequest)
    def _match(self, method, path):
        m = SCOPE_RE.match(path)
        if not m:
            return None, None
        system, issuer, program, rest = m.groups()
        rest = rest or ""
        scope = {"system": unquote(system), "issuer": issuer and unquote(issuer),
                 "program": program and unquote(program)}
        routes = [
            (r"^/badges$", ("GET", "POST"), "badges"),
            (r"^/badges/([^/]+)$", ("GET", "PUT", "DELETE"), "badge"),
            (r"^/badges/([^/]+)/instances$", ("GET", "POST"), "instances"),
            (r"^/badges/([^/]+)/instances/([^/]+)$", ("GET", "DELETE"), "instance"),
            (r"^/instances/([^/]+)$", ("GET",), "learner"),
        ]
        for pattern, methods, name in routes:
            rm = re.match(pattern, rest)
            if rm:
                if method not in methods:
                    return "405", methods
                return name, (scope, [unquote(g) for g in rm.groups()])
        if rest == "":
            return "405" if method != "GET" else "scope", (("GET",) if method != "GET"
                                                          else (scope, []))
        return None, None

    def _route(self, h, rec, after_store_500=False):
        method = rec.method
        name, arg = self._match(method, rec.path)
        if name is None:
            # restify's ResourceNotFound for an unknown route
            return _rest_error(404, "ResourceNotFound", "%s does not exist" % rec.path)
        if name == "405":
            return _Answer(405, {"code": "MethodNotAllowed",
                                 "message": "%s is not allowed" % method},
                           headers=[("Allow", ", ".join(arg))])
        body_doc = None
        if method in ("POST", "PUT") and rec.body:
            # [index] bodyParser({rejectUnknown: true}): JSON, form or multipart only;
            # BadgeKit cannot hash multipart so the fake takes JSON only
            ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return _rest_error(415, "UnsupportedMediaType", ctype or "unknown")
            try:
                body_doc = json.loads(rec.body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                return _rest_error(400, "InvalidContent", "Invalid JSON: %s" % e)
        elif method in ("POST", "PUT"):
            body_doc = {}
        denied = self._verify(h, rec, arg[0]["system"])
        if denied is not None:
            return denied
        scope, params = arg
        with self._lock:
            found = self._find_scope(scope)
            if isinstance(found, _Answer):
                return found
            if name == "scope":
                return _Answer(200, self._scope_response(scope))
            if name == "learner":
                # [ri] getUserInstances: the learner's instances of the system's badges. Its
                # issuer and program clauses are appended to a `const` string, which the
                # sloppy-mode V8 BadgeKit ran on ignores: the whole system's, in any scope
                email = params[0].lower()
                return _Answer(200, {"instances": [
                    self._instance_response(i, h, self._badges.get(i["badge"]))
                    for i in self._instances.values()
                    if i["email"].lower() == email and i["system"] == scope["system"]]})
            if name == "badges":
                if method == "GET":
                    # [rb] showAllBadges: ?archived= true|1, false|0|absent, any|'' else 400
                    q = dict(p.split("=", 1) if "=" in p else (p, "")
                             for p in urlsplit(rec.target).query.split("&") if p)
                    arch = unquote(q.get("archived", "undefined"))
                    if arch not in ("true", "1", "false", "0", "undefined", "any", ""):
                        return _Answer(400, {
                            "code": "InvalidParameter", "parameter": "archived",
                            "message": "Invalid `archived` parameter. Expecting one of "
                                       "'true', 'false' or 'any'."})
                    if arch in ("true", "1"):
                        return _Answer(200, {"badges": []})
                    return _Answer(200, {"badges": [self._badge_response(b)
                                                    for b in self._badges.values()
                                                    if self._in_scope(b, scope)]})
                return self._create_badge(h, scope, body_doc, after_store_500)
            badge = self._find_badge(scope, params[0])
            if isinstance(badge, _Answer):
                return badge
            if name == "badge":
                if method == "GET":
                    return _Answer(200, {"badge": self._badge_response(badge)})
                if method == "PUT":
                    return self._update_badge(badge, body_doc)
                del self._badges[badge["slug"]]
                return _Answer(200, {"status": "deleted", "badge": self._badge_response(badge)})
            if name == "instances":
                if method == "GET":
                    return _Answer(200, {"instances": [
                        self._instance_response(i, h) for i in self._instances.values()
                        if i["badge"] == badge["slug"]]})
                return self._create_instance(h, scope, badge, body_doc, after_store_500)
            # name == "instance": [ri] findBadgeInstance by email within the badge
            email = params[1]
            inst = next((i for i in self._ci(self._instances, "email", email)
                         if i["badge"] == badge["slug"]), None)
            if inst is None:
                return _not_found("badgeInstance", "email", email)
            if method == "GET":
                return _Answer(200, {"instance": self._instance_response(inst, h, badge)})
            del self._instances[inst["slug"]]
            resp = self._instance_response(inst, h, badge)
            if after_store_500:
                return _internal()
            self._hook_later(scope["system"], {"action": "revoke", "uid": inst["slug"],
                                               "badge": self._badge_response(badge),
                                               "email": inst["email"]})
            return _Answer(200, {"instance": resp})

    # [mw] verifyRequest, check by check in its order with its messages
    def _verify(self, h, rec, system_slug):
        header = h.headers.get("Authorization")
        m = AUTH_RE.match(header or "")
        if not m:
            return _not_authorized("Missing valid Authorization header")
        token = m.group(1)
        parts = token.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("parts")
            head = json.loads(b64url_decode(parts[0]))
            if not isinstance(head, dict):
                raise ValueError("header")
            # jws 0.2 decode: the payload is parsed as JSON only under typ "JWT",
            # else it stays a string (which has none of the claims)
            auth = b64url_decode(parts[1]).decode("utf-8")
            if head.get("typ") == "JWT":
                auth = json.loads(auth)
        except (ValueError, UnicodeDecodeError, binascii.Error):
            # jws 0.2 decode returns null for a token not of three parts; middleware
            # then reads .payload of null: the real service answers 500 there, the
            # fake refuses with its decode message instead
            return _not_authorized("Could not decode JWT")
        # JavaScript truthiness: null, false, 0 and "" are no payload; {} and [] are one
        if auth is None or auth is False or auth == "" or (
                isinstance(auth, (int, float)) and not isinstance(auth, bool) and auth == 0):
            return _not_authorized("Missing JWT payload")
        if not isinstance(auth, dict):
            auth = {}
        if not auth.get("method"):
            return _not_authorized("Missing JWT claim: method")
        if str(auth["method"]).upper() != rec.method.upper():
            return _not_authorized('`method` does not match: using "%s" token for "%s" request'
                                   % (auth["method"], rec.method))
        if not auth.get("path"):
            return _not_authorized("Missing JWT claim: path")
        if auth["path"] != rec.target:
            # req.url: the request target as sent, query and percent-encoding included
            return _not_authorized('`path` does not match: trying to use token for "%s" on "%s"'
                                   % (auth["path"], rec.target))
        now = int(self.now())
        exp = auth.get("exp")
        try:
            # `auth.exp && auth.exp <= now`: a numeric string compares as its number
            expired = bool(exp) and float(exp) <= now
        except (TypeError, ValueError):
            expired = False
        if expired:
            # sic: the real message lacks its closing parenthesis
            return _not_authorized("Token is expired (token expiry: %s, server time: %d"
                                   % (exp, now))
        if rec.method.upper() not in ("GET", "DELETE", "HEAD"):
            body = auth.get("body")
            if not body:
                return _not_authorized("Missing JWT claim: body")
            if not isinstance(body, dict) or not body.get("alg"):
                return _not_authorized("Missing JWT claim: body.alg")
            if not body.get("hash"):
                return _not_authorized("Missing JWT claim: body.hash")
            try:
                # node's crypto.createHash names; hashlib knows the common ones
                computed = hashlib.new(str(body["alg"]).lower(), rec.body).hexdigest()
            except (ValueError, TypeError):
                return _not_authorized("Could not calculate hash, unsupported algorithm: %s"
                                       % body["alg"])
            if body["hash"] != computed:
                return _not_authorized("Computed hash does not match given hash: %s != %s"
                                       % (body["hash"], computed))
        key = auth.get("key")
        if not key:
            return _not_authorized("Missing JWT claim: key")
        if key == "master":
            secret = self.master_secret
        else:
            with self._lock:
                consumer = self.consumers.get(key)
            if consumer is None:
                return _not_authorized("Could not find consumer for API key")
            if not system_slug or consumer["system"] != system_slug:
                return _not_authorized("Invalid token for system")
            secret = consumer["apiSecret"]
        if not self._signature_ok(head, parts, secret):
            return _not_authorized("Invalid token signature")
        return None

    @staticmethod
    def _signature_ok(head, parts, secret):
        # HS256 only. jws 0.2's verify follows the header's alg (and HS384/512 would
        # pass there); the contract here (issue 21) is HS256, so any other alg, `none`
        # included, fails as a bad signature does.
        if head.get("alg") != "HS256":
            return False
        want = hmac.new(secret.encode(), (parts[0] + "." + parts[1]).encode(),
                        hashlib.sha256).digest()
        try:
            got = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return False
        return hmac.compare_digest(want, got)

    # -- scoping ([mw] createFinder chains of [rb], [ri]) --

    def _find_scope(self, scope):
        system = self.systems.get(scope["system"])
        if system is None:
            return _not_found("system", "slug", scope["system"])
        if scope["issuer"] is not None:
            issuer = system["issuers"].get(scope["issuer"])
            if issuer is None:
                return _not_found("issuer", "slug", scope["issuer"])
            if scope["program"] is not None and scope["program"] not in issuer["programs"]:
                return _not_found("program", "slug", scope["program"])
        return None

    def _scope_response(self, scope):
        """GET of the scope itself: [routes/systems.js] {system}, [routes/issuers.js]
        {issuer}, [routes/programs.js] {program}, each its model's toResponse."""
        system = self.systems[scope["system"]]
        if scope["issuer"] is None:
            return {"system": {"id": system["id"], "slug": system["slug"], "url": system["url"],
                               "name": system["name"], "email": system["email"],
                               "imageUrl": None, "issuers": []}}
        issuer = system["issuers"][scope["issuer"]]
        if scope["program"] is None:
            return {"issuer": {"id": issuer["id"], "slug": issuer["slug"],
                               "name": issuer["name"], "url": None, "description": None,
                               "email": None, "imageUrl": None, "programs": []}}
        program = issuer["programs"][scope["program"]]
        return {"program": {"id": program["id"], "slug": program["slug"],
                            "name": program["name"], "url": None, "description": None,
                            "email": None, "imageUrl": None}}

    @staticmethod
    def _in_scope(badge, scope):
        # [rb] findBadge where systemId (+ issuerId (+ programId)): a system scope sees
        # the badges of its issuers and programs too
        return (badge["system"] == scope["system"]
                and (scope["issuer"] is None or badge["issuer"] == scope["issuer"])
                and (scope["program"] is None or badge["program"] == scope["program"]))

    def _ci(self, table, field, value):
        """[sql] the tables have no charset of their own: the server's default collation
        (latin1_swedish_ci, utf8mb4_0900_ai_ci) compares without case, so do lookups
        and UNIQUE keys on slugs and e-mails."""
        v = str(value).lower()
        return [r for r in table.values() if str(r[field]).lower() == v]

    def _find_badge(self, scope, slug):
        b = next(iter(self._ci(self._badges, "slug", slug)), None)
        if b is None or not self._in_scope(b, scope):
            return _not_found("badge", "slug", slug)
        return b

    # -- badges --

    def _badge_response(self, b):
        """[mb] Badges.toResponse (undefined members left out as JSON.stringify does)."""
        sys_ = self.systems.get(b["system"], {})
        out = {"id": b["id"], "slug": b["slug"], "name": b["name"],
               "strapline": b.get("strapline"), "earnerDescription": b["earnerDescription"],
               "consumerDescription": b["consumerDescription"], "issuerUrl": b.get("issuerUrl"),
               "rubricUrl": b.get("rubricUrl"), "timeValue": b.get("timeValue"),
               "timeUnits": b.get("timeUnits"), "limit": b.get("limit"),
               "unique": b["unique"], "created": b["created"], "imageUrl": b["imageUrl"],
               "type": b["type"], "archived": False,
               "system": {"id": sys_.get("id"), "slug": b["system"], "name": sys_.get("name")},
               "criteriaUrl": b["criteriaUrl"],
               "criteria": [dict(c) for c in b["criteria"]], "alignments": [],
               "evidenceType": b.get("evidenceType"), "categories": [],
               "tags": [{"value": t} for t in b["tags"]], "milestones": []}
        if b["issuer"]:
            out["issuer"] = {"slug": b["issuer"]}
        if b["program"]:
            out["program"] = {"slug": b["program"]}
        return out

    def _validate_badge(self, row, image_given, image):
        """[mb] Badges.validateRow in its field order, then [img] the image checks."""
        errors = []
        _check(row.get("id"), "id", errors, "isInt")
        _check(row.get("slug"), "slug", errors, "len", 1, 255, required=True)
        _check(row.get("name"), "name", errors, "len", 1, 255, required=True)
        _check(row.get("strapline"), "strapline", errors, "len", 0, 140)
        _check(row.get("earnerDescription"), "earnerDescription", errors, "len", 1,
               required=True)
        _check(row.get("consumerDescription"), "consumerDescription", errors, "len", 1,
               required=True)
        _check(row.get("timeValue"), "timeValue", errors, "isInt")
        _check(row.get("timeUnits"), "timeUnits", errors, "isIn",
               ["minutes", "hours", "days", "weeks"])
        _check(row.get("limit"), "limit", errors, "isInt")
        _check(row.get("unique"), "unique", errors, "isIn", ["0", "1", "true", "false"],
               required=True)
        _check(row.get("criteriaUrl"), "criteriaUrl", errors, "isUrl", required=True)
        _check(row.get("evidenceType"), "evidenceType", errors, "isIn",
               ["URL", "Text", "Photo", "Video", "Sound"])
        if image_given:
            # [img] a string is {url}; the image row's url must be a URL, and an image
            # with neither size nor url is "Missing value"
            url = image if isinstance(image, str) else None
            if url:
                _check(url, "url", errors, "isUrl")
            else:
                errors.append({"message": "Missing value", "field": "image"})
        return errors

    def _store_badge_extras(self, row, doc):
        """[rb] putBadge: after the badge row is stored, criteria and tags are put one
        by one; a criterion failing [mc]'s NOT NULL description, or a tag that is not
        a string, is a database error there: a 500 with the badge row kept."""
        crit = doc.get("criteria") or []
        tags = doc.get("tags") or []
        if not isinstance(crit, list) or not isinstance(tags, list):
            return "criteria and tags must be arrays"
        out = []
        for c in crit:
            if not isinstance(c, dict) or not isinstance(c.get("description"), str) \
                    or not c["description"]:
                return "ER_BAD_NULL_ERROR: Column 'description' cannot be null"
            req = c.get("required", True)
            out.append({"id": self._id(), "description": c["description"],
                        "required": 1 if req in (True, 1, "1", "true") else 0,
                        "note": c.get("note") or ""})
        for t in tags:
            if not isinstance(t, str):
                return "ER_TRUNCATED_WRONG_VALUE: tag"
        row["criteria"] = out
        row["tags"] = list(tags)
        return None

    def _create_badge(self, h, scope, doc, after_store_500):
        if not isinstance(doc, dict):
            doc = {}
        # [rb] fromPostToRow: slug defaults to md5(now + name)
        row = {k: doc.get(k) for k in ("slug", "name", "strapline", "earnerDescription",
                                       "consumerDescription", "issuerUrl", "rubricUrl",
                                       "criteriaUrl", "timeValue", "timeUnits",
                                       "evidenceType", "limit", "type", "unique")}
        if not row["slug"]:
            row["slug"] = hashlib.md5(("%d%s" % (time.time() * 1000, row["name"])).encode()
                                      ).hexdigest()
        # [img] getFromPost({required: true}): image or imageUrl, else {} (-> Missing value)
        image = doc.get("image") or doc.get("imageUrl")
        errors = self._validate_badge(row, True, image)
        if errors:
            return _Answer(400, {"code": "ValidationError",            # [err] validation
                                 "message": "Could not validate required fields",
                                 "details": errors})
        if not isinstance(row["slug"], str):
            row["slug"] = str(row["slug"])
        if self._ci(self._badges, "slug", row["slug"]):
            # [sql] 45-badge-uniqueness: slug UNIQUE over all badges; [err] makeDbHandler
            row_details = {k: v for k, v in row.items() if v is not None}
            row_details["systemId"] = self.systems[scope["system"]]["id"]
            return _Answer(409, {"code": "ResourceConflict",
                                 "message": "badge with that `slug` already exists",
                                 "details": row_details})
        if row["type"] is None:
            # [sql] badges.type VARCHAR NOT NULL: Model.put fails with a database error
            # that makeDbHandler does not know: restify's 500
            return _internal("ER_BAD_NULL_ERROR: Column 'type' cannot be null")
        stored = dict(row, id=self._id(), system=scope["system"], issuer=scope["issuer"],
                      program=scope["program"], imageUrl=image, created=iso(self.now()),
                      criteria=[], tags=[], unique=row["unique"] in (True, 1, "1", "true"))
        self._badges[stored["slug"]] = stored
        failed = self._store_badge_extras(stored, doc)
        if failed:
            return _internal(failed)
        if after_store_500:
            return _internal()
        loc = rec_join(urlsplit(h.path).path, stored["slug"])
        return _Answer(201, {"status": "created", "badge": self._badge_response(stored)},
                       headers=[("Location", loc)])

    def _update_badge(self, badge, doc):
        """[rb] updateBadge: safeExtend(badge, body), validated as on create; criteria
        and tags replaced by the body's (absent: emptied, as setCriteria([]) does)."""
        if not isinstance(doc, dict):
            doc = {}
        row = dict(badge)
        for k in ("name", "strapline", "earnerDescription", "consumerDescription",
                  "issuerUrl", "rubricUrl", "criteriaUrl", "timeValue", "timeUnits",
                  "evidenceType", "limit", "type", "unique"):
            if k in doc:
                row[k] = doc[k]
        image = doc.get("image") or doc.get("imageUrl")
        errors = self._validate_badge(row, bool(image), image)
        if errors:
            return _Answer(400, {"code": "ValidationError",
                                 "message": "Could not validate required fields",
                                 "details": errors})
        if row["type"] is None:
            return _internal("ER_BAD_NULL_ERROR: Column 'type' cannot be null")
        if image:
            row["imageUrl"] = image
        row["unique"] = row["unique"] in (True, 1, "1", "true")
        failed = self._store_badge_extras(row, doc)
        self._badges[badge["slug"]] = row
        if failed:
            return _internal(failed)
        return _Answer(200, {"status": "updated", "badge": self._badge_response(row)})

    # -- instances --

    def _assertion_url(self, h, slug):
        # [mw] resolvePath: protocol + Host header + the absolute path
        return "http://%s/public/assertions/%s" % (h.headers.get("Host") or "", slug)

    def _instance_response(self, inst, h, badge=None):
        """[mi] toResponse; the badge only when it was loaded (GET/DELETE), null on create."""
        return {"slug": inst["slug"], "email": inst["email"], "expires": inst["expires"],
                "issuedOn": inst["issuedOn"], "claimCode": None,
                "assertionUrl": self._assertion_url(h, inst["slug"]),
                "badge": self._badge_response(badge) if badge else None}

    def _create_instance(self, h, scope, badge, doc, after_store_500):
        if not isinstance(doc, dict):
            doc = {}
        # [mi] formatUserInput: slug defaults to sha1(now + body); issuedOn taken as
        # given (now when absent); expires a unix time turned into a date
        slug = doc.get("slug") or hashlib.sha1(("%d" % (time.time() * 1000)).encode()
                                               + js_json(doc)).hexdigest()
        issued = doc.get("issuedOn") or iso(self.now())
        expires = doc.get("expires")
        if expires:
            try:
                expires = iso(float(expires))
            except (TypeError, ValueError, OverflowError, OSError):
                return _internal("ER_TRUNCATED_WRONG_VALUE: expires")
        else:
            expires = None
        errors = []
        _check(None, "id", errors, "isInt")
        _check(doc.get("email"), "email", errors, "isEmail", required=True)
        _check(doc.get("claimCode"), "claimCode", errors, "len", 0, 255)
        if errors:
            return _Answer(400, {"code": "ValidationError",
                                 "message": "Could not validate required fields",
                                 "details": errors})
        email = doc["email"]
        held = next((i for i in self._ci(self._instances, "email", email)
                     if i["badge"] == badge["slug"]), None)
        if held is not None:
            # [sql] UNIQUE email_and_badge -> [ri] the 409 with the other assertion's URL
            return _Answer(409, {"code": "ResourceConflict",
                                 "message": "User %s has already been awarded badge %s"
                                            % (email, badge["slug"]),
                                 "details": {"assertionUrl": self._assertion_url(
                                     h, held["slug"])}})
        if self._ci(self._instances, "slug", slug):
            # [sql] badgeInstances.slug UNIQUE, another learner: [ri]'s 409 branch then
            # finds no instance for this email and throws in a promise (the real request
            # is never answered); the fake answers 500
            return _internal("ER_DUP_ENTRY: slug")
        inst = {"slug": str(slug), "email": email, "issuedOn": issued, "expires": expires,
                "badge": badge["slug"], "system": scope["system"], "created": self.now()}
        self._instances[inst["slug"]] = inst
        if after_store_500:
            return _internal()
        resp = self._instance_response(inst, h)
        # [ri] the award hook after the answer: issuedOn as a unix time, comment or null
        issued_unix = self._unix(issued)
        self._hook_later(scope["system"], {"action": "award", "uid": inst["slug"],
                                           "badge": self._badge_response(badge),
                                           "email": email, "assertionUrl": resp["assertionUrl"],
                                           "issuedOn": issued_unix,
                                           "comment": doc.get("comment") or None})
        return _Answer(201, {"status": "created", "instance": resp},
                       headers=[("Location", "/public/assertions/" + inst["slug"])])

    def _hook_later(self, system, data):
        # [ri] the hook goes once the answer is under way, only when the system has a
        # webhooks row; its answer is only logged
        if system in self.webhooks:
            self.send_hook(system, data, asynchronous=True)



def rec_join(path, slug):
    # [rb] path.join(req.url, badge.slug)
    return path.rstrip("/") + "/" + slug


def main(argv):
    """Runs a fake on its own (for C tests and bench/): a system with an issuer and a
    program, a consumer key bound to the system, a second system, and (with --hook-url)
    the system's webhook; the base URL, system, key, secret, master secret and
    webhook secret printed as JSON on the first line. Stops on SIGTERM or SIGINT;
    tests steer it through /_fake/."""
    import argparse
    import signal
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--system", default="badgekit")
    ap.add_argument("--key", default="lti-consumer")
    ap.add_argument("--secret", default="consumer-secret")
    ap.add_argument("--master-secret", default="master-secret")
    ap.add_argument("--hook-url")
    ap.add_argument("--hook-secret", default="hook-secret")
    args = ap.parse_args(argv)
    fake = BadgeKitFake(secret=args.master_secret, port=args.port)
    fake.add_system(args.system, consumer=(args.key, args.secret),
                    webhook=(args.hook_url, args.hook_secret) if args.hook_url else None)
    fake.add_issuer(args.system, "issuer")
    fake.add_program(args.system, "issuer", "program")
    fake.add_system("other-system", consumer=("other-key", "other-secret"))
    fake.start()
    print(json.dumps({"base_url": fake.base_url, "system": args.system, "issuer": "issuer",
                      "program": "program", "key": args.key, "secret": args.secret,
                      "master_secret": args.master_secret, "other_system": "other-system",
                      "webhook_secret": args.hook_secret}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    while not done.wait(1):
        pass
    fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
