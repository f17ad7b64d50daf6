"""A loopback SMTP sink for the tests: it accepts every message sent to it on
127.0.0.1 and keeps it on disk, so a test can read what the tool sent.
Needs Debian's python3-aiosmtpd; nothing listens anywhere but 127.0.0.1.

As a program (the C unit tests start it this way):

    smtpsink.py --dir DIR [--port 0]

prints "port=N" on stdout once it listens, then runs until SIGTERM or SIGINT,
or until its parent process goes away.

As a module, in-process:

    sink = Sink(directory)
    port = sink.start()
    ... let the tool send to smtp://127.0.0.1:<port> ...
    msg = sink.wait_for(1)[0]          # email.message.EmailMessage
    assert msg["Subject"] == "..."
    sink.stop()

Every message received is written as DIR/NNNN.eml (the bytes of the DATA
section as received, dot-stuffing undone) and DIR/NNNN.json (the envelope:
mail_from, rcpt_tos, the client's helo name, and what Python's email
package decodes: subject, from, to, the text body and any defects it
found, and the From header as RFC 2047 decodes it, see _decode). The
.json is written first and the .eml renamed into place last,
so a reader that sees NNNN.eml sees both files complete. DIR/connections
holds the number of SMTP connections accepted so far, so a test can tell
that the tool did not connect at all.

Faults: while the file DIR/fault exists (see set_fault), its content
decides the answer to the end of DATA, and the message is not kept:

    reject    550 (a permanent refusal)
    tempfail  451 (try again later)
    drop      the connection is closed without an answer
    hang      no answer at all: the connection stays open, silent, until the
              client closes it (a stuck relay; the tool's timeouts must act)
"""
import argparse
import asyncio
import email
import email.header
import email.policy
import json
import os
import re
import signal
import sys
import threading
import time

from aiosmtpd.smtp import SMTP

FAULTS = ("reject", "tempfail", "drop", "hang")
EML = re.compile(r"^([0-9]{4,})\.eml$")
MAX_MESSAGE = 8 << 20


def _write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _decode(raw):
    """What Python's email package reads in a message, for the .json file."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [repr(d) for d in msg.defects]
    out = {}
    for name in ("subject", "from", "to", "date", "message-id"):
        try:
            h = msg[name]
            out[name] = None if h is None else str(h)
            if h is not None:
                defects += ["%s: %r" % (name, d) for d in h.defects]
        except Exception as e:  # a header the parser cannot read is a defect
            out[name] = None
            defects.append("%s: %r" % (name, e))
    # policy.default's address parser puts a space between two adjacent
    # encoded-words of a display name, where RFC 2047 6.2 says to ignore the
    # white space (CPython gh-128110); the older decode_header() does not
    legacy = email.message_from_bytes(raw, policy=email.policy.compat32)["From"]
    try:
        out["from_rfc2047"] = (None if legacy is None else
                               str(email.header.make_header(email.header.decode_header(legacy))))
    except Exception as e:
        out["from_rfc2047"] = None
        defects.append("from: %r" % (e,))
    try:
        out["text"] = msg.get_content() if msg.get_content_maintype() == "text" else None
    except Exception as e:
        out["text"] = None
        defects.append("body: %r" % (e,))
    out["defects"] = defects
    return out


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        fault = self.sink.fault()
        if fault == "reject":
            return "550 5.7.1 message refused (smtpsink fault injection)"
        if fault == "tempfail":
            return "451 4.3.0 try again later (smtpsink fault injection)"
        if fault == "hang":
            # connection_lost() (the client gave up) or stop() cancels this coroutine
            await asyncio.sleep(3600)
            return "421 4.3.0 closing"
        if fault == "drop":
            server.transport.close()
            # connection_lost() cancels this coroutine: no answer is sent
            await asyncio.sleep(3600)
            return "421 4.3.0 closing"
        self.sink._keep(session, envelope)
        return "250 2.0.0 OK kept"


class _Server(SMTP):
    def __init__(self, sink, *args, **kw):
        super().__init__(*args, **kw)
        self._sink = sink

    def connection_made(self, transport):
        # connection_made() runs again after STARTTLS; count TCP connections only
        if self.transport is None:
            self._sink._count_connection()
        super().connection_made(transport)


class Sink:
    """An SMTP server on 127.0.0.1 keeping what it receives in `directory`."""

    def __init__(self, directory, port=0, hostname="smtpsink.test"):
        self.directory = os.path.abspath(directory)
        self.port = port
        self.hostname = hostname
        self._lock = threading.Lock()
        self._loop = None
        self._server = None
        self._thread = None
        self._connections = 0
        os.makedirs(self.directory, exist_ok=True)
        self._next = 1 + max((int(m.group(1)) for m in map(EML.match, os.listdir(self.directory))
                              if m), default=0)

    # ---- control ----------------------------------------------------------

    def start(self):
        """Starts listening in a thread of its own; returns the port."""
        ready = threading.Event()
        failure = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = loop.run_until_complete(loop.create_server(
                    self._protocol, host="127.0.0.1", port=self.port))
            except Exception as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                loop.run_until_complete(self._server.wait_closed())
                for task in asyncio.all_tasks(loop):
                    task.cancel()
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()

        self._thread = threading.Thread(target=run, name="smtpsink", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.port

    def stop(self):
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    def set_fault(self, mode):
        """None, "reject", "tempfail", "drop" or "hang"; other processes may write DIR/fault
        too."""
        path = os.path.join(self.directory, "fault")
        if mode is None:
            if os.path.exists(path):
                os.unlink(path)
            return
        if mode not in FAULTS:
            raise ValueError("fault must be one of %s" % (FAULTS,))
        _write_atomic(path, mode.encode())

    def fault(self):
        try:
            with open(os.path.join(self.directory, "fault"), "rb") as f:
                mode = f.read().decode("ascii", "replace").strip()
        except FileNotFoundError:
            return None
        return mode if mode in FAULTS else None

    # ---- what arrived -----------------------------------------------------

    def _numbers(self):
        return sorted(int(m.group(1)) for m in map(EML.match, os.listdir(self.directory)) if m)

    def raw_messages(self):
        """The bytes of every message kept, oldest first."""
        out = []
        for n in self._numbers():
            with open(os.path.join(self.directory, "%04d.eml" % n), "rb") as f:
                out.append(f.read())
        return out

    def messages(self):
        """Every message kept, oldest first, as email.message.EmailMessage."""
        return [email.message_from_bytes(raw, policy=email.policy.default)
                for raw in self.raw_messages()]

    def envelopes(self):
        """The .json record of every message kept, oldest first."""
        out = []
        for n in self._numbers():
            with open(os.path.join(self.directory, "%04d.json" % n), encoding="utf-8") as f:
                out.append(json.load(f))
        return out

    def connections(self):
        return self._connections

    def wait_for(self, count, timeout=10.0):
        """Waits until at least `count` messages were kept; returns messages()."""
        deadline = time.monotonic() + timeout
        while len(self._numbers()) < count:
            if time.monotonic() > deadline:
                raise AssertionError("smtpsink: %d message(s) after %.1f s, expected %d"
                                     % (len(self._numbers()), timeout, count))
            time.sleep(0.02)
        return self.messages()

    # ---- inside the server thread -----------------------------------------

    def _protocol(self):
        return _Server(self, _Handler(self), hostname=self.hostname, data_size_limit=MAX_MESSAGE,
                       enable_SMTPUTF8=False, decode_data=False)

    def _count_connection(self):
        with self._lock:
            self._connections += 1
            _write_atomic(os.path.join(self.directory, "connections"),
                          b"%d\n" % self._connections)

    def _keep(self, session, envelope):
        raw = bytes(envelope.original_content)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "helo": session.host_name,
        }
        record.update(_decode(raw))
        with self._lock:
            n = self._next
            self._next += 1
            base = os.path.join(self.directory, "%04d" % n)
            _write_atomic(base + ".json", json.dumps(record, ensure_ascii=False,
                                                     indent=1).encode("utf-8"))
            _write_atomic(base + ".eml", raw)


def main(argv=None):
    ap = argparse.ArgumentParser(description="an SMTP sink on 127.0.0.1 for the tests")
    ap.add_argument("--dir", required=True, help="where messages are written")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = ap.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    parent = os.getppid()
    sink = Sink(args.dir, port=args.port)
    port = sink.start()
    print("port=%d" % port, flush=True)
    # a test that dies leaves no sink behind: a parent gone means an orphan
    while not stop.wait(0.2):
        if os.getppid() != parent:
            break
    sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
