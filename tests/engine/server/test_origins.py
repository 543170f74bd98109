"""Host names (DNS rebinding) and Origins (cross-site pages) the server accepts."""

import socket

from engine.server.origins import OriginPolicy, split_host


def test_host_headers_parse() -> None:
    assert split_host("example.com:8080") == ("example.com", 8080)
    assert split_host("[::1]:443") == ("::1", 443)
    assert split_host("LOCALHOST") == ("localhost", None)
    for bad in ("", "a b", "user@host", "host/path", "host:99999", "host:x"):
        assert split_host(bad) is None, bad


def test_ip_literals_localhost_and_served_names_pass_rebound_names_do_not() -> None:
    policy = OriginPolicy(bind_host="127.0.0.1", server_names=("avatar.lan",))
    for good in ("127.0.0.1:8080", "[::1]:8080", "192.168.1.5", "localhost:8080", "app.localhost", "AVATAR.LAN:1"):
        assert policy.host_error(good) is None, good
    for bad in ("attacker.example", "attacker.example:8080", None, "", "a b"):
        problem = policy.host_error(bad)
        assert problem is not None, bad
    assert "--server-name attacker.example" in (policy.host_error("attacker.example") or "")
    assert OriginPolicy(bind_host="127.0.0.1", server_names=("*",)).host_error("anything.example") is None


def test_a_wildcard_bind_serves_this_machines_name() -> None:
    name = socket.gethostname().lower()
    assert OriginPolicy(bind_host="0.0.0.0").host_error(f"{name}:8080") is None
    assert OriginPolicy(bind_host="127.0.0.1").host_error(f"{name}.invalid") is not None


def test_only_the_servers_own_pages_and_allowed_origins_pass() -> None:
    policy = OriginPolicy(bind_host="0.0.0.0", allowed_origins=("https://app.example/",))
    assert policy.origin_error(None, "10.0.0.2:8080") is None  # not a browser
    assert policy.origin_error("http://10.0.0.2:8080", "10.0.0.2:8080") is None  # same origin
    assert policy.origin_error("https://APP.example", "10.0.0.2:8080") is None  # allowed
    for bad in ("http://attacker.example", "http://10.0.0.2:9999", "null", "garbage"):
        problem = policy.origin_error(bad, "10.0.0.2:8080")
        assert problem is not None and "--allow-origin" in problem, bad
    assert OriginPolicy(bind_host="0.0.0.0", allowed_origins=("*",)).origin_error("http://x.example", "h") is None
