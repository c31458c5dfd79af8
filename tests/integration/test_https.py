"""
HTTPS protocol versions and cipher suites (issue 10, item 7): with a certificate configured the
HTTP listener speaks TLS 1.2 and 1.3 only, with forward-secret key exchange and AEAD ciphers
(src/http/http_server.c, tls_priorities). Checked with `openssl s_client`, whose own security
level is lowered (@SECLEVEL=0) so that it offers what an old or careless client would and the
refusal is the server's.
"""
import subprocess

import pytest

from test_smtp_basics import tls_files  # noqa: F401  (fixture used by name)


@pytest.fixture
def https(make_lifeboat, tls_files):  # noqa: F811
    lb = make_lifeboat(tls_cert_file=tls_files[0], tls_key_file=tls_files[1])
    lb.start()
    return lb


def handshake(lb, version, cipher=None):
    """The cipher suite s_client agreed on with the daemon in protocol version (forced), or None
    when the handshake was refused."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{lb.http_port}", "-servername", "lifeboat.test",
            version, "-cipher", (cipher or "DEFAULT") + ":@SECLEVEL=0"]
    cp = subprocess.run(args, input=b"", capture_output=True, timeout=20)
    # "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" ("New, (NONE), Cipher is (NONE)" when refused)
    line = next((l for l in cp.stdout.decode("latin-1").splitlines() if l.startswith("New, ")), "")
    if cp.returncode != 0 or "Cipher is" not in line or "(NONE)" in line:
        return None
    return line.split("Cipher is", 1)[1].strip()


def test_only_tls12_and_tls13(https):
    assert handshake(https, "-tls1") is None
    assert handshake(https, "-tls1_1") is None
    assert handshake(https, "-tls1_2") is not None
    assert handshake(https, "-tls1_3").startswith("TLS_")  # a TLS 1.3 suite


def test_only_forward_secret_aead_suites(https):
    # RSA key exchange (no forward secrecy) and CBC suites are refused even when offered alone.
    for weak in ("AES128-GCM-SHA256", "AES256-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"):
        assert handshake(https, "-tls1_2", weak) is None, weak
    for good in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"):
        assert handshake(https, "-tls1_2", good) == good, good
    # Offered everything, the server picks a forward-secret AEAD suite.
    picked = handshake(https, "-tls1_2")
    assert picked.startswith("ECDHE-RSA-") and "GCM" in picked, picked
