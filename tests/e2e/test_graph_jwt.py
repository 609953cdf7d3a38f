"""PyJWT verifies the Graph client assertion that clawback signs.

Builds tests/e2e/graph_assertion_probe.c against the static library of the
build directory (CLAWBACK_BUILD_DIR, or the directory of CLAWBACK_BIN), makes
a key and certificate with the openssl command, and checks signature,
header thumbprint and claims for PS256 and RS256, from PEM and PKCS#12.
"""
import base64
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

SOURCE = Path(os.environ.get("CLAWBACK_SOURCE_DIR", Path(__file__).resolve().parents[2]))
TENANT = "contoso.example"
CLIENT = "11111111-2222-3333-4444-555555555555"
AUD = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"


def build_dir():
    if os.environ.get("CLAWBACK_BUILD_DIR"):
        return Path(os.environ["CLAWBACK_BUILD_DIR"])
    if os.environ.get("CLAWBACK_BIN"):
        return Path(os.environ["CLAWBACK_BIN"]).parent
    pytest.skip("set CLAWBACK_BUILD_DIR or CLAWBACK_BIN")


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "graph_assertion_probe"
    library = build_dir() / "libclawback_core.a"
    if not library.exists():
        pytest.skip(f"{library} not built")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libcurl", "jansson", "sqlite3", "libpcre2-8",
         "inih", "libssl", "libcrypto", "libsystemd", "libxml-2.0"],
        check=True, capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-std=gnu11", "-I", str(SOURCE / "src"),
                    str(SOURCE / "tests/e2e/graph_assertion_probe.c"), str(library),
                    "-o", str(out), *flags, "-lwslay", "-lpthread", "-lm"], check=True)
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=clawback test", "-keyout", d / "app.key", "-out", d / "app.crt"],
                   check=True, capture_output=True)
    (d / "pw").write_text("secret-pw\n")
    subprocess.run(["openssl", "pkcs12", "-export", "-inkey", d / "app.key", "-in", d / "app.crt",
                    "-passout", "pass:secret-pw", "-out", d / "app.pfx"], check=True)
    os.chmod(d / "app.key", 0o600)
    os.chmod(d / "pw", 0o600)
    os.chmod(d / "app.pfx", 0o600)
    return d


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg,source", [("PS256", "pem"), ("RS256", "pem"), ("PS256", "pkcs12")])
def test_assertion_verified_by_pyjwt(probe, keys, alg, source):
    if source == "pem":
        args = [keys / "app.crt", keys / "app.key", alg, TENANT, CLIENT]
    else:
        args = [keys / "app.pfx", "-", alg, TENANT, CLIENT, keys / "pw"]
    token = subprocess.run([probe, *args], check=True, capture_output=True, text=True).stdout.strip()

    cert = x509.load_pem_x509_certificate((keys / "app.crt").read_bytes())
    claims = jwt.decode(token, cert.public_key(), algorithms=[alg], audience=AUD, issuer=CLIENT)
    header = jwt.get_unverified_header(token)
    der = cert.public_bytes(Encoding.DER)

    assert header["typ"] == "JWT"
    if alg == "PS256":
        assert header["x5t#S256"] == b64url(hashlib.sha256(der).digest())
    else:
        assert header["x5t"] == b64url(hashlib.sha1(der).digest())
    assert claims["sub"] == CLIENT
    assert len(claims["jti"]) == 36
    assert claims["exp"] - claims["nbf"] == 600
    assert abs(claims["iat"] - time.time()) < 300


def test_wrong_password_not_echoed(probe, keys, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("hunter2-wrong\n")
    os.chmod(wrong, 0o600)
    result = subprocess.run([probe, keys / "app.pfx", "-", "PS256", TENANT, CLIENT, wrong],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "hunter2" not in result.stderr
    assert "pkcs12_password_file" in result.stderr
