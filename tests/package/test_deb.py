#!/usr/bin/python3
"""The Debian package in a fresh Debian 12 root.

tests/package/test_deb.py SRC WORK builds the package as the README says
(a build configured with -DCMAKE_INSTALL_PREFIX=/usr, then cpack -G DEB) in
WORK/build, makes a minimal bookworm root with debootstrap in WORK/root
(the downloaded packages are kept in WORK/cache, inside the build tree, so
that the next run downloads nothing it has), installs the package's Depends
with apt and the package with dpkg -i inside it, and checks: the package's
fields (Depends from dpkg-shlibdeps, each library the program needs coming
from a package it depends on, the conffile), the files and their modes and
owners, the system user and group, `ltibadges --version` inside the root,
the unit with `systemd-analyze verify` (no warning either), the unit's own
command serving as the user ltibadges (READY=1 and STOPPING=1 on
NOTIFY_SOCKET, /healthz, the database 0600), and removal (the data and the
edited configuration stay, and stay across a reinstall) against purge
(both go).

Every command inside the root runs in a mount namespace of its own (unshare
-m) where /proc (and apt's cache) are mounted: the mounts end with the
command, whatever happens to it or to this test, and nothing outside WORK
is touched. The root is deleted at the end.

Without root, debootstrap or the Debian mirror the root cannot be made:
the test is then reported as skipped, by name and with the reason (exit
status 77, ctest's SKIP_RETURN_CODE). LTIBADGES_DEBIAN_MIRROR names another
mirror (default http://deb.debian.org/debian)."""
import fnmatch
import http.client
import os
import pwd
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from ltitest import LISTEN_RE  # noqa: E402

SKIP_STATUS = 77
SRC = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(HERE))
WORK = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(SRC, "build",
                                                                              "package-test")
del sys.argv[1:]
MIRROR = os.environ.get("LTIBADGES_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ROOT = os.path.join(WORK, "root")
BUILD = os.path.join(WORK, "build")
CACHE = os.path.join(WORK, "cache")
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
       "DEBIAN_FRONTEND": "noninteractive"}
CONF = "/etc/ltibadges/ltibadges.ini"
STATE = "/var/lib/ltibadges"
UNIT = "/usr/lib/systemd/system/ltibadges.service"
TIMES = []


def why_not():
    """None when the root can be made here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot and dpkg inside the root)"
    for tool, pkg in (("debootstrap", "debootstrap"), ("unshare", "util-linux"),
                      ("chroot", "coreutils"), ("cpack", "cmake"), ("dpkg-deb", "dpkg"),
                      ("dpkg-shlibdeps", "dpkg-dev"), ("objdump", "binutils"), ("file", "file")):
        if not shutil.which(tool):
            return "%s is missing (package %s; sh scripts/deps.sh test installs it)" % (tool, pkg)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "cannot make a mount namespace (unshare -m): %s" % p.stderr.strip()
    try:
        with urllib.request.urlopen(MIRROR + "/dists/bookworm/Release", timeout=20) as r:
            r.read(64)
    except OSError as e:
        return "the Debian mirror %s cannot be reached: %s" % (MIRROR, e)
    return None


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    p = subprocess.run(args, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(args), p.returncode,
                                                         p.stdout[-3000:], p.stderr[-3000:]))
    return p


def in_root_command(args, apt_cache=False):
    """argv running `args` chrooted into ROOT, in a mount namespace of its own with /proc
    (and apt's archive cache from CACHE) mounted: the mounts go when it ends."""
    script = 'set -e\nroot=$1\nshift\nmount -t proc proc "$root/proc"\n'
    if apt_cache:
        script += 'mount --bind "%s" "$root/var/cache/apt/archives"\n' % os.path.join(CACHE, "apt")
    script += 'exec chroot "$root" "$@"\n'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", ROOT] + args


def in_root(args, check=True, apt_cache=False, env=None):
    p = subprocess.run(in_root_command(args, apt_cache), capture_output=True, text=True,
                       env=dict(ENV, **(env or {})))
    if check and p.returncode != 0:
        raise AssertionError("in the root: %s failed (%d):\n%s\n%s" % (
            " ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def timed(what, fn, *a, **kw):
    t0 = time.monotonic()
    out = fn(*a, **kw)
    TIMES.append((what, time.monotonic() - t0))
    return out


def names(root_file):
    """{name: (id, fields)} of the root's /etc/passwd or /etc/group."""
    out = {}
    with open(ROOT + root_file) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            out[fields[0]] = (int(fields[2]), fields)
    return out


def depends_names(depends):
    """'a (>= 1), b | c' -> ['a', 'b'] (the first of alternatives)."""
    return [re.match(r"\s*([a-z0-9][a-z0-9.+-]*)", part.split("|")[0]).group(1)
            for part in depends.split(",")]


def readme_section():
    with open(os.path.join(SRC, "README.md")) as f:
        m = re.search(r"^## Installing on Debian\n(.*?)(?=^## )", f.read(), re.S | re.M)
    assert m, "README.md has a section '## Installing on Debian'"
    return m.group(1)


def build_package():
    """The package, built by the commands of the README's "Installing on Debian" (its first sh
    block but the sudo line), with WORK/build for build-deb."""
    block = re.search(r"```sh\n(.*?)```", readme_section(), re.S).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines()
                if line.strip() and not line.startswith("sudo ")]
    assert any("cpack -G DEB" in c for c in commands), commands
    if os.path.isdir(BUILD):
        for old in os.listdir(BUILD):
            if old.endswith(".deb"):
                os.unlink(os.path.join(BUILD, old))
    for c in commands:
        run(["sh", "-ec", re.sub(r"\bbuild-deb\b", BUILD, c)], cwd=SRC)
    debs = [f for f in os.listdir(BUILD) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    return os.path.join(BUILD, debs[0])


def remove_root():
    # Only namespaces of their own ever mounted anything in the root; refuse anyway to delete
    # through a mount point someone made by hand.
    with open("/proc/self/mounts") as f:
        mounted = [line.split()[1] for line in f if line.split()[1].startswith(ROOT + "/")]
    if mounted:
        raise AssertionError("refusing to delete %s: mounted inside it: %s" % (ROOT, mounted))
    shutil.rmtree(ROOT, ignore_errors=True)


class DebPackage(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = why_not()
        if why:
            raise unittest.SkipTest(why)
        os.makedirs(os.path.join(CACHE, "debootstrap"), exist_ok=True)
        os.makedirs(os.path.join(CACHE, "apt", "partial"), exist_ok=True)
        remove_root()
        cls.addClassCleanup(remove_root)
        cls.deb = timed("build the package (cmake, cpack)", build_package)
        cls.fields = {f: run(["dpkg-deb", "-f", cls.deb, f]).stdout.strip()
                      for f in ("Package", "Version", "Depends")}
        cls.depends = depends_names(cls.fields["Depends"])
        timed("debootstrap --variant=minbase bookworm", run, [
            "debootstrap", "--variant=minbase", "--cache-dir=" + os.path.join(CACHE, "debootstrap"),
            "bookworm", ROOT, MIRROR], env=dict(os.environ, **ENV))
        # what the package depends on, from the mirror, then the package with dpkg alone
        timed("apt-get install the Depends", in_root,
              ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + cls.depends,
              apt_cache=True)
        shutil.copy(cls.deb, ROOT + "/tmp/ltibadges.deb")
        timed("dpkg -i", in_root, ["dpkg", "-i", "/tmp/ltibadges.deb"])
        # systemd-analyze, and man for the unit's Documentation=man:ltibadges(1)
        timed("apt-get install systemd man-db", in_root,
              ["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd", "man-db"],
              apt_cache=True)
        cls.version = run([os.path.join(BUILD, "ltibadges"), "--version"]).stdout

    def stat(self, path):
        st = os.lstat(ROOT + path)
        users = {uid: n for n, (uid, _) in names("/etc/passwd").items()}
        groups = {gid: n for n, (gid, _) in names("/etc/group").items()}
        return stat.S_IMODE(st.st_mode), users.get(st.st_uid), groups.get(st.st_gid)

    def test_package_fields(self):
        self.assertEqual(self.fields["Package"], "ltibadges")
        for dep in ("adduser", "libc6", "libmicrohttpd12", "libsqlite3-0", "libssl3", "libxml2",
                    "libjansson4", "libinih1", "libpng16-16", "libcurl4"):
            self.assertIn(dep, self.depends, self.fields["Depends"])
        # dpkg-shlibdeps gives versions
        self.assertRegex(self.fields["Depends"], r"libc6 \(>= [0-9.]+\)")
        conffiles = run(["dpkg-deb", "--ctrl-tarfile", self.deb]).stdout
        self.assertIn("conffiles", conffiles)
        with open(ROOT + "/var/lib/dpkg/info/ltibadges.conffiles") as f:
            self.assertEqual(f.read().split(), [CONF])

    def test_every_library_comes_from_a_dependency(self):
        # in the minimal root a library can be there for other reasons (apt needs libsystemd0):
        # each one the program needs must come from a package it depends on
        dump = run(["objdump", "-p", ROOT + "/usr/bin/ltibadges"]).stdout
        needed = re.findall(r"^\s+NEEDED\s+(\S+)$", dump, re.M)
        self.assertIn("libmicrohttpd.so.12", needed)
        for lib in needed:
            with self.subTest(lib=lib):
                p = in_root(["dpkg", "-S", "*/" + lib])
                owners = {line.split(":")[0] for line in p.stdout.splitlines()}
                self.assertTrue(owners & set(self.depends),
                                "%s comes from %s, not in Depends: %s"
                                % (lib, owners, self.fields["Depends"]))

    def test_files_and_modes(self):
        want = {
            "/usr/bin/ltibadges": (0o755, "root", "root"),
            CONF: (0o640, "root", "ltibadges"),
            "/etc/ltibadges": (0o755, "root", "root"),
            STATE: (0o750, "ltibadges", "ltibadges"),
            UNIT: (0o644, "root", "root"),
            "/usr/share/man/man1/ltibadges.1.gz": (0o644, "root", "root"),
            "/usr/share/doc/ltibadges/examples/ltibadges.ini": (0o644, "root", "root"),
            "/usr/share/locale/C/LC_MESSAGES/ltibadges-en.mo": (0o644, "root", "root"),
            "/usr/share/locale/C/LC_MESSAGES/ltibadges-es.mo": (0o644, "root", "root"),
        }
        for path, (mode, user, group) in want.items():
            with self.subTest(path=path):
                self.assertEqual(self.stat(path), (mode, user, group))
        with open(ROOT + CONF) as f:
            self.assertRegex(f.read(), r"(?m)^path = %s/ltibadges\.db$" % STATE)
        # the man page opens with man
        p = in_root(["man", "-P", "cat", "ltibadges"], env={"MANWIDTH": "100"})
        self.assertIn("ltibadges - an LTI 1.1 tool provider", p.stdout)

    def test_readme_paths(self):
        # every path of the README's table is there, and the package file it names is built
        section = readme_section()
        paths = re.findall(r"^\| `(/[^`]*)` \|", section, re.M)
        self.assertGreater(len(paths), 5, section)
        for path in paths:
            with self.subTest(path=path):
                self.assertTrue(os.path.exists(ROOT + path), path)
        named = re.search(r"apt install \./build-deb/(\S+\.deb)", section).group(1)
        self.assertTrue(fnmatch.fnmatch(os.path.basename(self.deb), named), named)

    def test_system_user_and_group(self):
        users, groups = names("/etc/passwd"), names("/etc/group")
        self.assertIn("ltibadges", users)
        uid, fields = users["ltibadges"]
        self.assertLess(uid, 1000, "a system user")
        self.assertEqual(fields[5:7], [STATE, "/usr/sbin/nologin"])
        self.assertEqual(int(fields[3]), groups["ltibadges"][0], "its own group")
        p = in_root(["getent", "passwd", "ltibadges"])
        self.assertTrue(p.stdout.startswith("ltibadges:x:%d:" % uid), p.stdout)

    def test_version_inside_the_root(self):
        p = in_root(["ltibadges", "--version"])
        self.assertEqual(p.stdout, self.version)
        self.assertRegex(p.stdout, r"^ltibadges \d+\.\d+\.\d+")

    def test_unit_verifies(self):
        p = in_root(["systemd-analyze", "verify", "ltibadges.service"], check=False)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""),
                         "systemd-analyze verify: no error and no warning")
        with open(ROOT + UNIT) as f:
            unit = f.read()
        for line in ("Type=notify", "User=ltibadges", "Group=ltibadges", "ProtectSystem=strict",
                     "ReadWritePaths=" + STATE, "NoNewPrivileges=yes", "PrivateTmp=yes",
                     "ProtectHome=yes", "Restart=on-failure",
                     "ExecStart=/usr/bin/ltibadges --config %s serve" % CONF):
            self.assertRegex(unit, r"(?m)^%s$" % re.escape(line))

    def test_the_units_command_serves_as_ltibadges(self):
        with open(ROOT + UNIT) as f:
            exec_start = re.search(r"(?m)^ExecStart=(.*)$", f.read()).group(1).split()
        sockdir = tempfile.mkdtemp(dir=ROOT + "/run")
        os.chmod(sockdir, 0o755)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(os.path.join(sockdir, "notify"))
        os.chmod(os.path.join(sockdir, "notify"), 0o777)
        db = STATE + "/ltibadges.db"
        for f in (db, db + "-wal", db + "-shm"):
            if os.path.exists(ROOT + f):
                os.unlink(ROOT + f)
        # as the unit runs it (its user, umask), on a free loopback port
        cmd = ["setpriv", "--reuid=ltibadges", "--regid=ltibadges", "--init-groups", "--"]
        cmd += ["sh", "-c", 'umask 077 && cd %s && exec "$@"' % STATE, "sh"]
        cmd += exec_start + ["--listen", "127.0.0.1:0"]
        env = dict(ENV, NOTIFY_SOCKET=sockdir[len(ROOT):] + "/notify")
        proc = subprocess.Popen(in_root_command(cmd), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        try:
            sock.settimeout(30)
            self.assertEqual(sock.recv(4096), b"READY=1")
            line = proc.stdout.readline().decode()
            m = LISTEN_RE.match(line.rstrip("\n"))
            self.assertIsNotNone(m, line)
            self.assertEqual("ltibadges %s\n" % m.group(4), self.version)
            c = http.client.HTTPConnection("127.0.0.1", int(m.group(2)), timeout=10)
            c.request("GET", "/healthz")
            self.assertEqual(c.getresponse().status, 200)
            c.close()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(sock.recv(4096), b"STOPPING=1")
            self.assertEqual(proc.wait(timeout=30), 0, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()
            sock.close()
            shutil.rmtree(sockdir, ignore_errors=True)
        self.assertEqual(self.stat(db), (0o600, "ltibadges", "ltibadges"))

    def test_remove_keeps_data_purge_removes_it(self):
        marker = STATE + "/kept"
        with open(ROOT + marker, "w") as f:
            f.write("data\n")
        try:
            in_root(["dpkg", "-r", "ltibadges"])
            self.assertFalse(os.path.exists(ROOT + "/usr/bin/ltibadges"))
            self.assertTrue(os.path.exists(ROOT + marker), "remove keeps the data")
            self.assertTrue(os.path.exists(ROOT + CONF), "remove keeps the configuration")
            with open(ROOT + CONF, "a") as f:
                f.write("; edited by the administrator\n")
            # installing again keeps both, the edit too, and the user
            in_root(["dpkg", "-i", "/tmp/ltibadges.deb"])
            with open(ROOT + CONF) as f:
                self.assertTrue(f.read().endswith("; edited by the administrator\n"))
            self.assertEqual(self.stat(CONF), (0o640, "root", "ltibadges"))
            self.assertTrue(os.path.exists(ROOT + marker))
            in_root(["dpkg", "-P", "ltibadges"])
            self.assertFalse(os.path.exists(ROOT + STATE), "purge removes the data")
            self.assertFalse(os.path.exists(ROOT + "/etc/ltibadges"), "and the configuration")
        finally:
            # as the other tests expect it: installed, with the package's configuration
            in_root(["dpkg", "-i", "/tmp/ltibadges.deb"])
            if os.path.exists(ROOT + marker):
                os.unlink(ROOT + marker)
        self.assertEqual(self.stat(STATE), (0o750, "ltibadges", "ltibadges"))
        with open(ROOT + CONF) as f:
            self.assertNotIn("edited", f.read())


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    for what, seconds in TIMES:
        print("time: %s: %.0f s" % (what, seconds))
    if not result.wasSuccessful():
        sys.exit(1)
    # (a skip in setUpClass runs no test and is one skip)
    if result.skipped and result.testsRun <= len(result.skipped):
        for test, why in result.skipped:
            print("SKIPPED package_deb (%s): %s" % (test.id(), why))
        sys.exit(SKIP_STATUS)
