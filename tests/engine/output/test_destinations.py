"""Destinations of the app outputs come from the operator; a session can only pick one by name."""

import pytest

from engine.output.destinations import Destination, Destinations, parse_destination


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("127.0.0.1", "vmc", Destination("default", "127.0.0.1", 39539)),
        ("localhost:39540", "vmc", Destination("default", "localhost", 39540)),
        ("stage=192.168.1.20", "livelink", Destination("stage", "192.168.1.20", 11111)),
        ("[::1]:8002", "vts", Destination("default", "::1", 8002)),
        ("pc-2=[::1]", "vts", Destination("pc-2", "::1", 8001)),
    ],
)
def test_entries_parse_with_each_receivers_usual_port(text: str, kind: str, expected: Destination) -> None:
    assert parse_destination(text, kind) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (":39539", "has no host"),
        ("127.0.0.1:port", "is not a number"),
        ("127.0.0.1:70000", "not in 1..65535"),
        ("a b=127.0.0.1", "letters, digits"),
    ],
)
def test_bad_entries_are_refused_clearly(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_destination(text, "vmc")


def test_without_configuration_only_loopback_at_the_usual_port_is_allowed() -> None:
    destinations = Destinations()
    assert destinations.choose("vmc") == Destination("default", "127.0.0.1", 39539)
    assert destinations.choose("livelink", "default").port == 11111
    with pytest.raises(ValueError, match=r"'203.0.113.5:39539' is not one this server allows; allowed: default"):
        destinations.choose("vmc", "203.0.113.5:39539")  # a client cannot name an address


def test_a_session_picks_among_the_operators_destinations_by_name() -> None:
    destinations = Destinations.from_entries({"vmc": ["127.0.0.1:39540", "stage=192.168.1.20:39539"]})
    assert destinations.choose("vmc") == Destination("default", "127.0.0.1", 39540)
    assert destinations.choose("vmc", "stage").host == "192.168.1.20"
    with pytest.raises(ValueError, match=r"allowed: default \(127.0.0.1:39540\), stage \(192.168.1.20:39539\)"):
        destinations.choose("vmc", "other")
    with pytest.raises(ValueError, match="distinct names"):
        Destinations.from_entries({"vmc": ["127.0.0.1", "127.0.0.2"]})
    with pytest.raises(ValueError, match="unknown output kind"):
        destinations.choose("osc")
