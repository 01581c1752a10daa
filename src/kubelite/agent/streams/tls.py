"""The agent's serving certificate (the kubelet's self-signed ``kubelet.crt`` equivalent).

A self-signed certificate is made once in ``<agent data dir>/pki`` and kept.  The agent
publishes it on its Node (annotation :data:`CERT_ANNOTATION`); the API server trusts exactly
that certificate for the node (a pin: it is the only CA of the connection's SSL context) and
checks it during the TLS handshake, before it sends its credential.  Only callers who may write
the Node object can change the pin, and those are already cluster administrators here.

``cryptography`` (~8 MB resident once imported) is needed only to make the certificate: a
standalone agent makes it in a short-lived child process (``python -m kubelite.agent.streams.tls``)
so the long-running agent never loads it; inside ``kubelite up``, where the API server has it
loaded already, it is made in-process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

CERT_ANNOTATION = "kubelite.io/agent-serving-cert"
VALID_DAYS = 825


@dataclass(frozen=True)
class ServingCert:
    cert_path: Path
    key_path: Path

    @property
    def pem(self) -> str:
        return self.cert_path.read_text()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _sans(hosts: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    out: list[x509.GeneralName] = []
    for h in dict.fromkeys(hosts):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _new_cert(node_name: str, hosts: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@kubelite-agent")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _paths(data_dir: Path) -> ServingCert:
    return ServingCert(data_dir / "pki" / "agent.crt", data_dir / "pki" / "agent.key")


def _make_cert(data_dir: Path, node_name: str, hosts: list[str]) -> None:
    sc = _paths(data_dir)
    cert, key = _new_cert(node_name, ["localhost", "127.0.0.1", node_name, *hosts])
    _write(sc.key_path, key)
    _write(sc.cert_path, cert)


def ensure_serving_cert(data_dir: Path, node_name: str, hosts: list[str]) -> ServingCert:
    """Create ``pki/agent.crt`` and ``pki/agent.key`` under ``data_dir`` unless they exist (in a
    child process unless ``cryptography`` is loaded already, see the module docstring)."""
    sc = _paths(data_dir)
    if sc.cert_path.exists() and sc.key_path.exists():
        return sc
    if "cryptography.x509" in sys.modules:
        _make_cert(data_dir, node_name, hosts)
        return sc
    argv = [sys.executable, "-m", __name__, str(data_dir), node_name, *hosts]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not sc.cert_path.exists():
        raise RuntimeError(f"cannot create the agent's serving certificate: {done.stderr.strip()}")
    return sc


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    """A client context that trusts only ``cert_pem`` (the node's published certificate).

    The host name is not checked: the pin already names the one certificate accepted."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cert_pem)
    return ctx


if __name__ == "__main__":  # ensure_serving_cert's child: python -m ... <data dir> <node> [host...]
    _make_cert(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
