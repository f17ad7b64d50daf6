#!/usr/bin/python3
"""A clone that stands alone: the README's plain build (`cmake -B build`) works
with only the build packages (those the README lists), cmocka missing (the suite is then off unless
-DLTIBADGES_TESTS=ON asks for it, which fails naming cmocka); and no file of
the tree names a path of a developer's machine."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def pkg_config_dirs():
    p = subprocess.run(["pkg-config", "--variable", "pc_path", "pkg-config"],
                       capture_output=True, text=True, check=True)
    return [d for d in p.stdout.strip().split(":") if os.path.isdir(d)]


class PlainBuild(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ltibadges-standalone-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def configure(self, *args):
        """cmake -S ROOT -B TMP/build ARGS, with a pkg-config that knows every package
        installed here but cmocka (as after scripts/deps.sh build alone)."""
        pcdir = os.path.join(self.tmp, "pc")
        os.makedirs(pcdir, exist_ok=True)
        for d in pkg_config_dirs():
            for name in os.listdir(d):
                dst = os.path.join(pcdir, name)
                if name.endswith(".pc") and name != "cmocka.pc" and not os.path.exists(dst):
                    os.symlink(os.path.join(d, name), dst)
        env = dict(os.environ, PKG_CONFIG_LIBDIR=pcdir, PKG_CONFIG_PATH="")
        build = os.path.join(self.tmp, "build")
        shutil.rmtree(build, ignore_errors=True)
        return subprocess.run(["cmake", "-S", ROOT, "-B", build] + list(args),
                              capture_output=True, text=True, env=env, timeout=120)

    def cache(self, key):
        with open(os.path.join(self.tmp, "build", "CMakeCache.txt")) as f:
            m = re.search(r"(?m)^%s:\w+=(.*)$" % re.escape(key), f.read())
        return m.group(1) if m else None

    def test_cmake_without_cmocka(self):
        p = self.configure()
        self.assertEqual(p.returncode, 0, p.stdout[-2000:] + p.stderr[-2000:])
        self.assertEqual(self.cache("LTIBADGES_TESTS"), "OFF")
        self.assertIn("cmocka not found", p.stdout)
        # asked for, the suite needs it: an error naming it, not a build without tests
        p = self.configure("-DLTIBADGES_TESTS=ON")
        self.assertNotEqual(p.returncode, 0, p.stdout[-2000:])
        self.assertIn("cmocka", p.stderr)


class ReadmeBuild(unittest.TestCase):

    def test_readme_lists_the_build_packages(self):
        """The README's by-hand build installs what scripts/deps.sh build does."""
        with open(os.path.join(ROOT, "scripts", "deps.sh")) as f:
            m = re.search(r'pkgs_build="([^"]*)"', f.read())
        want = set(m.group(1).split())
        with open(os.path.join(ROOT, "README.md")) as f:
            m = re.search(r"sudo apt-get install ((?:[^\n]*\\\n)*[^\n]*)", f.read())
        self.assertIsNotNone(m, "README.md has no apt-get install line")
        got = set(m.group(1).replace("\\\n", " ").split())
        self.assertEqual(got, want)


class NoDeveloperPaths(unittest.TestCase):

    # a home or work directory of someone's machine, as a path
    PATH_RE = re.compile(rb"(?<![\w.])/(?:home|Users|work|root)/[\w.-]+")

    def test_no_developer_paths(self):
        found = []
        for d, dirs, files in os.walk(ROOT):
            rel = os.path.relpath(d, ROOT)
            top = rel.split(os.sep)[0]
            # builds, npm's packages, git's own files and fuzz inputs are not the tree's text
            if top.startswith(("build", ".git")) or "node_modules" in rel.split(os.sep) or \
                    rel.startswith(os.path.join("tests", "fuzz", "corpus")):
                dirs[:] = []
                continue
            for name in files:
                if rel == "." and name == ".git":
                    continue  # a worktree's pointer to its repository
                path = os.path.join(d, name)
                with open(path, "rb") as f:
                    data = f.read()
                if b"\0" in data:
                    continue
                for m in self.PATH_RE.finditer(data):
                    line = data.count(b"\n", 0, m.start()) + 1
                    found.append("%s:%d: %s" % (os.path.relpath(path, ROOT), line,
                                                m.group(0).decode("utf-8", "replace")))
        self.assertEqual(found, [], "paths of a developer's machine in the tree")


if __name__ == "__main__":
    unittest.main()
