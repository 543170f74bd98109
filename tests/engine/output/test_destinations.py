"""Destinations of the app outputs come from the operator; a session can only pick one by name."""

import re

import pytest

from engine.errors import UsageError
from engine.output.destinations import Destination, Destinations, parse_destination
from engine.output.errors import ForwardRefused


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("127.0.0.1", "vmc", Destination("default", "127.0.0.1", 39539)),
        ("localhost:39540", "vmc", Destination("default", "localhost", 39540)),
        ("stage=192.168.1.20", "livelink", Destination("stage", "192.168.1.20", 11111)),
        ("[::1]:8002", "vts", Destination("default", "::1", 8002)),
        ("pc-2=[::1]", "vts", Destination("pc-2", "::1", 8001)),
        ("studio=ws://127.0.0.1:8002", "vts", Destination("studio", "127.0.0.1", 8002)),
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
        ("x" * 65 + "=127.0.0.1", "up to 64"),
    ],
)
def test_bad_entries_are_refused_clearly(text: str, needle: str) -> None:
    with pytest.raises(UsageError, match=f"^--vmc {re.escape(text)}: .*{needle}"):
        parse_destination(text, "vmc")


def test_without_configuration_no_kind_is_allowed_and_the_refusal_names_the_flag() -> None:
    for kind, flag in (("vmc", "--vmc"), ("vts", "--vts"), ("livelink", "--livelink")):
        with pytest.raises(ForwardRefused, match=f"forwards nothing to {kind}: .* allow it with {flag} "):
            Destinations().choose(kind)
    assert Destinations().names() == {} and Destinations().describe() == "none"


def test_a_client_cannot_name_an_address() -> None:
    destinations = Destinations.from_entries({"vmc": ["127.0.0.1"]})
    with pytest.raises(ForwardRefused, match=r"'203.0.113.5:39539' is not one this server allows; allowed: default$"):
        destinations.choose("vmc", "203.0.113.5:39539")


def test_a_session_picks_among_the_operators_destinations_by_name() -> None:
    destinations = Destinations.from_entries({"vmc": ["127.0.0.1:39540", "stage=192.168.1.20:39539"]})
    assert destinations.choose("vmc") == Destination("default", "127.0.0.1", 39540)
    assert destinations.choose("vmc", "stage").host == "192.168.1.20"
    with pytest.raises(ForwardRefused, match=r"allowed: default, stage$"):  # names only: addresses stay private
        destinations.choose("vmc", "other")
    assert destinations.names() == {"vmc": ["default", "stage"]}
    assert destinations.describe() == "vmc default (127.0.0.1:39540), stage (192.168.1.20:39539)"
    with pytest.raises(UsageError, match="distinct names"):
        Destinations.from_entries({"vmc": ["127.0.0.1", "127.0.0.2"]})
    with pytest.raises(ForwardRefused, match="unknown output kind"):
        destinations.choose("osc")
