#!/usr/bin/env python3
"""corpora.py — seeds for the fuzz targets from the shared test corpora.

    corpora.py CORPORA_DIR OUT_DIR

Maps the public corpora of CORPORA_DIR (../shared/corpora: mail messages, XSS
vectors, SMTP scripts) to the targets and writes OUT_DIR/<target>/<corpus>/:
links to whole messages, files made of the vectors cut out of a collection
(one vector a file, the shape the target reads). Nothing is copied into the
project; the output lives in the fuzz build directory and is made afresh on
every run. Corpus folders that are not there are named on stdout: the targets
then start from tests/fuzz/seeds alone.
"""
import hashlib
import json
import os
import re
import sys

MESSAGES = ["mimekit", "james-mime4j", "stalwart-mail-parser", "spamassassin", "python-test_email"]
# Expected outputs, licences and notes that lie next to the messages.
NOT_MESSAGE = re.compile(r"(\.(json|xml|out|bin|js|mjs|md|cs)$)|(^(LICENSE|NOTICE|COPYING|SOURCE|README))")
MESSAGE_MAX = 256 * 1024  # larger ones only cost load time: the targets cut at -max_len


def put(out, name, data):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, hashlib.sha1(name.encode() + data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def messages(src):
    for root, _, files in os.walk(src):
        for f in sorted(files):
            p = os.path.join(root, f)
            if not NOT_MESSAGE.search(f) and 0 < os.path.getsize(p) <= MESSAGE_MAX:
                yield p


def link_messages(src, out):
    os.makedirs(out, exist_ok=True)
    n = 0
    for p in messages(src):
        os.symlink(os.path.abspath(p), os.path.join(out, hashlib.sha1(p.encode()).hexdigest()[:16]))
        n += 1
    return n


def data_streams(src, out):
    """Small messages as fuzz_smtp_data reads them: a mode byte (0: DATA, whole),
    CRLF lines, dot-stuffed, the final dot."""
    n = 0
    for p in messages(src):
        raw = open(p, "rb").read()
        if len(raw) > 3500:
            continue
        lines = raw.replace(b"\r\n", b"\n").split(b"\n")
        body = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
        put(out, p, b"\x00" + body + b".\r\n")
        n += 1
    return n


def smtp_scripts(src, out):
    """Each test case of OpenSMTPD's regress scripts: its writeln lines, CRLF-separated."""
    n = 0
    for root, _, files in os.walk(src):
        for f in files:
            if not f.startswith("test."):
                continue
            text = open(os.path.join(root, f), encoding="latin-1").read()
            for case in re.split(r"\n(?=test-case|proc )", text):
                lines = re.findall(r'writeln "((?:[^"\\]|\\.)*)"', case)
                if lines:
                    put(out, f, "".join(l.replace('\\"', '"') + "\r\n" for l in lines).encode("latin-1"))
                    n += 1
    return n


def html_vectors(name, src, out):
    """The XSS vectors, one a file, after the byte that picks remote images (odd: loaded)."""
    vectors = []
    if name == "dompurify":
        p = os.path.join(src, "expect.json")
        if os.path.exists(p):
            vectors = [t["payload"] for t in json.load(open(p, encoding="utf-8")) if isinstance(t.get("payload"), str)]
    elif name == "h5sc":
        p = os.path.join(src, "vectors.txt")
        if os.path.exists(p):
            text = open(p, encoding="utf-8", errors="replace").read()
            vectors = [v for v in re.split(r'<div id="\d+">', text) if v.strip()]
    elif name == "owasp-xss-evasion":
        for root, _, files in os.walk(src):
            for f in files:
                if f.endswith(".md"):
                    text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
                    vectors += re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                    vectors += [v for v in re.findall(r"`([^`\n]+)`", text) if "<" in v]
    for i, v in enumerate(vectors):
        put(out, name, bytes([i & 1]) + v.encode("utf-8", "replace"))
    return len(vectors)


# target -> [(corpus folder, how it becomes seeds)]
TARGETS = {
    "smtp_parse": [("opensmtpd-smtpscript", smtp_scripts)],
    "smtp_data": [(c, data_streams) for c in ("python-test_email", "mimekit", "spamassassin")],
    "mail_sanitize": [(c, lambda s, o, c=c: html_vectors(c, s, o)) for c in ("dompurify", "h5sc", "owasp-xss-evasion")],
    "mail_view": [(c, link_messages) for c in MESSAGES],
    "mail_archive_text": [(c, link_messages) for c in MESSAGES],
}


def main():
    corpora, out = sys.argv[1], sys.argv[2]
    if not os.path.isdir(corpora):
        print(f"fuzz seeds: {corpora} not found: every target starts from tests/fuzz/seeds alone")
        return
    missing = set()
    for target, sources in TARGETS.items():
        counts = []
        for corpus, make in sources:
            src = os.path.join(corpora, corpus)
            if not os.path.isdir(src):
                missing.add(corpus)
                continue
            counts.append(f"{corpus} {make(src, os.path.join(out, target, corpus))}")
        print(f"fuzz seeds: {target}: " + (", ".join(counts) if counts else "none from the corpora"))
    for corpus in sorted(missing):
        print(f"fuzz seeds: {os.path.join(corpora, corpus)} not found")


if __name__ == "__main__":
    main()
