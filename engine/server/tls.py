"""TLS for the server: a certificate given (``--tls-cert/--tls-key``) or one made for the LAN (``--self-signed``).

Browsers give the microphone only to secure pages (https, or http://localhost),
so a page opened from another machine needs TLS. ``--self-signed`` makes a
certificate once, for this machine's names and addresses, keeps it in the
cache folder (``$AVATAR_CACHE_DIR/tls``) and reuses it while it still covers
them; visitors accept it once in the browser (its SHA-256 fingerprint, printed
at start, lets them check it is this one).
"""

import datetime
import fcntl
import ipaddress
import os
import socket
import ssl
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.backends.model_files import cache_dir

VALIDITY_DAYS = 365
RENEW_BEFORE_DAYS = 30
"""A remembered certificate that expires sooner than this is made again."""
CERT_NAME = "self-signed-cert.pem"
KEY_NAME = "self-signed-key.pem"
_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


@dataclass(frozen=True)
class CertificateFiles:
    cert_path: Path
    key_path: Path


def tls_folder() -> Path:
    return cache_dir() / "tls"


def server_ssl_context(files: CertificateFiles) -> ssl.SSLContext:
    """A server context (TLS 1.2+) for the PEM certificate chain and key; ValueError naming a bad file."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert_path, files.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use the TLS certificate {files.cert_path} with key {files.key_path}: {exc}") from exc
    return context


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses (every interface, loopback included) and ::1."""
    addresses = {"127.0.0.1", "::1"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on this interface
            addresses.add(socket.inet_ntoa(packed[20:24]))
    return sorted(addresses)


def certificate_names(bind_host: str, server_names: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a certificate for this server should cover."""
    dns = {"localhost", socket.gethostname().lower(), *(n.lower() for n in server_names if n != "*")}
    ips = set(local_addresses())
    try:
        ipaddress.ip_address(bind_host)
        if bind_host not in ("0.0.0.0", "::"):
            ips.add(bind_host)
    except ValueError:
        if bind_host:
            dns.add(bind_host.lower())
    return sorted(dns), sorted(ips)


def self_signed_certificate(
    dns_names: list[str], ip_addresses: list[str], *, folder: Path | None = None
) -> CertificateFiles:
    """The remembered certificate if it covers these names and addresses for long enough, else a new one."""
    folder = folder or tls_folder()
    files = CertificateFiles(folder / CERT_NAME, folder / KEY_NAME)
    if _still_good(files, dns_names, ip_addresses):
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"avatar-engine on {socket.gethostname()}")])
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(files.key_path, key_pem)
    _write_private(files.cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return files


def fingerprint_sha256(cert_path: Path) -> str:
    """The certificate's SHA-256 fingerprint as browsers show it (AA:BB:...)."""
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def _still_good(files: CertificateFiles, dns_names: list[str], ip_addresses: list[str]) -> bool:
    if not (files.cert_path.is_file() and files.key_path.is_file()):
        return False
    try:
        certificate = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
        alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered_dns = set(alt.get_values_for_type(x509.DNSName))
    covered_ips = {str(a) for a in alt.get_values_for_type(x509.IPAddress)}
    renew_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=RENEW_BEFORE_DAYS)
    covers = set(dns_names) <= covered_dns and set(ip_addresses) <= covered_ips
    return covers and certificate.not_valid_after_utc > renew_at


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by this user only (the key), replacing the file atomically."""
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    temporary.replace(path)
