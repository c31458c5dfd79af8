#!/usr/bin/python3
"""
sink.py — an aiosmtpd destination for the node e2e suite: the integration suite's
switchable Sink (tests/integration/lbtest.py) driven over stdin/stdout, one JSON object a
line, so that the browser tests use the same peer as the pytest ones.

Start: /usr/bin/python3 sink.py [--closed]   prints {"port": N} once it listens (or, with
--closed, once the port is chosen and closed again: a server that is down).
Commands (one reply line each, {"ok": true, ...} or {"ok": false, "error": ...}):
  {"cmd": "open"}                 accept connections (again)
  {"cmd": "close"}                refuse connections (lbtest's close_gracefully: no lost 250)
  {"cmd": "mode", "mode": M}      one of lbtest.SinkHandler.MODES (accept, rcpt4xx, ...)
  {"cmd": "messages"}             every message so far, parsed with Python's email package:
                                  mail_from, rcpt_tos, headers (name -> [values]), text,
                                  attachments [{filename, content_type, data_base64}], raw_base64
  {"cmd": "quit"}
"""
import base64
import email
import email.policy
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lbtest import Sink, SinkHandler  # noqa: E402


def describe(d):
    msg = email.message_from_bytes(d.data, policy=email.policy.default)
    headers = {}
    for k, v in msg.items():
        headers.setdefault(k.lower(), []).append(str(v))
    body = msg.get_body(preferencelist=("plain",))
    attachments = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True) or b""
        attachments.append({
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "data_base64": base64.b64encode(payload).decode(),
        })
    return {
        "mail_from": d.mail_from,
        "rcpt_tos": d.rcpt_tos,
        "headers": headers,
        "text": body.get_content() if body is not None else None,
        "attachments": attachments,
        "defects": [type(x).__name__ for x in msg.defects],
        "raw_base64": base64.b64encode(d.data).decode(),
    }


def main():
    sink = Sink("e2e")
    if "--closed" in sys.argv[1:]:
        sink.close()
    print(json.dumps({"port": sink.port}), flush=True)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "open":
                sink.open()
                out = {"ok": True}
            elif cmd == "close":
                sink.close_gracefully()
                out = {"ok": True}
            elif cmd == "mode":
                if req.get("mode") not in SinkHandler.MODES:
                    raise ValueError(f"unknown mode {req.get('mode')!r}")
                sink.set_mode(req["mode"])
                out = {"ok": True}
            elif cmd == "messages":
                out = {"ok": True, "messages": [describe(d) for d in sink.messages]}
            elif cmd == "quit":
                break
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as e:  # the test reads the reason
            out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)
    sink.close()


if __name__ == "__main__":
    main()
