#!/usr/bin/python3
"""Stopping whatever clients did: launches whose clients closed their
connections without reading the answer, while the launches waited for the
database (a write lock held by another process), must not keep `serve`
from exiting on SIGTERM.

The launches wait suspended in the server; the test knows each one was read
in full (and so verified and queued for the writer: the server does that in
the same pass as it reads the last byte) when the kernel says so: the
client's socket has nothing left unacknowledged and the server's socket has
nothing left unread (/proc/net/tcp). Only then does the client close."""
import os
import socket
import sqlite3
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402
import test_email as em  # noqa: E402
import test_ui as ui  # noqa: E402
from ltitest import base_launch  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

# A bound, not a measure of speed: without the fix the server never exits.
EXIT_BOUND = 30.0
LAUNCHES = int(os.environ.get("STOP_LAUNCHES", "8"))


CLOSE_WAIT = 8  # include/net/tcp_states.h


def tcp_queues():
    """{(local port, remote port): (tx_queue, rx_queue, state)} of the IPv4 TCP sockets."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            lport = int(local.split(":")[1], 16)
            rport = int(remote.split(":")[1], 16)
            tx, rx = (int(x, 16) for x in queues.split(":"))
            out[(lport, rport)] = (tx, rx, int(fields[3], 16))
    return out


def wait_for(cond, what, bound=EXIT_BOUND):
    deadline = time.monotonic() + bound
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class Stopping(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-stop-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.db = os.path.join(self.tmp, "ltibadges.db")
        self.key, self.secret = lt.add_consumer(self.db, "Test LMS")
        self.server = lt.Server(self.tmp, db=self.db)
        self.addCleanup(self.server.kill)
        self.server.start()
        self.lock = None
        self.addCleanup(self.release_lock)

    def hold_lock(self):
        """The database's write lock, held by this process until released."""
        self.lock = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        self.lock.execute("BEGIN IMMEDIATE")

    def release_lock(self):
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None

    def sessions(self):
        return lt.counts(self.db)["sessions"]

    def send_and_abandon(self, n):
        """Sends `n` signed launches, waits until the server read each in full, closes them unread."""
        socks = []
        for _ in range(n):
            body = lt.sign(self.server.launch_url, base_launch(), self.key,
                           self.secret).encode()
            s = socket.create_connection(("127.0.0.1", self.server.port))
            s.sendall(b"POST /lti/launch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            socks.append(s)
        for s in socks:
            mine = s.getsockname()[1]

            def read_by_server():
                q = tcp_queues()
                client, server = q.get((mine, self.server.port)), q.get((self.server.port, mine))
                return (client is not None and client[:2] == (0, 0) and server is not None
                        and server[1] == 0)

            wait_for(read_by_server, "the server to read launch from port %d" % mine)
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        # the server's kernel saw each close (its socket waits for the server to close it)
        wait_for(lambda: all(tcp_queues().get((self.server.port, p), (0, 0, 0))[2] == CLOSE_WAIT
                             for p in ports), "the server's sockets to see the clients' close")

    def assertExits(self, bound=EXIT_BOUND):
        rc, elapsed = self.server.stop(timeout=bound)
        self.assertIsNotNone(rc, "serve did not exit within %.0f s of SIGTERM; stderr: %s"
                             % (bound, self.server.stderr()[-2000:]))
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        return elapsed

    def test_abandoned_launches_recorded_then_stop(self):
        self.hold_lock()
        self.send_and_abandon(LAUNCHES)
        self.release_lock()
        # the writer records them and resumes their connections, which are gone
        wait_for(lambda: self.sessions() == LAUNCHES, "the launches to be recorded")
        self.assertExits()

    def test_stop_while_abandoned_launches_wait(self):
        self.hold_lock()
        self.send_and_abandon(LAUNCHES)
        self.server.proc.send_signal(lt.signal.SIGTERM)
        wait_for(lambda: "stopping" in self.server.stderr() or
                 self.server.proc.poll() is not None, "serve to say it stops")
        self.release_lock()
        self.assertExits()

    def test_stop_while_the_lock_is_never_released(self):
        # The batch being written gives up after the busy timeout (5 s); the launches queued
        # behind it are answered at once (store_launch_refuse_queued), and the award and
        # outcome workers were told to stop first, so their waits overlap the writer's: a
        # stop takes about the one busy timeout, not one per batch and per worker (about
        # 25 s before). The bound is the suite's usual one.
        self.hold_lock()
        self.send_and_abandon(LAUNCHES)
        elapsed = self.assertExits()
        sys.stderr.write("test_stopping: stopped in %.1f s with the write lock held\n" % elapsed)
        self.release_lock()
        self.assertEqual(self.sessions(), 0)


class AbandonedMail(em.SmtpCase):
    """A learner who asked for a confirmation mail and left (the connection closed unread)
    while the relay hung: the stop does not wait for them forever, and their link, never
    mailed, is withdrawn as it would have been had they stayed. (Here MHD happens to call
    the handler once the stop resumes the request, so this guards the outcome whichever
    path, web/email.c's email_resumed or email_abandoned, gives the count back; the
    launches above are those MHD ends without the handler.)"""

    def test_stop_after_the_learner_left_while_the_mail_was_stuck(self):
        token, _ = self.waiting_learner("gone")
        fields = ui.form_fields(self.get_page(token).text, "/badges/email")
        fields["email"] = "gone@example.org"
        body = urlencode(fields).encode()
        self.sink.set_fault("hang")
        connections = self.sink.connections()
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(b"POST /badges/email HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        # its mail reached the relay: the request waits for it, suspended
        wait_for(lambda: self.sink.connections() > connections and len(self.links("gone")) == 1,
                 "the mail to reach the relay")
        port = s.getsockname()[1]
        s.close()
        wait_for(lambda: tcp_queues().get((self.server.port, port), (0, 0, 0))[2] == CLOSE_WAIT,
                 "the server's socket to see the client's close")
        rc, elapsed = self.server.stop(timeout=EXIT_BOUND)
        self.assertIsNotNone(rc, "serve did not exit within %.0f s of SIGTERM; stderr: %s"
                             % (EXIT_BOUND, self.server.stderr()[-2000:]))
        self.assertEqual(rc, 0, self.server.stderr()[-2000:])
        (link,) = self.links("gone")
        self.assertLessEqual(link["expires_at"], link["created_at"], "the link stays usable")
        self.assertIsNone(self.user_row("gone")["email"])
        self.assertEqual(self.sink.messages(), [])


if __name__ == "__main__":
    lt.main()
