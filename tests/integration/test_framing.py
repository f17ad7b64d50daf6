#!/usr/bin/python3
"""HTTP framing over raw sockets, byte for byte: every framing that could
let a second request hide inside a first one (or hang a connection) is
refused before any route runs, with exactly one answer and the connection
closed after it; nothing is written to the database, not even by a launch
smuggled inside the refused request's body. Alone, and pipelined behind a
valid request on the same connection (which is answered first).

Also: a declared body over the route's limit is answered 413 at once and
the answer reaches a client still sending its body; a header block over
[server] max_header is answered 431; one that takes longer than [server]
header_timeout, 408."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
from ltitest import base_launch, counts  # noqa: E402

# bounds, not measures: how long a test waits for an answer or a close that must come
READ_BOUND = 10.0
HEADER_TIMEOUT = 2  # [server] header_timeout of the test server (seconds)
MAX_HEADER = 8192  # [server] max_header (bytes): the request line and the header fields
SMALL_SNDBUF = 16 * 1024  # a client's send buffer (SO_SNDBUF) much smaller than its body
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def parse_responses(data):
    """The responses in `data` as [(status, headers dict (lower-case names), body)], and the
    bytes left over that do not make a whole response."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        head = data[:end].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            break
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        n = int(headers.get("content-length", "0"))
        if len(data) < end + 4 + n:
            break
        out.append((int(parts[1]), headers, data[end + 4:end + 4 + n]))
        data = data[end + 4 + n:]
    return out, data


class Conn:
    """A raw connection: send bytes, read everything until the server closes."""

    def __init__(self, port, sndbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(READ_BOUND)
        self.sock.connect(("127.0.0.1", port))

    def send(self, data):
        self.sock.sendall(data)

    def read_until_closed(self):
        """All bytes until EOF; (bytes, closed). A reset after some answers counts as closed."""
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, "reset"

    def close(self):
        self.sock.close()


class Framing(lt.ServerTestCase):
    CONFIG = ("[server]\nheader_timeout = %d\nmax_header = %d\n" % (HEADER_TIMEOUT, MAX_HEADER))

    def setUp(self):
        self.before = counts(self.db)

    def launch_body(self):
        return lt.sign(self.server.launch_url, base_launch(), self.key, self.secret).encode()

    def launch_request(self, extra=b""):
        """A whole, valid, signed launch (what a smuggler hides in a body)."""
        body = self.launch_body()
        return (b"POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n%s\r\n" % (len(body), extra) + body)

    def exchange(self, data, pipelined, sndbuf=None):
        c = Conn(self.server.port, sndbuf)
        try:
            c.send((HEALTHZ if pipelined else b"") + data)
            got, closed = c.read_until_closed()
        finally:
            c.close()
        return got, closed

    def assertRefusedOnce(self, data, status, pipelined=False, sndbuf=None):
        got, closed = self.exchange(data, pipelined, sndbuf)
        responses, rest = parse_responses(got)
        want = ([200] if pipelined else []) + [status]
        self.assertEqual([r[0] for r in responses], want, got[:2000])
        self.assertEqual(rest, b"", got[:2000])
        self.assertTrue(closed, "the connection stays open after %d: %r" % (status, got[:500]))
        if closed != "reset":
            self.assertEqual(responses[-1][1].get("connection", "").lower(), "close",
                             responses[-1][1])
        self.assertEqual(counts(self.db), self.before, "something was recorded")
        return responses[-1]

    def both(self, data, status):
        self.assertRefusedOnce(data, status)
        self.assertRefusedOnce(data, status, pipelined=True)

    def post(self, headers, body):
        return (b"POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n" + headers + b"\r\n" + body)

    # ---- the valid framings still work

    def test_valid_pipelined_launch_is_answered(self):
        got, closed = self.exchange(self.launch_request(b"Connection: close\r\n"), pipelined=True)
        responses, rest = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [200, 303], got[:2000])
        self.assertEqual(counts(self.db)["sessions"], self.before["sessions"] + 1)

    def test_chunked_launch_is_read(self):
        body = self.launch_body()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        got, _ = self.exchange(self.post(b"Transfer-Encoding: chunked\r\nConnection: close\r\n",
                                         chunked), pipelined=False)
        responses, _ = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [303], got[:2000])

    # ---- Content-Length and Transfer-Encoding together

    def test_content_length_and_chunked(self):
        smuggled = self.launch_request()
        body = b"0\r\n\r\n" + smuggled
        for order in ((b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(body)),
                      (b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(body)),
                      (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")):
            with self.subTest(order=order):
                self.both(self.post(order, body), 400)

    def test_content_length_and_other_encoding(self):
        body = b"a=b"
        self.both(self.post(b"Content-Length: 3\r\nTransfer-Encoding: gzip\r\n", body), 400)

    # ---- Content-Length alone

    def test_two_content_lengths(self):
        smuggled = self.launch_request()
        for pair in ((0, len(smuggled)), (len(smuggled), 0), (5, 5)):
            with self.subTest(pair=pair):
                self.both(self.post(b"Content-Length: %d\r\nContent-Length: %d\r\n" % pair,
                                    smuggled), 400)

    def assertRefusedByMhd(self, data, status, pipelined=False):
        """libmicrohttpd 0.9.75 refuses a Content-Length it cannot parse itself, and no callback
        of ours runs between its parse and its answer, which goes out with its header block
        twice (a bug of that version). What must hold on the wire: every status line says
        `status`, the smuggled request is never answered, the connection closes, nothing is
        recorded."""
        got, closed = self.exchange(data, pipelined)
        responses, _ = parse_responses(got)
        want = ([200] if pipelined else []) + [status]
        self.assertEqual([r[0] for r in responses], want, got[:2000])
        lines = [l for l in got.split(b"\r\n") if l.startswith(b"HTTP/1.")]
        self.assertTrue(all(l.split(b" ")[1] == str(status).encode() for l in lines[len(want) - 1:]),
                        got[:2000])
        self.assertTrue(closed)
        self.assertEqual(counts(self.db), self.before, "something was recorded")

    def test_content_length_not_a_number(self):
        smuggled = self.launch_request()
        for value in (b"5, 5", b"5,5", b"+5", b"-1", b"5a", b"0x10", b"", b"1 2", b"5 "):
            with self.subTest(value=value):
                self.assertRefusedByMhd(self.post(b"Content-Length: " + value + b"\r\n",
                                                  smuggled), 400)
                self.assertRefusedByMhd(self.post(b"Content-Length: " + value + b"\r\n",
                                                  smuggled), 400, pipelined=True)
        # digits, more than any body could be
        big = self.post(b"Content-Length: 99999999999999999999999\r\n", smuggled)
        self.assertRefusedByMhd(big, 413)
        self.assertRefusedByMhd(big, 413, pipelined=True)

    def test_header_name_with_space_before_colon(self):
        # a proxy that trims it sees a chunked body, we would have seen Content-Length
        smuggled = self.launch_request()
        body = b"0\r\n\r\n" + smuggled
        for h in (b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n" % len(body),
                  b"Content-Length : %d\r\n" % len(body),
                  b"Transfer-Encoding\t: chunked\r\n"):
            with self.subTest(h=h):
                self.both(self.post(h, body), 400)

    # ---- Transfer-Encoding other than chunked: 501 at once, never a wait for the body

    def test_unknown_transfer_encodings(self):
        smuggled = self.launch_request()
        for te in (b"xchunked", b"chunked, identity", b"identity, chunked", b"gzip",
                   b"gzip, chunked", b"chunked\x0b", b"identity", b"chunked;x=1"):
            with self.subTest(te=te):
                self.both(self.post(b"Transfer-Encoding: " + te + b"\r\n", smuggled), 501)

    def test_two_transfer_encoding_headers(self):
        body = b"0\r\n\r\n"
        self.both(self.post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                            body), 501)
        self.both(self.post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                            body), 501)

    def test_unknown_encoding_without_body_is_answered_at_once(self):
        # nothing follows the header block: an answer that waited for a body would never come
        c = Conn(self.server.port)
        try:
            c.send(self.post(b"Transfer-Encoding: gzip\r\n", b""))
            got, closed = c.read_until_closed()
        finally:
            c.close()
        responses, _ = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [501], got)
        self.assertTrue(closed)

    def test_get_with_transfer_encoding(self):
        smuggled = self.launch_request()
        self.both(b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" +
                  smuggled, 501)
        self.both(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400)

    # ---- a body over the route's limit: 413 at once, received by a client still sending

    def test_declared_body_over_the_limit(self):
        # without a byte of the body: the answer comes from the headers alone
        c = Conn(self.server.port)
        try:
            c.send(self.post(b"Content-Length: %d\r\n" % (1024 * 1024), b""))
            got, closed = c.read_until_closed()
        finally:
            c.close()
        responses, _ = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [413], got[:2000])
        self.assertTrue(closed)
        self.assertEqual(counts(self.db), self.before)

    def test_large_launch_gets_its_413_while_sending(self):
        # a client that sends its whole body before it reads (as most do) gets the 413, not a
        # reset. Its send buffer is small, as over a real network: most of the body is still
        # to be sent when the server answers and closes.
        body = b"a=" + b"x" * (1024 * 1024)
        for i in range(8):
            with self.subTest(i=i):
                c = Conn(self.server.port, SMALL_SNDBUF)
                try:
                    c.send(self.post(b"Content-Length: %d\r\n" % len(body), body))
                    got, closed = c.read_until_closed()
                finally:
                    c.close()
                responses, _ = parse_responses(got)
                self.assertEqual([r[0] for r in responses], [413], got[:2000])
                self.assertIs(closed, True)
        self.assertEqual(counts(self.db), self.before)

    def test_large_launch_pipelined_behind_a_valid_request(self):
        body = b"a=" + b"x" * (1024 * 1024)
        self.assertRefusedOnce(self.post(b"Content-Length: %d\r\n" % len(body), body), 413,
                               pipelined=True, sndbuf=SMALL_SNDBUF)

    def test_endless_chunked_body_is_not_read_forever(self):
        # no length to refuse it by at once: past the route's limit what comes is dropped,
        # and only so much of it, then the connection is closed
        c = Conn(self.server.port)
        chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
        sent = 0
        try:
            c.send(self.post(b"Transfer-Encoding: chunked\r\n", b""))
            with self.assertRaises((BrokenPipeError, ConnectionResetError)):
                while sent < 256 * 1024 * 1024:
                    c.sock.sendall(chunk)
                    sent += len(chunk)
        finally:
            c.close()
        self.assertLess(sent, 64 * 1024 * 1024)
        self.assertEqual(counts(self.db), self.before)

    # ---- the header block: its size and how long it takes

    def header_block(self, size, extra=b""):
        """A GET /healthz whose request line and header fields are exactly `size` bytes (the
        empty line that ends the block is not counted)."""
        start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra
        pad = size - len(start) - len(b"X-Pad: \r\n")
        return start + b"X-Pad: " + b"p" * pad + b"\r\n\r\n"

    def test_header_block_at_the_limit(self):
        req = self.header_block(MAX_HEADER, b"Connection: close\r\n")
        self.assertEqual(len(req), MAX_HEADER + 2)
        got, closed = self.exchange(req, False)
        responses, _ = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [200], got[:500])
        self.assertTrue(closed)

    def test_header_block_over_the_limit(self):
        self.both(self.header_block(MAX_HEADER + 1), 431)
        self.both(self.header_block(MAX_HEADER * 8), 431)

    def test_slow_header_block(self):
        # the header block never ends: 408 after header_timeout, then the connection closes
        for pipelined in (False, True):
            with self.subTest(pipelined=pipelined):
                c = Conn(self.server.port)
                try:
                    c.send((HEALTHZ if pipelined else b"") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    t0 = time.monotonic()
                    got, closed = c.read_until_closed()
                    elapsed = time.monotonic() - t0
                finally:
                    c.close()
                responses, _ = parse_responses(got)
                self.assertEqual([r[0] for r in responses], ([200] if pipelined else []) + [408],
                                 got[:2000])
                self.assertTrue(closed)
                self.assertGreaterEqual(elapsed, HEADER_TIMEOUT - 0.5)

    def test_trickled_header_block(self):
        # a byte now and then keeps an idle timer alive, not the header block's
        c = Conn(self.server.port)
        stop = threading.Event()

        def trickle():
            try:
                for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 1000:
                    if stop.wait(0.2):
                        return
                    c.sock.send(bytes([b]))
            except OSError:
                return

        t = threading.Thread(target=trickle)
        t.start()
        try:
            got, closed = c.read_until_closed()
        finally:
            stop.set()
            t.join()
            c.close()
        responses, _ = parse_responses(got)
        self.assertEqual([r[0] for r in responses], [408], got[:2000])
        self.assertTrue(closed)


if __name__ == "__main__":
    lt.main()
