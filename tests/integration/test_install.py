#!/usr/bin/python3
"""`cmake --install` of the build under test (DESTDIR, its own prefix): the
program, its translations, the man page (docs/ltibadges.1, compressed), the
example configuration (every key of the README's configuration section, each
commented with its default, loading as it is and with every key set) both
among the docs and as SYSCONFDIR/ltibadges/ltibadges.ini (0640, kept when an
edited one is there), and the systemd unit naming the installed paths."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(lt.HERE))
BUILD = os.path.dirname(os.path.abspath(lt.BIN))


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        m = re.search(r"^%s:[A-Z]+=(.*)$" % re.escape(name), f.read(), re.M)
    return m.group(1) if m else None


def readme_keys():
    """{section: [keys]} of the README's configuration example."""
    with open(os.path.join(ROOT, "README.md")) as f:
        m = re.search(r"```ini\n(.*?)```", f.read(), re.S)
    keys, section = {}, None
    for line in m.group(1).splitlines():
        s = re.match(r"^\[(\w+)\]", line)
        if s:
            section = s.group(1)
            keys[section] = []
            continue
        k = re.match(r"^(\w+)\s*=", line)
        if k:
            keys[section].append(k.group(1))
    return keys


def ini_keys(text, commented):
    """{section: {key: value}} of an INI text; commented: the ';key = value' lines too."""
    out, section = {}, None
    for line in text.splitlines():
        s = re.match(r"^\[(\w+)\]", line)
        if s:
            section = s.group(1)
            out[section] = {}
            continue
        k = re.match(r"^(;)?(\w+) = ?(.*)$", line)
        if k and (commented or not k.group(1)):
            out[section][k.group(2)] = k.group(3)
    return out


class Install(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.prefix = cache_value("CMAKE_INSTALL_PREFIX")
        if cls.prefix is None:
            raise AssertionError("no CMAKE_INSTALL_PREFIX in %s/CMakeCache.txt" % BUILD)
        cls.tmp = tempfile.mkdtemp(prefix="ltibadges-install-")
        cls.dest = os.path.join(cls.tmp, "dest")
        cls.out = cls.install()
        cls.sysconf = "/etc" if cls.prefix == "/usr" else cls.prefix + "/etc"
        cls.conf = cls.path(cls.sysconf + "/ltibadges/ltibadges.ini")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def install(cls):
        p = subprocess.run(["cmake", "--install", BUILD], capture_output=True, text=True,
                           env=dict(os.environ, DESTDIR=cls.dest))
        if p.returncode != 0:
            raise AssertionError("cmake --install failed: %s %s" % (p.stdout, p.stderr))
        return p.stdout

    @classmethod
    def path(cls, p):
        return cls.dest + p

    def mode(self, p):
        return stat.S_IMODE(os.stat(self.path(p)).st_mode)

    def test_program_translations_man_page(self):
        exe = self.prefix + "/bin/ltibadges"
        self.assertEqual(self.mode(exe), 0o755)
        got = subprocess.run([self.path(exe), "--version"], capture_output=True, text=True)
        want = subprocess.run([lt.BIN, "--version"], capture_output=True, text=True)
        self.assertEqual(got.stdout, want.stdout)
        self.assertRegex(got.stdout, r"^ltibadges \S+\n$")
        for lang in ("en", "es"):
            mo = self.path(self.prefix + "/share/locale/C/LC_MESSAGES/ltibadges-%s.mo" % lang)
            with open(mo, "rb") as f:
                self.assertIn(f.read(4), (b"\xde\x12\x04\x95", b"\x95\x04\x12\xde"), mo)
        with gzip.open(self.path(self.prefix + "/share/man/man1/ltibadges.1.gz")) as f:
            page = f.read()
        with open(os.path.join(ROOT, "docs", "ltibadges.1"), "rb") as f:
            self.assertEqual(page, f.read())

    def test_unit_names_the_installed_paths(self):
        with open(self.path(self.prefix + "/lib/systemd/system/ltibadges.service")) as f:
            unit = f.read()
        self.assertIn("\nExecStart=%s/bin/ltibadges --config %s/ltibadges/ltibadges.ini serve\n"
                      % (self.prefix, self.sysconf), unit)
        self.assertIn("\nUser=ltibadges\n", unit)
        want = "notify" if os.environ.get("LTIBADGES_SYSTEMD", "1") not in ("0", "") else "simple"
        self.assertIn("\nType=%s\n" % want, unit)

    def test_example_configuration(self):
        example = self.path(self.prefix + "/share/doc/ltibadges/examples/ltibadges.ini")
        with open(example) as f:
            text = f.read()
        with open(self.conf) as f:
            self.assertEqual(f.read(), text)
        self.assertEqual(self.mode(self.sysconf + "/ltibadges/ltibadges.ini"), 0o640)
        keys = ini_keys(text, commented=True)
        for section, names in readme_keys().items():
            for k in names:
                self.assertIn(k, keys.get(section, {}),
                              "README's [%s] %s is not in the example configuration"
                              % (section, k))
        # set: only the database's path (where the service keeps it)
        self.assertEqual(list(ini_keys(text, commented=False)["database"]), ["path"])
        self.assertEqual(sum(len(v) for v in ini_keys(text, commented=False).values()), 1)
        db = os.path.join(self.tmp, "example.db")
        # as it is, and with every commented key set to the value shown
        uncommented = re.sub(r"(?m)^;(\w+ = ?)", r"\1", text)
        for name, body in (("as-is.ini", text), ("all-keys.ini", uncommented)):
            with self.subTest(config=name):
                cfg = os.path.join(self.tmp, name)
                with open(cfg, "w") as f:
                    f.write(body)
                p = lt.run_cli("migrate", "--config", cfg, "--db", db)
                self.assertEqual(p.returncode, 0, p)

    def test_reinstall_keeps_an_edited_configuration(self):
        with open(self.conf) as f:
            original = f.read()
        try:
            with open(self.conf, "a") as f:
                f.write("; edited\n")
            out = self.install()
            self.assertIn("Keeping: %s" % self.conf, out)
            with open(self.conf) as f:
                self.assertEqual(f.read(), original + "; edited\n")
        finally:
            with open(self.conf, "w") as f:
                f.write(original)


if __name__ == "__main__":
    unittest.main(verbosity=2)
