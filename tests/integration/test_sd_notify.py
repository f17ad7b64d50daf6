#!/usr/bin/python3
"""serve under systemd's Type=notify: with $NOTIFY_SOCKET set (as systemd
sets it), it sends READY=1 once it listens, and STOPPING=1 when SIGTERM
stops it, each a datagram to that socket.

A build without libsystemd (LTIBADGES_SYSTEMD=0, set by tests/CMakeLists.txt)
cannot notify: this test is then reported as skipped, by name and with the
reason (exit status 77)."""
import os
import shutil
import signal
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

SKIP_STATUS = 77


class SdNotify(unittest.TestCase):

    def setUp(self):
        if os.environ.get("LTIBADGES_SYSTEMD", "1") in ("0", ""):
            self.skipTest("built without libsystemd (libsystemd-dev): serve does not notify "
                          "systemd, and the unit is Type=simple")
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = os.path.join(self.tmp, "notify")
        self.sock.bind(self.path)
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.kill()
        self.sock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def messages(self, timeout):
        """The next datagram, as a dict of its KEY=VALUE lines."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines() if line)

    def test_ready_once_listening_stopping_on_sigterm(self):
        self.server = lt.Server(self.tmp, env={"NOTIFY_SOCKET": self.path}).start()
        # it listens (its line was printed): READY=1 comes then, and nothing before it
        self.assertEqual(self.messages(lt.START_TIMEOUT), {"READY": "1"})
        self.assertEqual(self.server.get("/healthz").status, 200)
        self.server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.messages(lt.STOP_TIMEOUT), {"STOPPING": "1"})
        rc, _ = self.server.stop()
        self.assertEqual(rc, 0, self.server.stderr())


if __name__ == "__main__":
    lt.main(SKIP_STATUS)
