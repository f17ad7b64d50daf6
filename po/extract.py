#!/usr/bin/python3
"""po/extract.py - the messages of ltibadges' pages, for translators.

    po/extract.py OUT.pot            writes the template of every message
    po/extract.py --check LANG.po    fails when LANG.po misses a message,
                                     has a fuzzy or untranslated one, or
                                     drops or adds a {placeholder}

Messages come from two places: C code marks them with _() and N_(), which
GNU xgettext finds; page templates (C string literals) hold {{@text}}
literals, which xgettext cannot see, so this script reads them from the C
string literals itself and merges both with msgcat. A {{@...}} literal must
sit inside one C string literal.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["web"]  # the only module whose strings people read on pages
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
TEXT = re.compile(r"\{\{@((?:[^{}]|\{[a-z_]+\})*)\}\}")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def c_unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = s[i + 1]
        if n == "x":
            j = i + 2
            while j < len(s) and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(s[i + 2:j], 16))
            i = j
        else:
            out += {"n": b"\n", "r": b"\r", "t": b"\t", '"': b'"', "\\": b"\\", "'": b"'"}[n]
            i += 2
    return out.decode("utf-8")


def c_files():
    for d in SOURCES:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if name.endswith(".c"):
                yield os.path.join(d, name)


def po_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def template_pot():
    seen = {}
    for rel in c_files():
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                for lit in LITERAL.findall(line):
                    text = c_unescape(lit)
                    if "{{@" in text and "}}" not in text[text.index("{{@"):]:
                        sys.exit("%s:%d: a {{@...}} literal is split across C strings"
                                 % (rel, lineno))
                    for msg in TEXT.findall(text):
                        seen.setdefault(msg, []).append("%s:%d" % (rel, lineno))
    out = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    for msg, where in seen.items():
        out.append("#. {name}: a value the page fills in; keep the braces and the name")
        out.append("#: " + " ".join(where))
        out.append("msgid " + po_quote(msg))
        out.append('msgstr ""')
        out.append("")
    return "\n".join(out) + "\n"


def extract(out):
    with tempfile.TemporaryDirectory() as tmp:
        cpot = os.path.join(tmp, "c.pot")
        tpot = os.path.join(tmp, "t.pot")
        subprocess.run(["xgettext", "--language=C", "--from-code=UTF-8", "--keyword=_",
                        "--keyword=N_", "--add-comments=TRANSLATORS", "--package-name=ltibadges",
                        "--msgid-bugs-address=-", "-o", cpot] + list(c_files()),
                       cwd=ROOT, check=True)
        with open(tpot, "w", encoding="utf-8") as f:
            f.write(template_pot())
        subprocess.run(["msgcat", "--use-first", "-o", out, cpot, tpot], check=True)


def entries(po):
    """msgid -> (msgstr, fuzzy) of a .po file, via msgcat's normalized output."""
    res = subprocess.run(["msgcat", "--no-wrap", po], check=True, capture_output=True,
                         text=True).stdout
    found = {}
    for block in res.split("\n\n"):
        fuzzy = "#, fuzzy" in block or re.search(r"^#,.*fuzzy", block, re.M)
        m = re.search(r'^msgid "(.*)"\nmsgstr "(.*)"$', block, re.M | re.S)
        if not m or block.lstrip().startswith("#~"):
            continue
        found[m.group(1)] = (m.group(2), bool(fuzzy))
    return found


def check(po):
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, "ltibadges.pot")
        extract(pot)
        subprocess.run(["msgfmt", "--check", "-o", os.devnull, po], check=True)
        want = entries(pot)
        have = entries(po)
    bad = []
    for msgid in want:
        if msgid == "":
            continue
        if msgid not in have:
            bad.append("missing: %s" % msgid)
            continue
        msgstr, fuzzy = have[msgid]
        if fuzzy or not msgstr:
            bad.append("untranslated: %s" % msgid)
        elif set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(msgstr)):
            bad.append("placeholders differ: %s" % msgid)
    for b in bad:
        print("%s: %s" % (po, b))
    print("%s: %d messages, %d problems" % (po, len(want) - 1, len(bad)))
    return 1 if bad else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) == 2:
        extract(sys.argv[1])
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
