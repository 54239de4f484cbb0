"""The rules behind tests/security/test_data.py and test_authority*.py, unit by unit:
strict parsing per payload type (member-record v1/v2), the intake rules of
gateway.core.intake, the personal-data detectors, and the worked examples of
docs/PROTOCOL.md §3 recomputed from the code."""

from __future__ import annotations

import os
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.disclosure import Group
from gateway.core.identifiers import (
    HMAC_MAX_ID_CHARS,
    HMAC_MAX_REPEAT,
    find_mobile_numbers,
    find_resident_ids,
    implausible_hmac,
)
from gateway.core.intake import (
    FORBIDDEN_CATEGORIES,
    IntakeRules,
    check_effective_time,
    check_issued_at,
    check_text,
)
from gateway.core.possession import KEY_POSSESSION_TYPE, possession_message, prove_possession
from gateway.core.statements import (
    ALLIANCE_POLICY_V1,
    ERASURE_V1,
    GOVERNMENT_MEASURE_V1,
    GOVERNMENT_MEASURE_V2,
    LISTING_V1,
    LISTING_V2,
    MEMBER_RECORD_V1,
    MEMBER_RECORD_V2,
    MONTHLY_REPORT_V1,
    PAYLOAD_TYPES,
    SANCTION_CONFIRMATION_V1,
    SANCTION_CONFIRMATION_V2,
    STATUS_CHANGE_V1,
    STATUS_CHANGE_V2,
    AuthorityScope,
    HolidayCalendar,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    ReportSubmission,
    Role,
)
from gateway.errors import RecordError
from gateway.pb.alliance.v1 import statements_pb2 as pb

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
_BLOCK = re.compile(r"^```(?:text|hex) example=([\w-]+)\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
# RFC 8032 §7.1 TEST 1 (a public test key), the member key of the worked example.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
MALL = "spiffe://zj.alliance.example/platform/example-mall"
HZ = "spiffe://zj.alliance.example/gateway/hz"
T = datetime(2024, 11, 30, 8, tzinfo=UTC)


def _examples() -> dict[str, str]:
    return dict(_BLOCK.findall(DOC.read_text(encoding="utf-8")))


def _record(key: SigningKey, member: str = MALL, **kw: object) -> MemberRecord:
    role = Role[member.split("/")[3].upper()]
    values: dict[str, object] = {
        "issuer": HZ,
        "member_id": member,
        "role": role,
        "region_code": "330106",
        "keys": (MemberKey(key.public_key().raw, T, possession=prove_possession(key, member)),),
        "status": MemberStatus.ACTIVE,
        "issued_at": T,
        "display_name": "Example Mall",
    }
    values.update(kw)
    return MemberRecord(**values)  # type: ignore[arg-type]


# --- worked examples ---------------------------------------------------------------------


def test_the_documented_proof_of_possession_is_recomputed() -> None:
    ex = _examples()
    key = SigningKey.from_raw(SEED)
    assert possession_message(MALL) == ex["possession-pae"].encode()
    assert possession_message(MALL).hex() == ex["possession-pae-hex"]
    assert possession_message(MALL) == dsse.pae(KEY_POSSESSION_TYPE, MALL.encode())
    assert prove_possession(key, MALL).hex() == ex["possession-proof"]


def test_the_documented_v2_member_record_is_recomputed_and_refused_as_v1() -> None:
    ex = _examples()
    payload = bytes.fromhex("".join(ex["member-record-v2"].split()))
    record = _record(SigningKey.from_raw(SEED))
    assert codec.encode_statement(record) == (MEMBER_RECORD_V2, payload)
    assert codec.decode_statement(MEMBER_RECORD_V2, payload) == record
    assert f"The payload ({len(payload)} bytes" in DOC.read_text(encoding="utf-8")
    with pytest.raises(RecordError, match=r"^member_record\.keys: unknown field 4 "):
        codec.decode_statement(MEMBER_RECORD_V1, payload)


def test_the_documented_hmac_refusal_probability() -> None:
    """PROTOCOL.md §3 states the bound for a uniformly random 32-byte value."""
    runs = (32 - HMAC_MAX_REPEAT + 1) * 256.0 ** -(HMAC_MAX_REPEAT - 1)
    printable = (95 / 256) ** 32
    digits = (32 - HMAC_MAX_ID_CHARS + 1) * (12 / 256) ** HMAC_MAX_ID_CHARS
    assert runs + printable + digits < 2e-14
    text = DOC.read_text(encoding="utf-8")
    minus = "\u2212"  # the document writes exponents with a minus sign
    assert f"25 · 256^{minus}7 + (95/256)^32 + 21 · (12/256)^12" in text
    assert f"< 2·10^{minus}14" in text
    assert implausible_hmac(b"11010519491231002X" + bytes(14)) is not None


def test_the_documented_effective_time_example() -> None:
    """PROTOCOL.md §3, intake rules: the example times, checked against the rule."""
    text = DOC.read_text(encoding="utf-8")
    assert "at `now` = 2026-12-06T12:00:00Z with the defaults" in text
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    rules = IntakeRules()

    def check(at: str) -> None:
        assert f"{at}Z" in text
        when = datetime.fromisoformat(at + "+00:00")
        check_effective_time(when, "t", now=now, rules=rules, historical=False)

    for ok in ("2026-11-06T12:00:00", "2026-12-06T12:05:00"):
        check(ok)
    for bad in ("2026-11-06T11:59:59", "2026-12-06T12:05:01"):
        with pytest.raises(RecordError, match=r"^t: "):
            check(bad)


# --- strict parsing per payload type -----------------------------------------------------


def test_a_v1_member_record_carrying_a_v2_field_is_refused_even_empty() -> None:
    key = SigningKey.generate()
    v1 = codec.statement_to_pb(_record(key, keys=(MemberKey(key.public_key().raw, T),)))
    assert isinstance(v1, pb.MemberRecord)
    plain = codec.decode_statement(MEMBER_RECORD_V1, v1.SerializeToString())
    assert isinstance(plain, MemberRecord) and plain.keys
    proof = prove_possession(key, MALL)
    for field, value in (("possession", b""), ("possession", proof), ("scope", 0), ("scope", 1)):
        msg = pb.MemberRecord()
        msg.CopyFrom(v1)
        setattr(msg.keys[0] if field == "possession" else msg, field, value)
        assert msg.SerializeToString() != v1.SerializeToString()  # present on the wire
        with pytest.raises(RecordError, match="unknown field"):
            codec.decode_statement(MEMBER_RECORD_V1, msg.SerializeToString())


def test_v2_requires_every_proof_and_an_authoritys_scope() -> None:
    key = SigningKey.generate()
    bare = _record(key, keys=(MemberKey(key.public_key().raw, T),))
    with pytest.raises(RecordError, match=r"keys\[0\]\.possession: required"):
        codec.encode_statement(bare)
    msg = codec.statement_to_pb(bare)
    with pytest.raises(RecordError, match=r"keys\[0\]\.possession: required"):
        codec.decode_statement(MEMBER_RECORD_V2, msg.SerializeToString())
    amr = "spiffe://zj.alliance.example/authority/zj-amr"
    with pytest.raises(RecordError, match=r"^member_record\.scope: required"):
        codec.encode_statement(_record(key, member=amr))
    national = _record(key, member=amr, scope=AuthorityScope.NATIONAL)
    payload_type, payload = codec.encode_statement(national)
    assert codec.decode_statement(payload_type, payload) == national
    with pytest.raises(RecordError, match=r"^member_record\.scope: only an authority"):
        _record(key, scope=AuthorityScope.UNIT)
    with pytest.raises(RecordError, match=r"^a MemberRecord cannot be encoded"):
        codec.encode_statement(national, PAYLOAD_TYPES[MemberRecord].replace("v2", "v3"))
    with pytest.raises(RecordError, match="carries neither scope nor key possession"):
        codec.encode_statement(national, MEMBER_RECORD_V1)
    # A v1 authority record means UNIT.
    v1 = _record(key, member=amr, keys=(MemberKey(key.public_key().raw, T),))
    decoded = codec.decode_statement(*codec.encode_statement(v1, MEMBER_RECORD_V1))
    assert isinstance(decoded, MemberRecord) and decoded.authority_scope is AuthorityScope.UNIT


def _reachable(desc: Any) -> set[str]:
    seen = {desc.full_name}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.full_name not in seen:
            seen |= _reachable(field.message_type)
    return seen


# The fields of the redactable messages that travel as disclosures in their v2 forms,
# by group (docs/PROTOCOL.md 3.1): a disclosure's value is the message holding those
# fields only; a nested group also carries the field leading to its submessage.
_LISTING = "alliance.v1.Listing"
_SUBJECT = "alliance.v1.Subject"
_STORE_REF = "alliance.v1.StoreRef"
_STATUS_CHANGE = "alliance.v1.StatusChange"
_SANCTION = "alliance.v1.SanctionConfirmation"
_MEASURE = "alliance.v1.GovernmentMeasure"
_COMMITMENT = {"alliance.v1.Commitment": {1, 2}}
GROUP_FIELDS: dict[str, dict[Group, dict[str, set[int]]]] = {
    LISTING_V2: {
        Group.SUBJECT: {_LISTING: {2}, _SUBJECT: {1, 2, 4}},
        Group.TEXT: {_LISTING: {7, 10, 11}},
        Group.STORES: {_LISTING: {2}, _SUBJECT: {3}, _STORE_REF: {1, 2}},
    },
    STATUS_CHANGE_V2: {Group.TEXT: {_STATUS_CHANGE: {5, 6, 7}}},
    SANCTION_CONFIRMATION_V2: {Group.TEXT: {_SANCTION: {8}}, Group.STORES: {_SANCTION: {7}}},
    GOVERNMENT_MEASURE_V2: {Group.TEXT: {_MEASURE: {5, 8}}},
}


def test_every_payload_type_lists_its_fields_for_every_message_it_reaches() -> None:
    """The per-type table is complete: a message it forgot would refuse every field."""
    # Fields (and whole messages) of what a payload type reaches that it does not
    # carry: those only a v2 carries (member-record and monthly-report v2 add fields;
    # the redactable v2 forms add their commitments, field 16), and in the redactable
    # v2 forms the fields of their groups (Subject and StoreRef entirely).
    not_carried: dict[str, dict[str, set[int]]] = {
        MEMBER_RECORD_V1: {"alliance.v1.MemberRecord": {9}, "alliance.v1.MemberKey": {4}},
        MONTHLY_REPORT_V1: {"alliance.v1.MonthlyReport": {8}, "alliance.v1.ReportFile": {1, 2, 3}},
        LISTING_V1: {_LISTING: {16}, **_COMMITMENT},
        STATUS_CHANGE_V1: {_STATUS_CHANGE: {16}, **_COMMITMENT},
        SANCTION_CONFIRMATION_V1: {_SANCTION: {16}, **_COMMITMENT},
        GOVERNMENT_MEASURE_V1: {_MEASURE: {16}, **_COMMITMENT},
        LISTING_V2: {_LISTING: {2, 7, 10, 11}, _SUBJECT: {1, 2, 3, 4}, _STORE_REF: {1, 2}},
        STATUS_CHANGE_V2: {_STATUS_CHANGE: {5, 6, 7}},
        SANCTION_CONFIRMATION_V2: {_SANCTION: {7, 8}},
        GOVERNMENT_MEASURE_V2: {_MEASURE: {5, 8}},
    }
    assert set(not_carried) | {
        MEMBER_RECORD_V2,
        PAYLOAD_TYPES[MonthlyReport],
        ERASURE_V1,
        ALLIANCE_POLICY_V1,
        PAYLOAD_TYPES[HolidayCalendar],
        PAYLOAD_TYPES[ReportSubmission],
    } == set(codec.PAYLOAD_SCHEMAS)
    for payload_type, schema in codec.PAYLOAD_SCHEMAS.items():
        dropped_of = not_carried.get(payload_type, {})
        for name in _reachable(schema.message.DESCRIPTOR):
            defined = {f.number for f in _descriptor(schema.message.DESCRIPTOR, name).fields}
            expected = defined - dropped_of.get(name, set())
            if not expected:  # reached only through a field this type does not carry
                assert name not in schema.fields, (payload_type, name)
                continue
            assert name in schema.fields, (payload_type, name)
            assert schema.fields[name] == expected, (payload_type, name)
        # A redactable v2 form: what it does not carry travels in its groups (each
        # field in one group, but for the field leading to a shared submessage).
        groups = GROUP_FIELDS.get(payload_type, {})
        assert set(schema.groups) == set(groups), payload_type
        for group, fields in groups.items():
            carried = {n: set(f) for n, f in schema.groups[group].fields.items() if f}
            assert carried == fields, (payload_type, group)
        if groups:
            in_groups: dict[str, set[int]] = {}
            for fields in groups.values():
                for name, numbers in fields.items():
                    in_groups.setdefault(name, set()).update(numbers)
            assert in_groups == dropped_of, payload_type


def _descriptor(root: Any, name: str) -> Any:
    if root.full_name == name:
        return root
    for field in root.fields:
        if field.message_type is not None:
            try:
                return _descriptor(field.message_type, name)
            except LookupError:
                continue
    raise LookupError(name)


# --- intake rules --------------------------------------------------------------------------


def test_the_bounds_of_effective_and_version_times() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    rules = IntakeRules(backdating_window=timedelta(days=7), clock_skew=timedelta(seconds=30))
    check_effective_time(now - timedelta(days=7), "t", now=now, rules=rules, historical=False)
    with pytest.raises(RecordError, match=r"^t: .* before "):
        check_effective_time(now - timedelta(days=8), "t", now=now, rules=rules, historical=False)
    # A historical import (a field of the signed statement) has no lower bound ...
    check_effective_time(
        datetime(1999, 1, 1, tzinfo=UTC), "t", now=now, rules=rules, historical=True
    )
    # ... but never an upper one beyond the skew.
    with pytest.raises(RecordError, match=r"^t: .* is in the future"):
        check_effective_time(
            now + timedelta(seconds=31), "t", now=now, rules=rules, historical=True
        )
    check_issued_at(now + timedelta(seconds=30), "member_record.issued_at", now=now, rules=rules)
    with pytest.raises(RecordError, match=r"^member_record\.issued_at: "):
        check_issued_at(now + timedelta(days=1), "member_record.issued_at", now=now, rules=rules)
    with pytest.raises(ValueError, match="negative"):
        IntakeRules(backdating_window=timedelta(days=-1))


@pytest.mark.parametrize(
    "char",
    [
        # Cf: bidi controls, zero-width characters, word joiner, BOM, soft hyphen
        "\u202e",
        "\u2066",
        "\u200b",
        "\u200d",
        "\u2060",
        "\ufeff",
        "\u00ad",
        # Cc: C1 and C0 controls
        "\u0085",
        "\u009b",
        "\x1b",
        "\r",
        # Zl, Zp
        "\u2028",
        "\u2029",
    ],
)
def test_forbidden_characters_are_refused_in_every_text_field(char: str) -> None:
    assert unicodedata.category(char) in FORBIDDEN_CATEGORIES
    for multiline in (False, True):
        with pytest.raises(RecordError, match=rf"^f: character 2 is U\+{ord(char):04X} "):
            check_text(f"a{char}b", "f", multiline=multiline, descriptive=True)


def test_free_text_keeps_line_feed_and_tab_and_any_other_character() -> None:
    check_text("one\ntwo\tthree 中文 ✓ 😀 ÀÉ", "f", multiline=True, descriptive=True)
    for char in "\n\t":
        with pytest.raises(RecordError, match="control character"):
            check_text(f"a{char}b", "f", multiline=False, descriptive=True)


@pytest.mark.parametrize(
    ("text", "ids", "mobiles"),
    [
        (
            "resident ID 11010519491231002X, phone 13800138000",
            ["11010519491231002X"],
            ["13800138000"],
        ),
        ("身份证11010519491231002x号", ["11010519491231002X"], []),
        ("seller 91330100716105852F", [], []),  # its 13... digits touch letters and digits
        ("11010519491231002Y", [], []),  # wrong check character
        ("110105194913310021", [], []),  # month 13
        ("ID 11010519491231002X7", [], []),  # one digit too many: not an ID
        ("手机13800138000", [], ["13800138000"]),
        ("tel 138 0013 8000 or 139-1234-5678", [], ["13800138000", "13912345678"]),
        ("138 0013-8000", [], []),  # mixed separators
        ("+8613800138000, 0086 139 1234 5678", [], ["13800138000", "13912345678"]),
        ("12800138000 and 1380013800 and 138001380001", [], []),
        ("\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10", [], ["13800138000"]),
    ],
)
def test_personal_data_detectors(text: str, ids: list[str], mobiles: list[str]) -> None:
    assert list(find_resident_ids(text)) == ids
    assert list(find_mobile_numbers(text)) == mobiles


def test_references_may_hold_phone_like_numbers_but_not_ids() -> None:
    check_text("(2026)浙0106执13800138000号", "decision_ref", multiline=False, descriptive=False)
    with pytest.raises(RecordError, match="mobile"):
        check_text("(2026)浙0106执13800138000号", "summary", multiline=True, descriptive=True)
    with pytest.raises(RecordError, match="resident identity number"):
        check_text("ref 11010519491231002X", "decision_ref", multiline=False, descriptive=False)


def test_random_hmac_output_is_never_called_implausible() -> None:
    assert not any(implausible_hmac(os.urandom(32)) for _ in range(20_000))
    assert implausible_hmac(b"11010519491231002X".ljust(32, b"0")) is not None
    assert implausible_hmac(b"a" * 32) is not None
    assert implausible_hmac(b"x" * 24 + bytes(range(8))) is not None  # a run of 24
