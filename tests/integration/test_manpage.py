#!/usr/bin/python3
"""The man page, docs/ltibadges.1, against the command line and the README,
so that they cannot drift: every command `ltibadges --help` lists, every
form of it (`consumer add`, `badge show`, ...) that its own --help shows,
and every command of the README's command reference has an entry in the
man page's COMMANDS section naming the options of that form; every option
any --help mentions is in the man page; and every entry of the man page is
a form the program knows. The page is rendered with groff (as man does),
which must not warn."""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ltitest as lt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(lt.HERE))
MANPAGE = os.path.join(ROOT, "docs", "ltibadges.1")
README = os.path.join(ROOT, "README.md")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*[a-z]")
WORD = re.compile(r"^[a-z][a-z-]*(\|[a-z][a-z-]*)*$")


def form_of(text):
    """'ltibadges context enable|disable --consumer KEY ...' -> the forms it
    names, [('context', 'enable'), ('context', 'disable')], and its options."""
    tokens = text.split()
    assert tokens and tokens[0] == "ltibadges", text
    words = []
    for t in tokens[1:]:
        if not WORD.match(t):
            break
        words.append(t.split("|"))
    forms = [()]
    for alternatives in words:
        forms = [f + (a,) for f in forms for a in alternatives]
    return forms, set(OPTION.findall(text))


def help_forms(text):
    """The usage forms of a --help text: each begins 'usage: ltibadges' or
    '       ltibadges', and lines indented further continue it."""
    forms, open_ = [], False
    for line in text.splitlines():
        m = re.match(r"^(usage: |\s+)(ltibadges\b.*)$", line)
        if m and (m.group(1) == "usage: " or open_):
            forms.append(m.group(2))
            open_ = True
        elif open_ and line.startswith("        ") and line.strip():
            forms[-1] += " " + line.strip()
        else:
            open_ = False
    return [f for f in forms if f]


def readme_forms():
    """The commands of the README's command reference (its "## Commands"
    table), e.g. `ltibadges consumer disable KEY` / `enable KEY`."""
    with open(README) as f:
        text = f.read()
    m = re.search(r"^## Commands\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "README.md has a '## Commands' section"
    section = m.group(1)
    out = []
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        cell = re.split(r"(?<!\\)\|", row)[1].replace("\\|", "|")
        command = None
        for seg in re.findall(r"`([^`]+)`", cell):
            if not seg.startswith("ltibadges "):
                first = seg.split()[0]
                seg = "ltibadges " + (seg if first == command else "%s %s" % (command, seg))
            command = seg.split()[1]
            out.append(seg)
    return out, set(OPTION.findall(section.split("| command |")[0]))


def render():
    """The man page as man shows it, one line per entry heading (wide lines)."""
    warn = subprocess.run(["groff", "-man", "-ww", "-z", MANPAGE], capture_output=True,
                          text=True)
    text = subprocess.run(["groff", "-man", "-Tascii", "-P-c", "-P-b", "-P-u", "-rLL=2000n",
                           MANPAGE], capture_output=True, text=True, check=True).stdout
    return warn.stderr, text


def man_entries(text):
    """{form: text of its entry} of the COMMANDS section: the heading lines
    ('       ltibadges ...') of a group of headings share the body after them."""
    m = re.search(r"^COMMANDS\n(.*?)(?=^\S)", text, re.S | re.M)
    assert m, "the man page has a COMMANDS section"
    entries = {}
    group, body, in_body = [], [], False
    for line in m.group(1).splitlines() + ["       ltibadges"]:
        if re.match(r"^ {7}ltibadges\b", line):
            if in_body:
                for h in group:
                    for f in form_of(h)[0]:
                        entries.setdefault(f, []).append(h + "\n" + "\n".join(body))
                group, body, in_body = [], [], False
            group.append(line.strip())
        else:
            in_body = True
            body.append(line)
    return {f: "\n\n".join(v) for f, v in entries.items()}


class ManPage(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not shutil.which("groff"):
            raise AssertionError("groff is needed to render the man page (groff-base)")
        cls.warnings, cls.text = render()
        cls.entries = man_entries(cls.text)
        # the options every command takes, named by `ltibadges --help`: in the GLOBAL OPTIONS
        # section rather than in each entry
        p = lt.run_cli("--help")
        cls.global_options = set(OPTION.findall(p.stdout))

    def run_help(self, *args):
        p = lt.run_cli(*args, "--help") if args else lt.run_cli("--help")
        self.assertEqual(p.returncode, 0, p)
        return p.stdout

    def assertEntry(self, form_text, where):
        forms, options = form_of(form_text)
        options -= self.global_options
        for f in forms:
            entry = self.entries.get(f)
            self.assertIsNotNone(entry, "%s: 'ltibadges %s' has no entry in docs/ltibadges.1"
                                 % (where, " ".join(f)))
            missing = sorted(o for o in options if not re.search(
                r"(?<![\w-])%s(?![\w-])" % re.escape(o), entry))
            self.assertEqual(missing, [], "%s: the man page's entry for 'ltibadges %s' lacks "
                             "these options" % (where, " ".join(f)))

    def test_renders_without_warnings(self):
        self.assertEqual(self.warnings, "")
        self.assertIn("ltibadges - an LTI 1.1 tool provider", self.text)

    def test_version_is_the_projects(self):
        with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
            project = re.search(r"project\(ltibadges VERSION (\S+)", f.read()).group(1)
        with open(MANPAGE) as f:
            th = re.search(r'(?m)^\.TH LTIBADGES 1 "[^"]*" "ltibadges ([^"]*)"', f.read())
        self.assertIsNotNone(th, "docs/ltibadges.1 has a .TH line naming the version")
        self.assertEqual(th.group(1), project, "the man page's version is CMake's project VERSION")

    def test_every_command_of_help(self):
        top = self.run_help()
        m = re.search(r"^commands:\n(.*?)(?:\n\n|\Z)", top, re.S | re.M)
        self.assertIsNotNone(m, top)
        commands = re.findall(r"^  ([a-z][a-z-]*)\s", m.group(1), re.M)
        self.assertIn("serve", commands)
        known = set()
        for opt in OPTION.findall(top):
            self.assertRegex(self.text, r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                             "ltibadges --help names %s, the man page does not" % opt)
        for c in commands:
            with self.subTest(command=c):
                text = self.run_help(c)
                forms = help_forms(text)
                self.assertTrue(forms, "no usage in 'ltibadges %s --help': %r" % (c, text))
                for f in forms:
                    known.update(form_of(f)[0])
                for f in forms:
                    self.assertEntry(f, "'ltibadges %s --help'" % c)
                for opt in OPTION.findall(text):
                    self.assertRegex(self.text, r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                                     "'ltibadges %s --help' names %s, the man page does not"
                                     % (c, opt))
        # and nothing in the man page that the program does not know (a removed command)
        stale = sorted(" ".join(f) for f in self.entries if f not in known)
        self.assertEqual(stale, [], "entries of docs/ltibadges.1 that no --help shows")

    def test_every_command_of_readme(self):
        forms, options = readme_forms()
        self.assertGreater(len(forms), 20, forms)
        for f in forms:
            with self.subTest(form=f):
                self.assertEntry(f, "README.md")
        for opt in options:
            self.assertRegex(self.text, r"(?<![\w-])%s(?![\w-])" % re.escape(opt),
                             "README.md's Commands section names %s, the man page does not"
                             % opt)

    def test_parsers(self):
        # the extraction the checks above rely on
        self.assertEqual(form_of("ltibadges context enable|disable --consumer KEY --context ID"),
                         ([("context", "enable"), ("context", "disable")],
                          {"--consumer", "--context"}))
        self.assertEqual(form_of("ltibadges serve [--listen H:P] [--demo]"),
                         ([("serve",)], {"--listen", "--demo"}))
        self.assertEqual(help_forms("usage: ltibadges a b [--x X]\n"
                                    "                   [--y]\n"
                                    "       ltibadges a c\n\n"
                                    "  --z  text\n"
                                    "       ltibadges not a form\n"),
                         ["ltibadges a b [--x X] [--y]", "ltibadges a c"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
