"""
smtpload.py — a small SMTP client that times each transaction, and the messages it sends.

smtp-source reports only its total time; the latency scenario needs the time of every
transaction, so bench/run sends those with this client instead. It behaves like an MTA's
client: EHLO once, then per message MAIL, RCPT and DATA in one write when the server
offers PIPELINING (RFC 2920), the body, and the wait for the final reply. A message's
latency runs from writing MAIL to reading that final reply: what a sender waits for,
including the server's durable write before its 250.
"""
import base64
import random
import socket
import threading
import time

CRLF = b"\r\n"


class SMTPError(Exception):
    pass


class Client:
    """One SMTP session on 127.0.0.1:port."""

    def __init__(self, port, helo="bench.client.test", timeout=60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        code, text = self.reply()
        if code != 220:
            raise SMTPError(f"greeting: {text}")
        self.sock.sendall(b"EHLO " + helo.encode() + CRLF)
        code, text = self.reply()
        if code != 250:
            raise SMTPError(f"EHLO: {text}")
        self.pipelining = any(ln[4:].upper().startswith("PIPELINING") for ln in text.split("\n"))

    def _line(self):
        while True:
            i = self.buf.find(CRLF)
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line.decode("latin-1")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SMTPError("connection closed by the server")
            self.buf += chunk

    def reply(self):
        lines = []
        while True:
            line = self._line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        code = int(lines[0][:3]) if lines[0][:3].isdigit() else -1
        return code, "\n".join(lines)

    def send(self, sender, rcpt, body):
        """One transaction; body is CRLF text that needs no dot-stuffing. Returns the
        seconds from MAIL to the final reply; raises SMTPError on any refusal."""
        cmds = [f"MAIL FROM:<{sender}>".encode(), f"RCPT TO:<{rcpt}>".encode(), b"DATA"]
        expect = (250, 250, 354)
        t0 = time.perf_counter()
        if self.pipelining:
            self.sock.sendall(CRLF.join(cmds) + CRLF)
            replies = [self.reply() for _ in cmds]
        else:
            replies = []
            for c in cmds:
                self.sock.sendall(c + CRLF)
                replies.append(self.reply())
                if replies[-1][0] != expect[len(replies) - 1]:
                    break
        for (code, text), want in zip(replies, expect):
            if code != want:
                raise SMTPError(f"expected {want}, got: {text}")
        self.sock.sendall(body + b".\r\n")
        code, text = self.reply()
        elapsed = time.perf_counter() - t0
        if code != 250:
            raise SMTPError(f"end of data: {text}")
        return elapsed

    def quit(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, SMTPError):
            pass
        self.sock.close()


def run_sessions(port, sender, rcpt, bodies, sessions):
    """Sends bodies over `sessions` parallel sessions (threads, one connection each).
    Returns (latencies in seconds, errors as strings)."""
    lock = threading.Lock()
    pending = list(reversed(bodies))
    latencies, errors = [], []

    def worker():
        try:
            c = Client(port)
        except (OSError, SMTPError) as e:
            with lock:
                errors.append(f"connect: {e}")
            return
        try:
            while True:
                with lock:
                    if not pending:
                        break
                    body = pending.pop()
                t = c.send(sender, rcpt, body)
                with lock:
                    latencies.append(t)
        except (OSError, SMTPError) as e:
            with lock:
                errors.append(str(e))
        finally:
            c.quit()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


# ------------------------------------------------------------------- messages


def _headers(seq, sender, rcpt, extra=b""):
    return (
        f"From: <{sender}>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: bench message {seq}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        f"Message-ID: <{seq}.{time.time_ns()}@bench.client.test>\r\n"
    ).encode() + extra


def filler_message(seq, size, sender, rcpt):
    """Like smtp-source -l size: the headers, then size bytes of 'X' lines (80
    columns). Distinct Message-IDs make every message a distinct blob."""
    lines, left = [], size
    while left > 0:
        n = min(78, left)
        lines.append(b"X" * n + CRLF)
        left -= n + 2
    return _headers(seq, sender, rcpt) + CRLF + b"".join(lines)


_WORDS = None


def _words():
    """2000 made-up words with English letter frequencies and word lengths: text
    made of them compresses about as well as prose does."""
    global _WORDS
    if _WORDS is None:
        letters = "etaoinshrdlcumwfgypbvkjxqz"
        weights = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0,
                   2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
        r = random.Random(1)
        _WORDS = ["".join(r.choices(letters, weights, k=r.choice((1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10))))
                  for _ in range(2000)]
    return _WORDS


def mime_message(seq, sender, rcpt, rng, text_bytes=3000, attach_bytes=20000):
    """A plausible business message: a text/plain part of prose-like words (compresses
    like text) and an attachment of random bytes in base64 (like a PDF or JPEG, which
    are compressed already). Every message differs."""
    words = _words()
    text, line, size = [], [], 0
    while size < text_bytes:
        w = rng.choice(words)
        if sum(len(x) + 1 for x in line) + len(w) > 72:
            text.append(" ".join(line))
            size += len(text[-1]) + 2
            line = []
        line.append(w)
    text.append(" ".join(line))
    blob = rng.randbytes(attach_bytes)
    b64 = base64.b64encode(blob)
    b64_lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    boundary = f"=_bench_{seq}_{rng.getrandbits(32):08x}"
    mime = (
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
    ).encode()
    body = (
        f"--{boundary}\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        + "\r\n".join(text) + "\r\n"
        f"--{boundary}\r\n"
        'Content-Type: application/octet-stream; name="report.bin"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="report.bin"\r\n\r\n'
    ).encode() + CRLF.join(b64_lines) + CRLF + f"--{boundary}--\r\n".encode()
    return _headers(seq, sender, rcpt, mime) + CRLF + body
