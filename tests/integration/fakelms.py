"""A contract fake of an LMS's LTI 1.1 Basic Outcomes service (replaceResult,
readResult, deleteResult over OAuth 1.0 body-signed POX), for the integration
suite. Standard library only; nothing listens anywhere but 127.0.0.1.

One FakeLMS serves three URL shapes, each checked and answered the way the
real product does (read from their sources: Canvas lti_api_controller.rb and
lib/basic_lti/basic_outcomes.rb, Moodle mod/lti/service.php, servicelib.php,
OAuthBody.php and OAuth.php, Open edX xblock-lti-consumer outcomes.py and
lti_1p1/oauth.py):

    Canvas    POST /api/lti/v1/tools/<tool_id>/grade_passback
    Moodle    POST /mod/lti/service.php
    Open edX  POST /courses/<course_id>/xblock/<usage_id>/handler_noauth/outcome_service_handler

With strict=True (the default) the fake also holds every flavour to the
LTI 1.1 contract a tool must meet everywhere, even where the real product is
laxer (Canvas never compares oauth_body_hash with the body, Moodle and Open
edX keep no nonces, ...). A refusal the real product would not have made is
answered in that product's voice and marked `strict_only` in the record.

    lms = FakeLMS({"key": "secret"})
    with lms:
        lms.add_result("sid-1")
        url = lms.moodle_url()
        ... let the tool post a grade to url ...
        rec = lms.wait_for(lambda r: r.operation == "replaceResultRequest")[0]
        assert rec.code_major == "success" and lms.result("sid-1")["score"] == 0.5

Faults (set_fault) can be switched at any time from the test thread.

Besides the exact-match gradebook (add_result: any string the test chooses),
the fake issues sourcedids as Moodle and Canvas do and checks them as they
do, so a test can launch with a fresh one every time, as those LMSes send:

    sid = lms.issue_sourcedid("moodle", link=7, user=42)    # new launchid each call
    sid = lms.issue_sourcedid("canvas", link=3, user=42, course=2)
    ... the tool passes a grade back with any of them ...
    lms.cell("moodle", 7, 42)["score"]                       # one cell per (link, user)
    lms.issued(rec.sourcedid)                                # ("moodle", "7", "42") or None

Moodle (mod/lti/service.php, servicelib.php lti_verify_sourcedid) hashes the
sourcedid's data again with the instance's service salt and takes (instanceid,
userid) from it, whatever its launchid; Canvas (lib/basic_lti/sourcedid.rb,
basic_outcomes.rb) decrypts and verifies its token (or the legacy HMAC form)
and checks what it names still exists: the tool, the course, the assignment
and the learner's enrollment (unenroll() makes every sourcedid of that learner
fail as Canvas's do; conclude() refuses writes only). Neither expires one.
"""
import base64
import dataclasses
import hashlib
import hmac
import http.server
import itertools
import json
import random
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from urllib.request import parse_http_list
from xml.sax.saxutils import escape

# Canvas's sourcedid is an AES-256-GCM JWE: python3-cryptography, which Debian's
# python3-oauthlib (the suite's requirement) depends on
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NS = "http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"
CANVAS, MOODLE, EDX = "canvas", "moodle", "edx"
FLAVOURS = (CANVAS, MOODLE, EDX)
REPLACE, READ, DELETE = "replaceResultRequest", "readResultRequest", "deleteResultRequest"
OPERATIONS = (REPLACE, READ, DELETE)
HMAC_SHA1, HMAC_SHA256 = "HMAC-SHA1", "HMAC-SHA256"
MODES = ("ok", "refuse", "drop", "lost", "slow", "garbage", "status", "failure", "unsupported")
DEFAULT_WINDOW = 300          # seconds either side, the strict contract
CANVAS_WINDOW = 90 * 60       # Canvas: Setting oauth.allowed_timestamp_delta, both sides
MOODLE_WINDOW = 300           # Moodle OAuthServer: only too old is refused
MAX_BODY = 1 << 20
XML_TYPES = ("application/xml", "text/xml")

CANVAS_PATH = re.compile(r"^/api/lti/v1/tools/(?P<tool_id>[0-9]+)/grade_passback$")
MOODLE_PATH = re.compile(r"^/mod/lti/service\.php$")
EDX_PATH = re.compile(
    r"^/courses/(?P<course_id>course-v1:[^/+]+\+[^/+]+\+[^/+]+)"
    r"/xblock/(?P<usage_id>block-v1:[^/+]+\+[^/+]+\+[^/+]+\+type@[^/+]+\+block@[^/+]+)"
    r"/handler_noauth/outcome_service_handler/?$")

STRICT_DECIMAL = re.compile(r"^\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*$")
RUBY_FLOAT = re.compile(r"^\s*[+-]?(?:[0-9]+(?:_[0-9]+)*(?:\.[0-9]+(?:_[0-9]+)*)?"
                        r"(?:[eE][+-]?[0-9]+)?|0[xX][0-9a-fA-F]+)\s*$")
PHP_NUMERIC = re.compile(r"^\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$")
CANVAS_SHRUG = "Request could not be handled. \u00af\\_(\u30c4)_/\u00af"
# sourcedid.rb's SOURCE_ID_REGEX, as Ruby reads it (ASCII \d and \w; ^ and $ match at lines)
CANVAS_LEGACY_SOURCEDID = re.compile(r"^([0-9]+)-([0-9]+)-([0-9]+)-([0-9]+)-([A-Za-z0-9_]+)$",
                                     re.M)
CANVAS_JWE_HEADER = b'{"alg":"dir","enc":"A256GCM"}'
CANVAS_JWS_HEADER = b'{"typ":"JWT","alg":"HS256"}'
GARBAGE = b"<html><body><h1>Proxy Error</h1>upstream sent an invalid response<br></body>"


# ---- records ----------------------------------------------------------------


@dataclasses.dataclass
class Record:
    """One request the fake received, what it made of it and what it answered.

    Fields left None were not applicable or could not be determined (e.g.
    signature_ok is None when there was no Authorization header). `status`
    is None when the connection was dropped without an answer; `delivered`
    is False when an answer was computed (and the gradebook changed) but
    never sent ("lost" fault).
    """
    time: float
    method: str
    path: str
    query: str
    headers: list
    body: bytes
    content_type: str = None
    flavour: str = None                 # "canvas" | "moodle" | "edx" | None (unknown path)
    params: dict = dataclasses.field(default_factory=dict)   # tool_id / course_id / usage_id
    authorization: str = None           # the raw header
    oauth: dict = None                  # parsed oauth_* parameters (realm dropped)
    oauth_error: str = None             # why the header could not be parsed
    consumer_key: str = None
    signature_method: str = None
    signature_ok: bool = None
    body_hash_ok: bool = None           # None: no oauth_body_hash sent
    timestamp_ok: bool = None           # against the strict window
    nonce_fresh: bool = None
    base_string: str = None             # what the fake signed to check the signature
    well_formed: bool = None
    doctype: bool = False
    operation: str = None               # first child of imsx_POXBody, e.g. "replaceResultRequest"
    operations: list = dataclasses.field(default_factory=list)
    message_id: str = None
    version: str = None
    sourcedid: str = None
    score_text: str = None              # resultScore/textString as sent
    language: str = None
    total_score_text: str = None        # Canvas resultTotalScore/textString
    result_data_text: str = None
    result_data_url: str = None
    result_data: list = None            # every child of resultData as (name, text)
    fault: str = None                   # the fault mode that shaped the answer, if any
    status: int = None
    code_major: str = None
    description: str = None
    refusal: str = None                 # short reason of a refusal, None when accepted
    strict_only: bool = False           # refused by the strict contract only
    response_headers: list = dataclasses.field(default_factory=list)
    response_body: bytes = b""
    delivered: bool = True
    cell: tuple = None                  # (flavour, link, user) an issued sourcedid resolved to

    def header(self, name, default=None):
        """The first request header called `name` (case-insensitive)."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def accepted(self):
        return self.code_major == "success"


# ---- small helpers ------------------------------------------------------------


def _pct(s):
    """RFC 3986 / RFC 5849 section 3.6 percent-encoding of a str (UTF-8)."""
    return quote(s, safe="-._~")


def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _ns(tag):
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _child(elem, name):
    if elem is None:
        return None
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _path(elem, *names):
    for n in names:
        elem = _child(elem, n)
    return elem


def _text(elem):
    if elem is None:
        return None
    return "".join(elem.itertext())


def media_type(content_type):
    """The lower-case media type of a Content-Type value, parameters dropped."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def ruby_float(text):
    """Ruby's Float(text) as Canvas parses a score: a float, or None where Ruby raises."""
    if text is None or not RUBY_FLOAT.match(text):
        return None
    t = text.strip()
    if t.lstrip("+-")[:2].lower() == "0x":
        return float(int(t, 16))
    return float(t.replace("_", ""))


def ruby_float_str(f):
    """Ruby's Float#to_s, which Canvas uses for readResult (1.0, 0.6, 1.0e-05)."""
    r = repr(float(f))
    if "e" in r:
        m, e = r.split("e")
        if "." not in m:
            m += ".0"
        return "%se%s%02d" % (m, "-" if int(e) < 0 else "+", abs(int(e)))
    return r


def php_float_str(f):
    """PHP's float to string, which Moodle uses for readResult: `precision`
    (14) significant digits, like %.14G (1, 0.6, 0.1234568, 1.0E-5)."""
    r = "%.14G" % float(f)
    if "E" in r:
        m, e = r.split("E")
        if "." not in m:
            m += ".0"
        return "%sE%+d" % (m, int(e))
    return r


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def _b64url_decode(b):
    """base64url without padding; ValueError when it is not that."""
    if isinstance(b, str):
        b = b.encode("ascii", "replace")
    if not re.fullmatch(rb"[A-Za-z0-9_-]*", b):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(b + b"=" * (-len(b) % 4))


def php_json(value):
    """PHP's json_encode() of decoded JSON: compact, "/" escaped, non-ASCII as \\uXXXX."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


# ---- sourcedids, URLs and request bodies as the products make them -----------------


def moodle_sourcedid(instanceid=2, userid=3, typeid=1, launchid=None, salt="fakelms"):
    """A sourcedid shaped like Moodle's lti_build_sourcedid(): compact JSON with
    the ids (strings) and a SHA-256 hash over the JSON data and a salt."""
    data = {"instanceid": str(instanceid), "userid": str(userid), "typeid": str(typeid),
            "launchid": launchid if launchid is not None else random.randrange(1, 2**31)}
    enc = json.dumps(data, separators=(",", ":"))
    return json.dumps({"data": data, "hash": hashlib.sha256((enc + salt).encode()).hexdigest()},
                      separators=(",", ":"))


def canvas_sourcedid(tool_id=1, course_id=2, assignment_id=3, user_id=4, legacy=False):
    """A Canvas sourcedid. Current Canvas sends a base64 encrypted JWT of ~500
    opaque characters; legacy=True gives the old "tool-course-assignment-user-hmac"."""
    if legacy:
        payload = "%s-%s-%s-%s" % (tool_id, course_id, assignment_id, user_id)
        mac = hmac.new(b"fakelms", payload.encode(), hashlib.sha1).hexdigest()
        return payload + "-" + mac
    head = base64.urlsafe_b64encode(b'{"alg":"dir","enc":"A256GCM"}').rstrip(b"=")
    parts = [head] + [base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=")
                      for n in (0, 12, 280, 16)]
    return base64.b64encode(b".".join(parts)).decode()


def edx_sourcedid(course_id="course-v1:Org+Course+Run", block="abc", user_id=None,
                  lms_host="localhost:18000"):
    """An Open edX sourcedid: quote(context_id):quote(LMS host)-<block id>:<anonymous
    user id> (the user is the part after the last colon)."""
    user_id = user_id or secrets.token_hex(16)
    return "%s:%s-%s:%s" % (quote(course_id), quote(lms_host), block, user_id)


def pox_request(operation, sourcedid, score=None, message_id=None, language="en",
                result_data=None, total_score=None, version="V1.0", namespace=NS):
    """A Basic Outcomes request body (bytes). `operation` is "replaceResult",
    "readResult", "deleteResult" or any other name; `score` is put as text;
    `result_data` is a list of (name, text) put inside resultData."""
    if not operation.endswith("Request"):
        operation += "Request"
    message_id = secrets.token_hex(8) if message_id is None else message_id
    result = ""
    if score is not None:
        lang = "" if language is None else "<language>%s</language>" % escape(language)
        result += "<resultScore>%s<textString>%s</textString></resultScore>" % (
            lang, escape(str(score)))
    if total_score is not None:
        result += "<resultTotalScore><language>en</language><textString>%s</textString>" \
                  "</resultTotalScore>" % escape(str(total_score))
    if result_data:
        result += "<resultData>%s</resultData>" % "".join(
            "<%s>%s</%s>" % (k, escape(v), k) for k, v in result_data)
    result = "<result>%s</result>" % result if result else ""
    xmlns = ' xmlns="%s"' % namespace if namespace else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<imsx_POXEnvelopeRequest%s>'
            '<imsx_POXHeader><imsx_POXRequestHeaderInfo>'
            '<imsx_version>%s</imsx_version>'
            '<imsx_messageIdentifier>%s</imsx_messageIdentifier>'
            '</imsx_POXRequestHeaderInfo></imsx_POXHeader>'
            '<imsx_POXBody><%s><resultRecord><sourcedGUID><sourcedId>%s</sourcedId>'
            '</sourcedGUID>%s</resultRecord></%s></imsx_POXBody>'
            '</imsx_POXEnvelopeRequest>' % (xmlns, escape(version), escape(message_id),
                                              operation, escape(sourcedid), result,
                                              operation)).encode("utf-8")


def parse_response(body):
    """The parts of a POX response (namespace-agnostic), or None if `body` is
    not well-formed XML. Keys: code_major, severity, description, message_id,
    message_ref, operation_ref, canvas_error_code, body (child names of
    imsx_POXBody), score_text, language."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    info = _path(root, "imsx_POXHeader", "imsx_POXResponseHeaderInfo")
    status = _child(info, "imsx_statusInfo")
    pbody = _child(root, "imsx_POXBody")
    rs = _path(_child(pbody, "readResultResponse"), "result", "resultScore")
    return {
        "root": _local(root.tag),
        "namespace": _ns(root.tag),
        "code_major": _text(_child(status, "imsx_codeMajor")),
        "severity": _text(_child(status, "imsx_severity")),
        "description": _text(_child(status, "imsx_description")),
        "message_id": _text(_child(info, "imsx_messageIdentifier")),
        "message_ref": _text(_child(status, "imsx_messageRefIdentifier")),
        "operation_ref": _text(_child(status, "imsx_operationRefIdentifier")),
        "canvas_error_code": _text(_child(status, "ext_canvas_error_code")),
        "body": [_local(c.tag) for c in pbody] if pbody is not None else [],
        "score_text": _text(_child(rs, "textString")),
        "language": _text(_child(rs, "language")),
    }


# ---- the request body as each product reads it ---------------------------------


class _Op:
    """What one operation element of imsx_POXBody carries."""

    def __init__(self, elem):
        self.name = _local(elem.tag)
        rr = _child(elem, "resultRecord")
        sid = _path(rr, "sourcedGUID", "sourcedId")
        self.sourcedid = _text(sid)
        result = _child(rr, "result")
        rs = _child(result, "resultScore")
        self.score_present = _child(rs, "textString") is not None
        self.score_text = _text(_child(rs, "textString"))
        self.language = _text(_child(rs, "language"))
        self.total_score_text = _text(_path(result, "resultTotalScore", "textString"))
        rd = _child(result, "resultData")
        self.result_data = None if rd is None else [(_local(c.tag), _text(c)) for c in rd]
        self.result_data_text = _text(_child(rd, "text"))
        self.result_data_url = _text(_child(rd, "url"))


class _Pox:
    """A request body parsed once; each flavour looks at it its own way."""

    def __init__(self, body):
        self.well_formed = False
        self.error = None
        self.doctype = re.search(rb"<!DOCTYPE", body, re.I) is not None
        self.root = None
        self.root_name = None
        self.all_in_ns = False
        self.version = None
        self.message_id = None
        self.ops = []
        self.body_found = False
        self.first = self.last = None
        if re.search(rb"<!ENTITY", body, re.I):
            self.error = "entity declarations are refused"
            return
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            self.error = str(e) or "Body is not valid XML"
            return
        self.well_formed = True
        self.root = root
        self.root_name = _local(root.tag)
        self.all_in_ns = all(_ns(e.tag) == NS for e in root.iter() if isinstance(e.tag, str))
        info = _path(root, "imsx_POXHeader", "imsx_POXRequestHeaderInfo")
        self.version = _text(_child(info, "imsx_version"))
        self.message_id = _text(_child(info, "imsx_messageIdentifier"))
        body_el = _child(root, "imsx_POXBody")
        self.body_found = body_el is not None
        self.ops = [_Op(c) for c in body_el if isinstance(c.tag, str)] if body_el is not None \
            else []
        self.first = self.ops[0] if self.ops else None
        self.last = self.ops[-1] if self.ops else None

    # Open edX reads with namespaced XPath over the whole document
    # (//def:imsx_messageIdentifier, //def:imsx_POXBody, //def:sourcedId,
    # //def:textString): the first match anywhere, in the IMS namespace only.
    def edx_find(self, name):
        if self.root is None:
            return None
        return next(iter(self.root.iter("{%s}%s" % (NS, name))), None)


# ---- the HTTP server -----------------------------------------------------------------


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # the default backlog (5) resets connections when many arrive at once on a busy machine
    request_queue_size = 128


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLMS/1.0"
    timeout = 15

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _dispatch(self):
        self.server.fake._handle(self)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


class _Response:
    def __init__(self, status, body=b"", content_type="text/plain; charset=utf-8",
                 headers=()):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers)


class FakeLMS:
    """The fake LMS. `consumers` maps consumer key -> secret; `gradebook` maps
    sourcedid -> {"score": float|None, "text": str|None, "url": str|None} (or
    None for an empty entry; an optional "consumer_key" binds the entry to one
    consumer, as a real sourcedid belongs to one tool). A sourcedid not in it
    is checked as the product checks its own (issue_sourcedid).

    strict: also refuse what the LTI 1.1 contract forbids though the real
        product lets it through (see the module docstring).
    timestamp_window: seconds either side of now for oauth_timestamp (strict).
    accept_sha256: None = as the products do (Canvas accepts HMAC-SHA256,
        Moodle and Open edX verify HMAC-SHA1 only); True = every flavour
        accepts it; False = none does.
    canvas_exact_content_type: Canvas compares request.content_type with
        "application/xml" literally; on Rails >= 7.1 that is the whole header,
        so a charset parameter is refused with 415. False: compare the media
        type only.
    canvas_tools: None = any numeric tool id; or a dict tool_id (str) ->
        consumer key: other ids answer 404 and the tool's secret is the one
        used whatever key the request names (as Canvas does).
    port: 0 = any free port (fixed after start(), kept across refuse/ok).
    """

    def __init__(self, consumers, gradebook=None, *, strict=True,
                 timestamp_window=DEFAULT_WINDOW, accept_sha256=None,
                 canvas_exact_content_type=True, canvas_tools=None, port=0):
        self.host = "127.0.0.1"
        self.port = port
        self.strict = strict
        self.timestamp_window = timestamp_window
        self.accept_sha256 = accept_sha256
        self.canvas_exact_content_type = canvas_exact_content_type
        self.canvas_tools = None if canvas_tools is None else {
            str(k): v for k, v in canvas_tools.items()}
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server_lock = threading.Lock()
        self._consumers = dict(consumers)
        self._gradebook = {}
        for sid, entry in (gradebook or {}).items():
            self.add_result(sid, **(entry or {}))
        self._nonces = set()
        # sourcedids issued as the products do (issue_sourcedid), and what they check
        self._cells = {}                # (flavour, link, user) -> gradebook entry
        self._issued = {}               # sourcedid -> (flavour, link, user)
        self._issued_order = {}         # (flavour, link, user) -> [sourcedid, ...]
        self._moodle_instances = {}     # instanceid -> servicesalt (uniqid('', true))
        self._canvas_signing = secrets.token_bytes(32)     # lti-signing-secret
        self._canvas_encryption = secrets.token_bytes(32)  # lti-encryption-secret
        self._canvas_shard_key = secrets.token_hex(20)     # the shard's encryption_key
        self._canvas_assignments = {}   # assignment -> (course, tool_id)
        self._canvas_enrollments = {}   # (course, user) -> "active" | "completed"
        self._records = []
        self._fault = {"mode": "ok"}
        self._timer = None
        self._server = None
        self._thread = None
        self._running = False
        self._stopping = threading.Event()
        self._eid = itertools.count(1000)

    # -- life cycle --

    def start(self):
        """Binds 127.0.0.1 (port 0: any free port) and serves from a daemon thread."""
        with self._server_lock:
            if self._running:
                return self
            self._running = True
            self._stopping.clear()
            self._bind()
        return self

    def stop(self):
        """Stops serving and closes the socket; waits for nothing slow."""
        with self._lock:
            if self._timer:
                self._timer.cancel()
                self._timer = None
        self._stopping.set()
        with self._server_lock:
            self._running = False
            self._unbind()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _bind(self):
        deadline = time.monotonic() + 5
        while True:
            try:
                srv = _Server((self.host, self.port), _Handler)
                break
            except OSError:
                if not self.port or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        srv.fake = self
        self.port = srv.server_address[1]
        self._server = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakelms-%d" % self.port, daemon=True)
        self._thread.start()

    def _unbind(self):
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            self._thread.join(5)

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def listening(self):
        return self._server is not None

    # -- URLs --

    def canvas_url(self, tool_id=1):
        return "%s/api/lti/v1/tools/%s/grade_passback" % (self.base_url, tool_id)

    def moodle_url(self):
        return self.base_url + "/mod/lti/service.php"

    def edx_url(self, course_id="course-v1:Org+Course+Run", block="abc", usage_id=None):
        if usage_id is None:
            usage_id = "block-v1:%s+type@lti_consumer+block@%s" % (
                course_id.split(":", 1)[1], block)
        return "%s/courses/%s/xblock/%s/handler_noauth/outcome_service_handler" % (
            self.base_url, course_id, usage_id)

    def url(self, flavour, **kw):
        """The outcome service URL of a flavour ("canvas", "moodle", "edx")."""
        return {CANVAS: self.canvas_url, MOODLE: self.moodle_url, EDX: self.edx_url}[flavour](**kw)

    # -- consumers and gradebook --

    def set_consumer(self, key, secret):
        with self._lock:
            self._consumers[key] = secret

    def add_result(self, sourcedid, score=None, text=None, url=None, consumer_key=None):
        """Adds (or resets) a gradebook entry the tool may write."""
        with self._lock:
            self._gradebook[sourcedid] = {"score": score, "text": text, "url": url,
                                          "consumer_key": consumer_key}

    def remove_result(self, sourcedid):
        with self._lock:
            self._gradebook.pop(sourcedid, None)

    def result(self, sourcedid):
        """A copy of one gradebook entry (add_result), else of the cell an issued
        sourcedid names (issue_sourcedid), or None."""
        with self._lock:
            e = self._gradebook.get(sourcedid)
            if e is None and sourcedid in self._issued:
                e = self._cells.get(self._issued[sourcedid])
            return dict(e) if e is not None else None

    @property
    def gradebook(self):
        """A copy of the whole gradebook."""
        with self._lock:
            return {k: dict(v) for k, v in self._gradebook.items()}

    # -- sourcedids issued and checked as the products do --

    def issue_sourcedid(self, flavour, link, user, *, course=1, tool_id=1, typeid=1,
                        legacy=False):
        """A fresh lis_result_sourcedid for `user` on `link`, as the LMS puts
        in each launch, and the gradebook cell (flavour, link, user) it names
        (created empty on first issue; ids are kept as strings).

        moodle: lti_build_sourcedid(): {"data": {instanceid, userid, typeid,
            launchid}, "hash": sha256(json_encode(data) . servicesalt)}, a
            new launchid (mt_rand) each time; `link` is the instance id, whose
            service salt the fake makes on its first sourcedid.
        canvas: BasicLTI::Sourcedid#to_s: base64 of a JWE (dir, A256GCM with
            the fake's encryption secret) of a JWS (HS256, its signing secret)
            of {iss, aud, iat, tool_id, course_id, assignment_id, user_id};
            `link` is the assignment (of `course`, for tool `tool_id`), and
            the learner is enrolled (active) in the course. legacy=True:
            "tool-course-assignment-user-HMAC-SHA1(shard key)", as older Canvas.
        """
        link, user = str(link), str(user)
        with self._lock:
            if flavour == MOODLE:
                if link not in self._moodle_instances:
                    self._moodle_instances[link] = "%013x.%08d" % (
                        time.time_ns() // 1000, random.randrange(10**8))
                sid = self._moodle_sourcedid(link, user, str(typeid),
                                             random.randrange(1, 2**31))
            elif flavour == CANVAS:
                course, tool_id = str(course), str(tool_id)
                for name, v in (("link", link), ("user", user), ("course", course),
                                ("tool_id", tool_id)):
                    if not v.isdigit():
                        raise ValueError("Canvas ids are numbers, not %s=%r" % (name, v))
                known = self._canvas_assignments.setdefault(link, (course, tool_id))
                if known != (course, tool_id):
                    raise ValueError("assignment %s is of course %s, tool %s" % ((link,) + known))
                self._canvas_enrollments.setdefault((course, user), "active")
                sid = (self._canvas_legacy(tool_id, course, link, user) if legacy
                       else self._canvas_token(tool_id, course, link, user))
            else:
                raise ValueError("issue_sourcedid: %r LMS; Open edX's sourcedid is fixed per "
                                 "user and block: edx_sourcedid() and add_result()" % flavour)
            key = (flavour, link, user)
            self._cells.setdefault(key, {"score": None, "text": None, "url": None,
                                         "consumer_key": None})
            self._issued[sid] = key
            self._issued_order.setdefault(key, []).append(sid)
            return sid

    def issued(self, sourcedid):
        """(flavour, link, user) of a sourcedid this fake issued, else None."""
        with self._lock:
            return self._issued.get(sourcedid)

    def issued_for(self, flavour, link, user):
        """Every sourcedid issued for (flavour, link, user), oldest first."""
        with self._lock:
            return list(self._issued_order.get((flavour, str(link), str(user)), ()))

    def cell(self, flavour, link, user):
        """A copy of the gradebook cell of (flavour, link, user), or None."""
        with self._lock:
            e = self._cells.get((flavour, str(link), str(user)))
            return dict(e) if e is not None else None

    def set_cell(self, flavour, link, user, score=None, text=None, url=None):
        """Sets a cell (the instructor grades in the LMS); issue a sourcedid for it first."""
        key = (flavour, str(link), str(user))
        with self._lock:
            if key not in self._cells:
                raise KeyError("no sourcedid was issued for %r" % (key,))
            self._cells[key].update(score=score, text=text, url=url)

    @property
    def cells(self):
        """A copy of every cell: (flavour, link, user) -> entry."""
        with self._lock:
            return {k: dict(v) for k, v in self._cells.items()}

    def unenroll(self, course, user):
        """Canvas: the learner's enrollment is deleted; every sourcedid of theirs in
        the course now fails ("User is no longer in course")."""
        with self._lock:
            self._canvas_enrollments.pop((str(course), str(user)), None)

    def conclude(self, course, user):
        """Canvas: the enrollment is concluded; reads still pass, writes fail
        ("Course not available for student")."""
        with self._lock:
            self._canvas_enrollments[(str(course), str(user))] = "completed"

    def enroll(self, course, user):
        """Canvas: an active enrollment again; the learner's old sourcedids pass again."""
        with self._lock:
            self._canvas_enrollments[(str(course), str(user))] = "active"

    def _moodle_sourcedid(self, instanceid, userid, typeid, launchid):
        data = {"instanceid": instanceid, "userid": userid, "typeid": typeid,
                "launchid": launchid}
        digest = hashlib.sha256((php_json(data) + self._moodle_instances[instanceid]).encode())
        return json.dumps({"data": data, "hash": digest.hexdigest()}, separators=(",", ":"))

    def _canvas_legacy(self, tool_id, course, assignment, user):
        payload = "-".join((tool_id, course, assignment, user))
        mac = hmac.new(self._canvas_shard_key.encode(), payload.encode(), hashlib.sha1)
        return payload + "-" + mac.hexdigest()

    def _canvas_token(self, tool_id, course, assignment, user):
        claims = {"iss": "Canvas", "aud": ["Instructure"], "iat": int(time.time()),
                  "tool_id": int(tool_id), "course_id": int(course),
                  "assignment_id": int(assignment), "user_id": int(user)}
        signing_input = _b64url(CANVAS_JWS_HEADER) + b"." + _b64url(
            json.dumps(claims, separators=(",", ":")).encode())
        jws = signing_input + b"." + _b64url(
            hmac.new(self._canvas_signing, signing_input, hashlib.sha256).digest())
        head, iv = _b64url(CANVAS_JWE_HEADER), secrets.token_bytes(12)
        sealed = AESGCM(self._canvas_encryption).encrypt(iv, jws, head)
        jwe = b".".join((head, b"", _b64url(iv), _b64url(sealed[:-16]), _b64url(sealed[-16:])))
        return base64.b64encode(jwe).decode()

    def _moodle_cell(self, sourcedid):
        """lti_verify_sourcedid(): the cell of a sourcedid whose hash holds, else None.
        The data is hashed again as Moodle rebuilds it (instanceid, userid,
        typeid, launchid, the values as decoded) with the instance's salt; the
        launchid is not looked up anywhere, so any of the instance's
        sourcedids for that user is as good as the newest."""
        try:
            doc = json.loads(sourcedid)
        except (TypeError, ValueError):
            return None
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            return None
        instanceid, userid = data.get("instanceid"), data.get("userid")
        salt = self._moodle_instances.get(str(instanceid))
        if salt is None or data.get("launchid") in (None, False, 0, "", "0", [], {}):
            # an unknown instance has no salt; Moodle draws a new launchid when it has none
            return None
        rebuilt = {"instanceid": instanceid, "userid": userid, "typeid": data.get("typeid"),
                   "launchid": data["launchid"]}
        want = hashlib.sha256((php_json(rebuilt) + salt).encode()).hexdigest()
        if not isinstance(doc.get("hash"), str) or not hmac.compare_digest(want, doc["hash"]):
            return None
        key = (MOODLE, str(instanceid), str(userid))
        return self._cells.setdefault(key, {"score": None, "text": None, "url": None,
                                            "consumer_key": None}), key

    def _canvas_claims(self, sourcedid):
        """BasicLTI::Sourcedid.load! then decode_source_id: (claims, None), or
        (None, (error_code, description)) where Canvas raises InvalidSourceId,
        or (None, None) where Canvas raises an exception nothing rescues (a
        token that does not decrypt or verify): HTTP 500."""
        if not sourcedid or not sourcedid.strip():
            return None, ("sourcedid_invalid", "Invalid sourcedid")
        md = CANVAS_LEGACY_SOURCEDID.search(sourcedid)
        if md:
            tool_id, course, assignment, user, mac = md.groups()
            if not self._canvas_tool_exists(tool_id):
                return None, ("tool_invalid", "Tool is invalid")
            want = hmac.new(self._canvas_shard_key.encode(),
                            "-".join((tool_id, course, assignment, user)).encode(),
                            hashlib.sha1).hexdigest()
            if not hmac.compare_digest(want, mac):
                return None, ("signature_invalid", "Invalid signature")
            return {"tool_id": tool_id, "course_id": course, "assignment_id": assignment,
                    "user_id": user}, None
        # Canvas::Security.base64_decode (lenient), then JSON::JWT.decode
        try:
            token = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/]", b"",
                                            sourcedid.encode("utf-8", "replace")) + b"==")
        except ValueError:
            token = b""
        parts = token.split(b".")
        if len(parts) != 5:
            return None, ("sourcedid_invalid", "Invalid sourcedid")  # JSON::JWT::InvalidFormat
        try:
            if _b64url_decode(parts[0]) != CANVAS_JWE_HEADER or parts[1]:
                return None, None
            jws = AESGCM(self._canvas_encryption).decrypt(
                _b64url_decode(parts[2]), _b64url_decode(parts[3]) + _b64url_decode(parts[4]),
                parts[0])
            head, payload, sig = jws.split(b".")
            want = hmac.new(self._canvas_signing, head + b"." + payload, hashlib.sha256).digest()
            if not hmac.compare_digest(want, _b64url_decode(sig)):
                return None, None
            claims = json.loads(_b64url_decode(payload))
        except (ValueError, InvalidTag):
            return None, None
        return {k: str(claims.get(k)) for k in ("tool_id", "course_id", "assignment_id",
                                                "user_id")}, None

    def _canvas_tool_exists(self, tool_id):
        return self.canvas_tools is None or str(tool_id) in self.canvas_tools

    def _canvas_cell(self, rec, sourcedid):
        """(entry, key, None) for a sourcedid Canvas takes for this tool, else
        (None, None, (error_code, description)), or (None, None, None) for its
        HTTP 500. Validated against the current state, as load! does."""
        claims, err = self._canvas_claims(sourcedid)
        if claims is None:
            return None, None, err
        course, assignment, user = (claims["course_id"], claims["assignment_id"],
                                    claims["user_id"])
        if not any(c == course for c, _ in self._canvas_assignments.values()):
            return None, None, ("course_invalid", "Course is invalid")
        if (course, user) not in self._canvas_enrollments:
            return None, None, ("user_not_in_course", "User is no longer in course")
        known = self._canvas_assignments.get(assignment)
        if known is None or known[0] != course:
            return None, None, ("assignment_invalid", "Assignment is invalid")
        if known[1] != claims["tool_id"] or not self._canvas_tool_exists(claims["tool_id"]):
            return None, None, ("assignment_tool_mismatch",
                                "Assignment is no longer associated with this tool")
        if claims["tool_id"] != rec.params.get("tool_id"):
            return None, None, ("tool_invalid", "Tool is invalid")
        key = (CANVAS, assignment, user)
        return self._cells.setdefault(key, {"score": None, "text": None, "url": None,
                                            "consumer_key": None}), key, None

    # -- faults --

    def set_fault(self, mode, *, delay=None, status=None, retry_after=None, count=None,
                  duration=None, body=None, content_type=None):
        """Switches fault injection; thread-safe, effective for the next request.

        ok          answer normally
        refuse      close the listening socket (connections refused); back to
                    anything else rebinds the same port ("down" is an alias)
        drop        read the request, close the connection without answering
        lost        process the request (the gradebook changes), then close
                    without answering
        slow        sleep `delay` seconds, then answer normally
        garbage     200 with a non-XML body (`body`, `content_type` to override)
        status      answer HTTP `status` (e.g. 500, 503), optional Retry-After
        failure     a well-formed POX answer with that codeMajor, in the
        unsupported flavour's voice (Canvas: HTTP 422), nothing changed

        count: fault only the next `count` requests, then back to ok (not for
        refuse). duration: back to ok after that many seconds (any mode).
        """
        if mode == "down":
            mode = "refuse"
        if mode not in MODES:
            raise ValueError("unknown fault mode %r" % mode)
        if mode == "slow" and delay is None:
            raise ValueError("slow needs delay=")
        if mode == "status" and status is None:
            raise ValueError("status needs status=")
        if mode == "refuse" and count is not None:
            raise ValueError("refuse cannot count requests (none arrive); use duration= or drop")
        with self._lock:
            if self._timer:
                self._timer.cancel()
                self._timer = None
            self._fault = {"mode": mode, "delay": delay, "status": status,
                           "retry_after": retry_after, "count": count, "body": body,
                           "content_type": content_type}
            if duration is not None and mode != "ok":
                self._timer = threading.Timer(duration, self._expire_fault)
                self._timer.daemon = True
                self._timer.start()
        with self._server_lock:
            if not self._running:
                return
            if mode == "refuse":
                self._unbind()
            elif self._server is None:
                self._bind()

    def _expire_fault(self):
        if self._running:
            self.set_fault("ok")

    @property
    def fault(self):
        with self._lock:
            return dict(self._fault)

    def _take_fault(self):
        with self._lock:
            f = dict(self._fault)
            if f["mode"] not in ("ok", "refuse") and f.get("count") is not None:
                self._fault["count"] -= 1
                if self._fault["count"] <= 0:
                    self._fault = {"mode": "ok"}
            return f

    # -- records --

    @property
    def records(self):
        with self._lock:
            return list(self._records)

    def clear_records(self):
        with self._lock:
            self._records.clear()

    def matching(self, predicate=None):
        with self._lock:
            return [r for r in self._records if predicate is None or predicate(r)]

    def wait_for(self, predicate=None, timeout=5.0, count=1):
        """Waits until `count` records satisfy `predicate` (all records if None);
        returns them all. Raises AssertionError on timeout, listing what came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self._records if predicate is None or predicate(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ["%s %s %s -> %s %s (%s)" % (r.flavour, r.method, r.operation, r.status,
                                                       r.code_major, r.refusal)
                            for r in self._records]
                    raise AssertionError("fakelms: %d of %d matching records after %.1fs; got %s"
                                         % (len(found), count, timeout, seen or "none"))
                self._cond.wait(left)

    def _append(self, rec):
        with self._cond:
            self._records.append(rec)
            self._cond.notify_all()

    # -- one request --

    def _handle(self, h):
        rec = Record(time=time.time(), method=h.command, path=urlsplit(h.path).path,
                     query=urlsplit(h.path).query, headers=list(h.headers.items()), body=b"",
                     content_type=h.headers.get("Content-Type"))
        try:
            rec.body = self._read_body(h)
        except ValueError as e:
            h.close_connection = True
            resp = _Response(400 if "Content-Length" in str(e) else 413, str(e) + "\n")
            rec.refusal = "http"
            self._fill(rec, resp)
            self._append(rec)
            self._send(h, rec, resp)
            return
        self._route(rec)
        self._parse_oauth(rec, h.headers.get("Authorization"))
        pox = _Pox(rec.body)
        self._describe(rec, pox)
        fault = self._take_fault()
        mode = fault["mode"]
        if mode != "ok":
            rec.fault = mode
        if mode in ("refuse", "drop"):
            # "refuse" here is a keep-alive connection opened before the socket closed.
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        if mode == "slow" and self._stopping.wait(fault["delay"]):
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        now = time.time()
        with self._lock:
            if mode in ("garbage", "status", "failure", "unsupported"):
                if rec.flavour:
                    self._oauth_problems(rec, pox, now, store_nonce=False)
                resp = self._fault_response(rec, pox, fault)
            else:
                resp = self._process(rec, pox, now)
            self._fill(rec, resp)
        if mode == "lost":
            rec.delivered = False
            self._append(rec)
            h.close_connection = True
            return
        self._append(rec)
        self._send(h, rec, resp)

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
        if n < 0:
            raise ValueError("bad Content-Length")
        if n > MAX_BODY:
            raise ValueError("request body too large")
        return h.rfile.read(n) if n else b""

    def _send(self, h, rec, resp):
        try:
            h.send_response(resp.status)
            h.send_header("Content-Type", resp.content_type)
            h.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                h.send_header(k, v)
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(resp.body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            h.close_connection = True

    def _fill(self, rec, resp):
        rec.status = resp.status
        rec.response_body = resp.body
        rec.response_headers = [("Content-Type", resp.content_type)] + resp.headers
        parsed = parse_response(resp.body) if resp.body[:1] == b"<" else None
        if parsed and parsed["root"] == "imsx_POXEnvelopeResponse":
            rec.code_major = parsed["code_major"]
            rec.description = parsed["description"]

    def _route(self, rec):
        m = CANVAS_PATH.match(rec.path)
        if m:
            rec.flavour, rec.params = CANVAS, m.groupdict()
            return
        if MOODLE_PATH.match(rec.path):
            rec.flavour = MOODLE
            return
        m = EDX_PATH.match(unquote(rec.path))      # Django routes the decoded path
        if m:
            rec.flavour, rec.params = EDX, m.groupdict()

    def _parse_oauth(self, rec, value):
        rec.authorization = value
        if value is None:
            return
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "oauth":
            rec.oauth_error = "not an OAuth Authorization header"
            return
        params = {}
        for item in parse_http_list(rest):
            k, sep, v = item.strip().partition("=")
            k, v = k.strip(), v.strip()
            if not sep:
                rec.oauth_error = "malformed Authorization parameter %r" % item
                return
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            k, v = unquote(k), unquote(v)
            if k == "realm" or not k.startswith("oauth_"):
                continue
            if k in params:
                rec.oauth_error = "duplicate %s" % k
                return
            params[k] = v
        rec.oauth = params
        rec.consumer_key = params.get("oauth_consumer_key")
        rec.signature_method = params.get("oauth_signature_method")

    def _describe(self, rec, pox):
        rec.well_formed = pox.well_formed
        rec.doctype = pox.doctype
        if not pox.well_formed:
            return
        rec.version = pox.version
        rec.message_id = pox.message_id
        rec.operations = [o.name for o in pox.ops]
        op = pox.first
        if op is not None:
            rec.operation = op.name
            rec.sourcedid = op.sourcedid
            rec.score_text = op.score_text
            rec.language = op.language
            rec.total_score_text = op.total_score_text
            rec.result_data = op.result_data
            rec.result_data_text = op.result_data_text
            rec.result_data_url = op.result_data_url

    # -- OAuth --

    def _methods(self, flavour):
        if self.accept_sha256 is True:
            return (HMAC_SHA1, HMAC_SHA256)
        if self.accept_sha256 is False:
            return (HMAC_SHA1,)
        return (HMAC_SHA1, HMAC_SHA256) if flavour == CANVAS else (HMAC_SHA1,)

    def _secret(self, rec):
        key = rec.consumer_key
        if rec.flavour == CANVAS and self.canvas_tools is not None:
            key = self.canvas_tools.get(rec.params.get("tool_id"))
        return self._consumers.get(key) if key is not None else None

    def _base_string(self, rec):
        """RFC 5849 section 3.4.1 over the fake's own URL: method, base string
        URI (http://127.0.0.1:PORT/path as sent), the query parameters and the
        header's oauth_* parameters (realm and oauth_signature left out).
        Open edX verifies against urllib.parse.unquote() of the URL: so does
        the fake for that flavour (no change for a path sent with raw : + @)."""
        path = unquote(rec.path) if rec.flavour == EDX else rec.path
        uri = "http://%s:%d%s" % (self.host, self.port, path or "/")
        pairs = parse_qsl(rec.query, keep_blank_values=True)
        pairs += [(k, v) for k, v in rec.oauth.items() if k != "oauth_signature"]
        norm = "&".join("%s=%s" % kv for kv in sorted((_pct(k), _pct(v)) for k, v in pairs))
        return "&".join((_pct(rec.method.upper()), _pct(uri), _pct(norm)))

    def _oauth_problems(self, rec, pox, now, store_nonce=True):
        """Checks the OAuth header and fills the record's flags. Returns a dict
        problem -> strict_only (True: only the strict contract refuses it) with
        the problems this fake must act on (strict_only ones only when strict)."""
        flavour, p = rec.flavour, rec.oauth
        if p is None:
            return {"missing_header": False}
        found = {}
        secret = self._secret(rec)
        method = p.get("oauth_signature_method")
        if not rec.consumer_key or secret is None:
            found["consumer_key"] = False
        if method not in self._methods(flavour):
            found["signature_method"] = False
        if method in (HMAC_SHA1, HMAC_SHA256) and secret is not None:
            rec.base_string = self._base_string(rec)
            digest = hashlib.sha256 if method == HMAC_SHA256 else hashlib.sha1
            mac = hmac.new((_pct(secret) + "&").encode(), rec.base_string.encode(), digest)
            expected = base64.b64encode(mac.digest()).decode()
            rec.signature_ok = hmac.compare_digest(expected, p.get("oauth_signature", ""))
        else:
            rec.signature_ok = False
        if not rec.signature_ok and "consumer_key" not in found:
            found["signature"] = False
        version = p.get("oauth_version")
        if version != "1.0":
            found["oauth_version"] = not (flavour == MOODLE and version is not None)
        # the body hash: SHA-256 with an accepted HMAC-SHA256 (the OAuth body hash rule),
        # else SHA-1 (Moodle and Open edX always hash with SHA-1)
        sha256 = method == HMAC_SHA256 and HMAC_SHA256 in self._methods(flavour)
        digest = hashlib.sha256 if sha256 else hashlib.sha1
        want = base64.b64encode(digest(rec.body).digest()).decode()
        given = p.get("oauth_body_hash")
        rec.body_hash_ok = None if given is None else hmac.compare_digest(want, given)
        if given is None:
            found["body_hash_missing"] = flavour == CANVAS
        elif not rec.body_hash_ok:
            found["body_hash"] = flavour == CANVAS
        ts = p.get("oauth_timestamp", "")
        delta = now - int(ts) if ts.isdigit() and len(ts) < 15 else None
        rec.timestamp_ok = delta is not None and abs(delta) <= self.timestamp_window
        real_ts_fail = {CANVAS: delta is None or abs(delta) > CANVAS_WINDOW,
                        MOODLE: delta is None or delta > MOODLE_WINDOW,
                        EDX: False}[flavour]
        if not rec.timestamp_ok or real_ts_fail:
            found["timestamp"] = not real_ts_fail
        nonce = p.get("oauth_nonce")
        rec.nonce_fresh = bool(nonce) and (rec.consumer_key, nonce) not in self._nonces
        if not rec.nonce_fresh:
            found["nonce"] = not (flavour == CANVAS and nonce)
        problems = {k: v for k, v in found.items() if self.strict or not v}
        if not problems and store_nonce and nonce and (self.strict or flavour == CANVAS):
            self._nonces.add((rec.consumer_key, nonce))
        return problems

    @staticmethod
    def _first(problems, order):
        for k in order:
            if k in problems:
                return k, problems[k]
        k = next(iter(problems))
        return k, problems[k]

    def _refuse(self, rec, kind, strict_only, resp):
        rec.refusal = kind
        rec.strict_only = bool(strict_only)
        return resp

    def _xml_contract(self, pox):
        """The strict structural checks: (problem, message) or None."""
        if pox.root_name != "imsx_POXEnvelopeRequest":
            return "root", "the root element must be imsx_POXEnvelopeRequest"
        if not pox.all_in_ns:
            return "namespace", "every element must be in namespace " + NS
        if pox.version != "V1.0":
            return "version", "imsx_version must be V1.0"
        if not (pox.message_id or "").strip():
            return "message_id", "imsx_messageIdentifier must not be empty"
        if len(pox.ops) != 1:
            return "body", "imsx_POXBody must hold exactly one operation"
        return None

    def _score_contract(self, op):
        """The strict checks of a replaceResult score: (problem, message) or None."""
        if op.score_text is not None and not STRICT_DECIMAL.match(op.score_text):
            return "score_format", "resultScore must be a plain decimal, not %r" % op.score_text
        if op.score_present and op.language is not None and op.language.strip() != "en":
            return "language", "resultScore language must be \"en\" or absent"
        return None

    def _check_content_type(self, rec):
        return media_type(rec.content_type) in XML_TYPES

    def _entry(self, rec, sourcedid):
        """The gradebook entry a request may touch, or None."""
        e = self._gradebook.get(sourcedid) if sourcedid else None
        if e is None:
            return None
        if e.get("consumer_key") not in (None, rec.consumer_key):
            return None
        return e

    def _process(self, rec, pox, now):
        if rec.flavour is None:
            return self._refuse(rec, "path", False, _Response(404, "Not Found\n"))
        return {CANVAS: self._canvas, MOODLE: self._moodle, EDX: self._edx}[rec.flavour](
            rec, pox, now)

    # -- Canvas --

    def _canvas_json(self, status, message, with_report=True):
        doc = {"errors": [{"message": message}]}
        if with_report:
            doc["error_report_id"] = next(self._eid)
        return _Response(status, json.dumps(doc), "application/json; charset=utf-8")

    def _canvas_pox(self, rec, pox, code, description, body="", error_code=None):
        op = pox.first.name if pox.first else None
        op_ref = op[:-len("Request")] if op and op.endswith("Request") else op
        if code in ("failure", "unsupported"):
            description = (description or "") + "\n[EID_%d]" % next(self._eid)
        err = ("\n          <ext_canvas_error_code>%s</ext_canvas_error_code>" % escape(error_code)
               if error_code else "")
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<imsx_POXEnvelopeResponse xmlns="%s">\n'
               '  <imsx_POXHeader>\n'
               '    <imsx_POXResponseHeaderInfo>\n'
               '      <imsx_version>V1.0</imsx_version>\n'
               '      <imsx_messageIdentifier/>\n'
               '      <imsx_statusInfo>\n'
               '        <imsx_codeMajor>%s</imsx_codeMajor>\n'
               '        <imsx_severity>status</imsx_severity>\n'
               '        <imsx_description>%s</imsx_description>\n'
               '        <imsx_messageRefIdentifier>%s</imsx_messageRefIdentifier>\n'
               '        <imsx_operationRefIdentifier>%s</imsx_operationRefIdentifier>%s\n'
               '      </imsx_statusInfo>\n'
               '    </imsx_POXResponseHeaderInfo>\n'
               '  </imsx_POXHeader>\n'
               '  <imsx_POXBody>%s</imsx_POXBody>\n'
               '</imsx_POXEnvelopeResponse>\n') % (
                   NS, code, escape(description or ""), escape(pox.message_id or ""),
                   escape(op_ref or ""), err, body)
        status = 422 if code in ("failure", "unsupported") else 200
        return _Response(status, xml, "application/xml; charset=utf-8")

    def _canvas(self, rec, pox, now):
        tool_id = rec.params["tool_id"]
        if self.canvas_tools is not None and tool_id not in self.canvas_tools:
            return self._refuse(rec, "tool", False, self._canvas_json(
                404, "The specified resource does not exist.", False))
        if rec.method != "POST":       # the route is POST only
            return self._refuse(rec, "method", False, self._canvas_json(
                404, "The specified resource does not exist.", False))
        problems = self._oauth_problems(rec, pox, now)
        if problems:
            kind, so = self._first(problems, (
                "missing_header", "consumer_key", "signature_method", "signature",
                "oauth_version", "body_hash_missing", "body_hash", "timestamp", "nonce"))
            msg = {"timestamp": "Timestamp too old or too far in the future, request has expired",
                   "nonce": "Duplicate nonce detected"}.get(kind, "Invalid authorization header")
            return self._refuse(rec, kind, so, self._canvas_json(401, msg))
        ct = rec.content_type or ""
        real_ok = (ct == "application/xml" if self.canvas_exact_content_type
                   else media_type(ct) == "application/xml")
        if not real_ok:
            return self._refuse(rec, "content_type", False, self._canvas_json(
                415, "Content-Type must be 'application/xml'"))

        def fail(kind, so, desc, error_code=None, body=None):
            op = pox.first.name if pox.first else ""
            op_ref = op[:-len("Request")] if op.endswith("Request") else op
            if body is None:
                body = "<%sResponse />" % op_ref if op_ref else ""
            return self._refuse(rec, kind, so, self._canvas_pox(
                rec, pox, "failure", desc, body, error_code))

        if pox.doctype and self.strict:
            return fail("doctype", True, "DOCTYPE is not allowed", body="")
        if not pox.well_formed or pox.first is None:
            # Nokogiri recovers what it can; no operation found means "unsupported"
            return self._refuse(rec, "xml" if not pox.well_formed else "body", False,
                                self._canvas_pox(rec, pox, "unsupported", CANVAS_SHRUG))
        if self.strict:
            bad = self._xml_contract(pox)
            if bad:
                return fail(bad[0], True, bad[1])
        op = pox.first
        entry = self._entry(rec, op.sourcedid)
        if entry is None:
            if op.sourcedid and op.sourcedid in self._gradebook:
                return fail("sourcedid", False, "Tool is invalid", "tool_invalid")
            entry, rec.cell, err = self._canvas_cell(rec, op.sourcedid)
            if entry is None and err is None:
                # a token that does not decrypt or verify raises CanvasSecurity::InvalidToken
                # (or JSON::JWS::VerificationFailed), which nothing rescues
                return self._refuse(rec, "sourcedid", False,
                                    self._canvas_json(500, "An error occurred."))
            if entry is None:
                return fail("sourcedid", False, err[1], err[0])
        if op.name not in OPERATIONS:
            return self._refuse(rec, "unsupported", False,
                                self._canvas_pox(rec, pox, "unsupported", CANVAS_SHRUG))
        if rec.cell is not None and op.name != READ and self._canvas_enrollments.get(
                (self._canvas_assignments[rec.cell[1]][0], rec.cell[2])) != "active":
            # writes need an enrollment active_or_pending_by_date; reads do not
            return fail("enrollment", False, "Course not available for student",
                        "course_not_available")
        if op.name == READ:
            score = entry["score"]
            text = "" if score is None else ruby_float_str(score)
            return self._canvas_pox(rec, pox, "success", "", (
                "<readResultResponse><result><resultScore><language>en</language>"
                "<textString>%s</textString></resultScore></result></readResultResponse>"
                % text))
        if op.name == DELETE:
            entry["score"] = None
            return self._canvas_pox(rec, pox, "success", "", "<deleteResultResponse />")
        # replaceResult, in the order basic_outcomes.rb checks
        text_value, raw_value = op.score_text, op.total_score_text
        new_score = raw_score = None
        if text_value is not None:
            new_score = ruby_float(text_value)
            if new_score is None:
                return fail("score_format", False, "Unable to parse resultScore: %s" % text_value,
                            "no_parseable_result_score")
        if raw_value is not None:
            raw_score = ruby_float(raw_value)
            if raw_score is None:
                return fail("total_score_format", False,
                            "Unable to parse resultTotalScore: %s" % raw_value,
                            "no_parseable_result_total_score")
        if self.strict:
            bad = self._score_contract(op)
            if bad:
                return fail(bad[0], True, bad[1])
            if op.result_data is not None:
                kinds = [k for k, _ in op.result_data]
                if sorted(kinds) not in (["text"], ["url"]):
                    return fail("result_data", True,
                                "resultData must hold exactly one of text or url, not %s" % kinds)
        rd_text, rd_url = op.result_data_text, op.result_data_url
        if raw_score is None and new_score is not None and not 0.0 <= new_score <= 1.0:
            return fail("score_range", False, "Score is not between 0 and 1", "bad_score")
        if raw_score is None and new_score is None and not rd_text and not rd_url:
            return fail("no_score", False, "No score given", "no_score")
        if raw_score is not None:
            entry["total_score"] = raw_score
        elif new_score is not None:
            entry["score"] = new_score
        if rd_text:                     # Canvas takes the text and ignores the url
            entry["text"] = rd_text
        elif rd_url:
            entry["url"] = rd_url
        return self._canvas_pox(rec, pox, "success", "", "<replaceResultResponse />")

    # -- Moodle --

    def _moodle_pox(self, code, description, message_ref, message_type, body=None):
        """lti_get_response_xml(): random messageIdentifier, operationRefIdentifier
        is the incoming type ("replaceResultRequest"), body <type/>."""
        incoming = message_type.replace("Response", "Request")
        inner = "<%s/>" % message_type if body is None else body
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<imsx_POXEnvelopeResponse xmlns="%s"><imsx_POXHeader>'
               '<imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>'
               '<imsx_messageIdentifier>%d</imsx_messageIdentifier><imsx_statusInfo>'
               '<imsx_codeMajor>%s</imsx_codeMajor><imsx_severity>status</imsx_severity>'
               '<imsx_description>%s</imsx_description>'
               '<imsx_messageRefIdentifier>%s</imsx_messageRefIdentifier>'
               '<imsx_operationRefIdentifier>%s</imsx_operationRefIdentifier>'
               '</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader>'
               '<imsx_POXBody>%s</imsx_POXBody></imsx_POXEnvelopeResponse>\n') % (
                   NS, random.randrange(2**31), code, escape(description),
                   escape(message_ref or ""), escape(incoming), inner)
        # service.php sets no Content-Type: PHP's default goes out
        return _Response(200, xml, "text/html; charset=UTF-8")

    def _moodle(self, rec, pox, now):
        state = {"id": "", "type": "unknownRequest"}

        def fail(kind, so, desc):
            # service_exception_handler: a failure of the type known so far
            return self._refuse(rec, kind, so, self._moodle_pox(
                "failure", desc, state["id"], state["type"].replace("Request", "Response")))

        if rec.method != "POST" and self.strict:
            return fail("method", True, "Request method must be POST")
        if not rec.consumer_key:
            return fail("missing_header" if rec.oauth is None else "consumer_key", False,
                        "Consumer key is missing.")
        if media_type(rec.content_type) == "application/x-www-form-urlencoded":
            return fail("content_type", False, "Message signature not valid")
        problems = self._oauth_problems(rec, pox, now)
        if problems:
            kind, so = self._first(problems, (
                "body_hash_missing", "oauth_version", "consumer_key", "timestamp", "nonce",
                "signature_method", "signature", "body_hash"))
            return fail(kind, so, "Message signature not valid")
        if self.strict and not self._check_content_type(rec):
            return fail("content_type", True,
                        "Content-Type must be application/xml or text/xml")
        if pox.doctype and self.strict:
            return fail("doctype", True, "Invalid XML content")
        if not pox.well_formed:
            return fail("xml", False, "Invalid XML content")
        op = pox.last                          # the foreach keeps the last child
        state["id"] = pox.message_id or ""
        if op is None:
            return fail("body", False, "Invalid XML content")
        state["type"] = op.name
        if self.strict:
            bad = self._xml_contract(pox)
            if bad:
                return fail(bad[0], True, bad[1])
        if op.name not in OPERATIONS:
            return self._refuse(rec, "unsupported", False, self._moodle_pox(
                "unsupported", "unsupported", state["id"], op.name))
        if op.name == REPLACE:
            score_text = op.score_text or ""
            if not PHP_NUMERIC.match(score_text):
                return fail("score_format", False, "Score must be numeric")
            score = float(score_text)
            if score < 0.0 or score > 1.0:
                return fail("score_range", False, "Score not between 0.0 and 1.0")
            if self.strict:
                bad = self._score_contract(op)
                if bad:
                    return fail(bad[0], True, bad[1])
        entry = self._entry(rec, op.sourcedid)
        if entry is None:
            found = self._moodle_cell(op.sourcedid)
            if found is not None:
                entry, rec.cell = found
        if entry is None:
            # a hash that does not hold, or an instance Moodle does not have
            return fail("sourcedid", False, "SourcedId hash not valid")
        if op.name == REPLACE:
            # grade_update() keeps score * maxgrade with 5 decimals; resultData is not read
            entry["score"] = round(score * 100, 5) / 100
            return self._moodle_pox("success", "Grade replace response", state["id"],
                                    "replaceResultResponse")
        if op.name == READ:
            text = "" if entry["score"] is None else php_float_str(entry["score"])
            return self._moodle_pox("success", "Result read", state["id"], "readResultResponse",
                                    "<readResultResponse><result><resultScore>"
                                    "<language>en</language><textString>%s</textString>"
                                    "</resultScore></result></readResultResponse>" % text)
        entry["score"] = None
        return self._moodle_pox("success", "Grade delete request", state["id"],
                                "deleteResultResponse")

    # -- Open edX --

    @staticmethod
    def _edx_pox(code, description, message_id, response=""):
        """outcome_service_response.xml: the request's id goes in
        imsx_messageIdentifier; imsx_messageRefIdentifier stays blank; no
        imsx_operationRefIdentifier. Like str.format() there, nothing is
        escaped here: callers escape what Open edX escapes (the message id,
        error texts) and not what it does not (the sourcedid of a success)."""
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<imsx_POXEnvelopeResponse xmlns = "%s">\n'
               '    <imsx_POXHeader>\n'
               '        <imsx_POXResponseHeaderInfo>\n'
               '            <imsx_version>V1.0</imsx_version>\n'
               '            <imsx_messageIdentifier>%s</imsx_messageIdentifier>\n'
               '            <imsx_statusInfo>\n'
               '                <imsx_codeMajor>%s</imsx_codeMajor>\n'
               '                <imsx_severity>status</imsx_severity>\n'
               '                <imsx_description>%s</imsx_description>\n'
               '                <imsx_messageRefIdentifier>\n'
               '                </imsx_messageRefIdentifier>\n'
               '            </imsx_statusInfo>\n'
               '        </imsx_POXResponseHeaderInfo>\n'
               '    </imsx_POXHeader>\n'
               '    <imsx_POXBody>%s</imsx_POXBody>\n'
               '</imsx_POXEnvelopeResponse>') % (NS, message_id, code, description, response)
        return _Response(200, xml, "application/xml; charset=UTF-8")

    def _edx(self, rec, pox, now):
        body_text = rec.body.decode("utf-8", "replace")

        def parse_fail(kind, so, msg):
            desc = "Request body XML parsing error: %s %s" % (msg, escape(body_text))
            return self._refuse(rec, kind, so, self._edx_pox("failure", desc, "unknown"))

        def server_error(kind):
            return self._refuse(rec, kind, False, _Response(
                500, "<h1>Server Error (500)</h1>", "text/html; charset=utf-8"))

        if rec.method != "POST" and self.strict:
            return parse_fail("method", True, "request method must be POST")
        if pox.doctype and self.strict:
            return parse_fail("doctype", True, "DOCTYPE is not allowed")
        if not pox.well_formed:
            return parse_fail("xml", False, pox.error or "Body is not valid XML")
        mid = pox.edx_find("imsx_messageIdentifier")
        if mid is None:
            return parse_fail("message_id", False,
                              "Failed to parse imsx_messageIdentifier from XML request body")
        message_id = mid.text or ""
        body_el = pox.edx_find("imsx_POXBody")
        if body_el is None:
            return parse_fail("body", False, "Failed to parse imsx_POXBody from XML request body")
        children = [c for c in body_el if isinstance(c.tag, str)]
        if not children:
            return parse_fail("body", False, "Failed to parse action from XML request body")
        action = children[0].tag.replace("{%s}" % NS, "")
        sid_el = pox.edx_find("sourcedId")
        if sid_el is None:
            return parse_fail("sourcedid", False,
                              "Failed to parse sourcedId from XML request body")
        sourcedid = sid_el.text
        ts_el = pox.edx_find("textString")
        if ts_el is None:
            return parse_fail("no_score", False,
                              "Failed to parse score textString from XML request body")
        try:
            score = float(ts_el.text)   # a ValueError/TypeError escapes: Django answers 500
        except (TypeError, ValueError):
            return server_error("score_format")
        if not 0.0 <= score <= 1.0:
            return parse_fail("score_range", False,
                              "score value outside the permitted range of 0.0-1.0")
        if self.strict:
            bad = self._xml_contract(pox) or (
                self._score_contract(pox.first)
                if pox.first is not None and pox.first.name == REPLACE else None)
            if bad:
                return parse_fail(bad[0], True, bad[1])

        def oauth_fail(kind, so, msg):
            return self._refuse(rec, kind, so, self._edx_pox(
                "failure", "OAuth verification error: " + escape(msg), escape(message_id)))

        if rec.oauth is None:            # str(None) has no oauth_signature: a KeyError
            return server_error("missing_header")
        problems = self._oauth_problems(rec, pox, now)
        if problems:
            kind, so = self._first(problems, (
                "body_hash_missing", "body_hash", "consumer_key", "signature_method",
                "signature", "oauth_version", "timestamp", "nonce"))
            msg = {"body_hash_missing": "OAuth body hash verification has failed.",
                   "body_hash": "OAuth body hash verification has failed.",
                   "oauth_version": "oauth_version must be 1.0",
                   "timestamp": "oauth_timestamp is outside the allowed window",
                   "nonce": "oauth_nonce was already used"}.get(
                       kind, "OAuth signature verification has failed.")
            return oauth_fail(kind, so, msg)
        if self.strict and not self._check_content_type(rec):
            return oauth_fail("content_type", True,
                              "Content-Type must be application/xml or text/xml")
        if sourcedid is None:            # sourced_id.split(':') on None: an AttributeError
            return server_error("sourcedid")
        entry = self._entry(rec, sourcedid)
        if entry is None:
            return self._refuse(rec, "sourcedid", False, self._edx_pox(
                "failure", "User not found.", escape(message_id)))
        if action == REPLACE:
            entry["score"] = score
            return self._edx_pox("success", "Score for %s is now %s" % (sourcedid, score),
                                 escape(message_id), "<replaceResultResponse/>")
        return self._refuse(rec, "unsupported", False, self._edx_pox(
            "unsupported", "Target does not support the requested operation.",
            escape(message_id)))

    # -- injected answers --

    def _fault_response(self, rec, pox, fault):
        mode = fault["mode"]
        if mode == "garbage":
            return _Response(200, fault["body"] if fault["body"] is not None else GARBAGE,
                             fault["content_type"] or "text/html; charset=utf-8")
        if mode == "status":
            headers = []
            if fault["retry_after"] is not None:
                headers.append(("Retry-After", str(fault["retry_after"])))
            body = fault["body"] if fault["body"] is not None else (
                "<html><body><h1>%d</h1></body></html>" % fault["status"])
            return _Response(fault["status"], body, fault["content_type"] or
                             "text/html; charset=utf-8", headers)
        desc = fault["body"] or "injected %s" % mode
        op = pox.first.name if pox.first else "unknownRequest"
        if rec.flavour == MOODLE:
            resp = self._moodle_pox(mode, desc, pox.message_id, op.replace("Request", "Response"))
        elif rec.flavour == EDX:
            resp = self._edx_pox(mode, desc, escape(pox.message_id or "unknown"))
        else:
            resp = self._canvas_pox(rec, pox, mode, desc)
        if fault["status"] is not None:
            resp.status = fault["status"]
        return resp
