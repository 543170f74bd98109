"""The self-signed certificate: made once for this machine's names and addresses, remembered, usable by ssl."""

import ssl
from pathlib import Path

from cryptography import x509

from engine.server.tls import (
    CertificateFiles,
    certificate_names,
    fingerprint_sha256,
    local_addresses,
    self_signed_certificate,
    server_ssl_context,
)


def test_local_addresses_include_loopback() -> None:
    addresses = local_addresses()
    assert "127.0.0.1" in addresses and "::1" in addresses


def test_the_certificate_covers_the_names_and_is_remembered(tmp_path: Path) -> None:
    dns, ips = certificate_names("0.0.0.0", ("avatar.lan",))
    assert "localhost" in dns and "avatar.lan" in dns and "127.0.0.1" in ips
    files = self_signed_certificate(dns, ips, folder=tmp_path)
    assert files.key_path.stat().st_mode & 0o077 == 0  # the key is readable by its owner only
    certificate = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(dns) <= set(alt.get_values_for_type(x509.DNSName))
    assert set(ips) <= {str(a) for a in alt.get_values_for_type(x509.IPAddress)}
    fingerprint = fingerprint_sha256(files.cert_path)
    assert self_signed_certificate(dns, ips, folder=tmp_path) == files
    assert fingerprint_sha256(files.cert_path) == fingerprint  # reused, not made again
    self_signed_certificate([*dns, "new-name.lan"], ips, folder=tmp_path)
    assert fingerprint_sha256(files.cert_path) != fingerprint  # a name it does not cover: made again
    context = server_ssl_context(files)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_bad_certificate_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    try:
        server_ssl_context(CertificateFiles(tmp_path / "cert.pem", tmp_path / "key.pem"))
    except ValueError as exc:
        assert "cert.pem" in str(exc)
    else:
        raise AssertionError("a bad certificate was accepted")
