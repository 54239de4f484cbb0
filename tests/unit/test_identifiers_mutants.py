"""Identifier rejections found by mutation testing (docs/TESTING.md): the message names
the field at fault, so a member correcting a batch knows which column to fix."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from gateway.core.identifiers import (
    MemberId,
    Role,
    find_resident_ids,
    implausible_hmac,
    validate_region_code,
    validate_resident_id,
    validate_trust_domain,
    validate_uscc,
)
from gateway.errors import RecordError


def test_a_resident_id_that_is_not_text_is_refused_by_field() -> None:
    with pytest.raises(RecordError) as caught:
        validate_resident_id(110105194912310021)  # type: ignore[arg-type]
    assert str(caught.value) == "resident_id: must be a string"


def test_an_empty_trust_domain_is_refused_by_field() -> None:
    with pytest.raises(RecordError) as caught:
        validate_trust_domain("")
    assert str(caught.value) == "trust_domain: trust domain must not be empty"
    with pytest.raises(RecordError) as caught:
        validate_trust_domain("", field="peer.trust_domain")
    assert str(caught.value) == "peer.trust_domain: trust domain must not be empty"


# --- implausible_hmac: the bounds are the documented ones (docs/PROTOCOL.md) -----------

# 32 bytes with no run, no ID character and not all printable: what HMAC output looks like.
_HASHLIKE = bytes(range(0x80, 0xA0))


def _with(run: bytes, at: int) -> bytes:
    return _HASHLIKE[:at] + run + _HASHLIKE[at + len(run) :]


@pytest.mark.parametrize("at", [0, 5, 24])
def test_a_run_of_eight_equal_bytes_is_padding_and_seven_is_not(at: int) -> None:
    """A resident ID padded with zeros to 32 bytes passed off as its HMAC is refused; a
    real HMAC with seven equal bytes in a row (probability ~2^-43, but possible) is not."""
    assert implausible_hmac(_with(b"\x00" * 8, at)) == "it holds a run of 8 equal bytes (padding?)"
    assert implausible_hmac(_with(b"\x00" * 7, at)) is None


def test_the_longest_equal_run_is_reported() -> None:
    value = _with(b"\xff" * 9, 2)
    assert implausible_hmac(value) == "it holds a run of 9 equal bytes (padding?)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (bytes(range(0x20, 0x40)), "every byte is printable ASCII (text, not a hash)"),
        (bytes(range(0x5F, 0x7F)), "every byte is printable ASCII (text, not a hash)"),
        (bytes(range(0x1F, 0x3F)), None),  # a control byte: not text
        (bytes(range(0x60, 0x80)), None),  # DEL and above: not text
        (b"", None),  # empty is refused by length elsewhere, it is not "text"
    ],
)
def test_text_passed_off_as_a_hash_is_refused_at_the_printable_bounds(
    value: bytes, message: str | None
) -> None:
    assert implausible_hmac(value) == message


@pytest.mark.parametrize("at", [0, 7, 20])
def test_twelve_id_characters_in_a_row_are_a_resident_id_and_eleven_are_not(at: int) -> None:
    """A resident ID's digits (with X or x) copied into the HMAC field are found wherever
    they sit; eleven such bytes can occur in real HMAC output and are let through."""
    assert (
        implausible_hmac(_with(b"0123456789Xx", at))
        == "it holds 12 ASCII digits in a row (a resident ID number?)"
    )
    assert implausible_hmac(_with(b"0123456789X", at)) is None
    assert implausible_hmac(_with(b"01234Y6789Xx", at)) is None  # broken by a non-ID byte


def test_a_fake_resident_id_does_not_hide_a_real_one_after_it() -> None:
    """A candidate that fails its check (or date) is skipped, not the end of the scan:
    text that starts with a near-miss still has its real ID found and refused."""
    text = "ref 11010519491231002Y, then 110105194913310021, then 11010519491231002X"
    assert list(find_resident_ids(text)) == ["11010519491231002X"]


def test_a_valid_trust_domain_is_accepted_as_given() -> None:
    assert validate_trust_domain("zj.alliance") == "zj.alliance"
    assert validate_trust_domain("a" * 255, field="peer.trust_domain") == "a" * 255


def test_a_wrong_organization_check_is_refused_when_position_18_equals_the_right_one() -> None:
    """A USCC whose mod-31 check (position 18) holds but whose organization-code check
    (position 17) is wrong is refused, even when the character at position 18 happens
    to be the organization check the code lacks: a checker comparing the wrong position
    would let this mistyped code through. 913301007161050030: body 71610500 has
    organization check 0, position 17 holds 3, and the code's own check is 0."""
    with pytest.raises(RecordError) as caught:
        validate_uscc("913301007161050030")
    assert str(caught.value) == (
        "uscc: organization code check character (position 17) is 3, expected 0"
    )
    assert validate_uscc("91330100716105000N") == "91330100716105000N"


# --- member ids -------------------------------------------------------------------------
#
# MemberId.parse keeps the ids it parsed (functools.lru_cache). Under mutmut the workers
# are forked from the process that already ran the tests once, so an id that any test
# parsed comes from the cache and never reaches the mutated code: these tests parse ids
# that no run has seen before (a random name each time).


def _fresh(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex


@pytest.mark.parametrize("role", list(Role))
def test_a_member_id_never_seen_before_parses_to_its_parts(role: Role) -> None:
    name = _fresh()
    value = f"spiffe://zj.alliance/{role.name.lower()}/{name}"
    member = MemberId.parse(value)
    assert (member.trust_domain, member.role, member.name) == ("zj.alliance", role, name)
    assert str(member) == value


def test_names_and_trust_domains_at_their_limits_use_every_allowed_character() -> None:
    """The longest name (128) and trust domain (255), and every allowed character: a
    member whose certificate a peer accepts must be accepted here too."""
    allowed = "abcdefghijklmnopqrstuvwxyz0123456789.-_"
    name = (_fresh() + allowed).ljust(128, "n")
    domain = (_fresh() + allowed).ljust(255, "d")
    member = MemberId.parse(f"spiffe://{domain}/platform/{name}")
    assert (member.trust_domain, member.name) == (domain, name)
    with pytest.raises(RecordError) as caught:
        MemberId.parse(f"spiffe://{domain}/platform/{name}n")
    assert str(caught.value) == "member_id: name is longer than 128 characters"
    with pytest.raises(RecordError) as caught:
        MemberId.parse(f"spiffe://{domain}d/platform/{name}")
    assert str(caught.value) == "member_id: trust domain is longer than 255 characters"


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dot_segment_is_no_member_name(name: str) -> None:
    """A URI resolver would turn spiffe://zj/platform/.. into another path."""
    with pytest.raises(RecordError) as caught:
        MemberId("zj", Role.PLATFORM, name)
    assert str(caught.value) == "member_id: name must not be '.' or '..'"


def test_member_id_refusals_name_the_field() -> None:
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: MemberId.parse(5), "member_id: must be a string"),  # type: ignore[arg-type]
        (
            lambda: MemberId("ZJ", Role.PLATFORM, "a"),
            "member_id: trust domain 'ZJ' may contain only lower-case letters, digits, '.', "
            "'-' and '_'",
        ),
        (lambda: validate_region_code(330100), "region_code: must be a string"),  # type: ignore[arg-type]
    ]
    for call, message in cases:
        with pytest.raises(RecordError) as caught:
            call()
        assert str(caught.value) == message
