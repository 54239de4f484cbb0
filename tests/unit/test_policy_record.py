"""The AlliancePolicy record: its rules, its bytes, the policy file, and which one applies."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway import codec
from gateway.core.alliance_policy import (
    DEFAULT_DISPUTE_DECISION_WORKING_DAYS,
    PolicyBook,
    accepts_platform_reports,
    dispute_decision_working_days,
)
from gateway.core.statements import (
    ALLIANCE_POLICY_V1,
    AlliancePolicy,
    ConductType,
    Listing,
    ListKind,
    MeasureRequirement,
    SanctionMeasure,
    Subject,
)
from gateway.errors import ConfigError, RecordError
from gateway.ops.policy_file import describe_policy, load_policy_file, parse_policy
from gateway.pb.alliance.v1 import statements_pb2 as pb

ZJ = "spiffe://zj.alliance.test/gateway/gw"
GD = "spiffe://gd.alliance.test/gateway/gw"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def policy(**kw: object) -> AlliancePolicy:
    values: dict[str, object] = {"issuer": ZJ, "issued_at": T0}
    values.update(kw)
    return AlliancePolicy(**values)  # type: ignore[arg-type]


def test_a_full_policy_round_trips_through_its_bytes() -> None:
    p = policy(
        units_accepting_platform_reports=("44", "33"),
        dispute_decision_working_days=10,
        notice_working_days=5,
        sanction_grace_days=14,
        measure_requirements=(
            MeasureRequirement(
                ListKind.BLACKLIST, ConductType.COUNTERFEIT, (SanctionMeasure.CLOSE_STORE,)
            ),
            MeasureRequirement(None, None, (SanctionMeasure.PUBLIC_EXPOSURE,)),
        ),
    )
    assert p.units_accepting_platform_reports == ("33", "44")  # sorted
    payload_type, payload = codec.encode_statement(p)
    assert payload_type == ALLIANCE_POLICY_V1
    assert codec.decode_statement(payload_type, payload) == p
    assert p.trust_domain == "zj.alliance.test"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"issuer": "spiffe://zj.alliance.test/platform/shop"}, "must be a gateway member id"),
        ({"units_accepting_platform_reports": ("99",)}, "'99' is not a 2-digit reporting unit"),
        ({"units_accepting_platform_reports": ("330000",)}, "is not a 2-digit reporting unit"),
        ({"units_accepting_platform_reports": ("33", "33")}, "must not repeat a unit"),
        ({"dispute_decision_working_days": -1}, "dispute_decision_working_days: must be"),
        ({"dispute_decision_working_days": 251}, "dispute_decision_working_days: must be"),
        ({"notice_working_days": True}, "notice_working_days: must be"),
        ({"sanction_grace_days": 3651}, "sanction_grace_days: must be"),
        ({"issued_at": datetime(2026, 12, 1)}, "issued_at: must be timezone-aware"),
        (
            {
                "measure_requirements": (
                    MeasureRequirement(None, None, (SanctionMeasure.CLOSE_STORE,)),
                    MeasureRequirement(None, None, (SanctionMeasure.PUBLIC_EXPOSURE,)),
                )
            },
            "must not repeat a \\(list, conduct\\) pair",
        ),
    ],
)
def test_policy_rules(kw: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        policy(**kw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((None, None, ()), "satisfying: name at least one measure"),
        (
            (None, None, (SanctionMeasure.CLOSE_STORE, SanctionMeasure.CLOSE_STORE)),
            "must not repeat a measure",
        ),
        ((None, None, (77,)), "77 is not a SanctionMeasure"),
        (
            (ListKind.KEY_SCRUTINY, ConductType.COUNTERFEIT, (SanctionMeasure.CLOSE_STORE,)),
            "COUNTERFEIT belongs to another list than KEY_SCRUTINY",
        ),
    ],
)
def test_measure_requirement_rules(args: tuple[object, object, object], message: str) -> None:
    with pytest.raises(RecordError, match=message):
        MeasureRequirement(*args)  # type: ignore[arg-type]


def test_unknown_enum_values_and_fields_are_refused_on_the_wire() -> None:
    _, payload = codec.encode_statement(policy())
    msg = pb.AlliancePolicy.FromString(payload)
    msg.measure_requirements.add(satisfying=[77])
    with pytest.raises(RecordError, match="unknown SanctionMeasure value 77"):
        codec.decode_statement(ALLIANCE_POLICY_V1, msg.SerializeToString())
    # A field the payload type does not carry (appended raw: field 15, varint 1).
    with pytest.raises(RecordError, match="unknown fields"):
        codec.decode_statement(ALLIANCE_POLICY_V1, payload + b"\x78\x01")
    missing = pb.AlliancePolicy(issuer=ZJ)
    with pytest.raises(RecordError, match=r"alliance_policy\.issued_at: must be set"):
        codec.decode_statement(ALLIANCE_POLICY_V1, missing.SerializeToString())


def _listing(issuer: str) -> Listing:
    return Listing(
        issuer=issuer,
        subject=Subject(uscc="91330100716105852F"),
        list=ListKind.BLACKLIST,
        conduct=ConductType.FAKE_TRANSACTIONS,
        region_code="440300",
        decision_ref="ref",
        listed_at=T0,
    )


def test_the_newest_policy_of_the_issuing_alliance_applies_whatever_the_order() -> None:
    records = [
        ("a" * 64, policy(dispute_decision_working_days=5)),
        ("b" * 64, policy(dispute_decision_working_days=7, issued_at=T0 + timedelta(days=2))),
        ("c" * 64, policy(issuer=GD, dispute_decision_working_days=30)),
    ]
    zj_listing = _listing("spiffe://zj.alliance.test/platform/shop")
    answers = set()
    for order in itertools.permutations(records):
        book = PolicyBook()
        for record_id, p in order:
            book.apply(record_id, p)
            book.apply(record_id, p)  # a duplicate changes nothing
        newest = book.for_listing(zj_listing)
        before = book.for_listing(zj_listing, T0 + timedelta(days=1))
        assert newest is not None and before is not None
        answers.add((newest.dispute_decision_working_days, before.dispute_decision_working_days))
    assert answers == {(7, 5)}
    book = PolicyBook()
    assert book.for_listing(zj_listing) is None
    assert book.current("zj.alliance.test", T0 - timedelta(days=1)) is None


def test_defaults_and_units() -> None:
    assert dispute_decision_working_days(None) == DEFAULT_DISPUTE_DECISION_WORKING_DAYS == 15
    assert dispute_decision_working_days(policy()) == 15
    assert dispute_decision_working_days(policy(dispute_decision_working_days=3)) == 3
    assert accepts_platform_reports(None, "440300")
    assert accepts_platform_reports(policy(), "440300")
    only_zj = policy(units_accepting_platform_reports=("33",))
    assert accepts_platform_reports(only_zj, "330106")
    assert not accepts_platform_reports(only_zj, "440300")


def test_the_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'units_accepting_platform_reports = ["33"]\n'
        "dispute_decision_working_days = 10\n"
        "[[measure_requirements]]\n"
        'list = "blacklist"\n'
        'satisfying = ["CLOSE_STORE"]\n',
        encoding="utf-8",
    )
    p = load_policy_file(path)
    assert p.units_accepting_platform_reports == ("33",)
    assert p.dispute_decision_working_days == 10
    assert p.measure_requirements == (
        MeasureRequirement(ListKind.BLACKLIST, None, (SanctionMeasure.CLOSE_STORE,)),
    )
    assert "dispute_decision_working_days = 15 (default)" in describe_policy(None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dispute_days": 3}, "unknown key\\(s\\) dispute_days"),
        ({"units_accepting_platform_reports": "33"}, "must be a list of strings"),
        ({"units_accepting_platform_reports": ["330000"]}, "'330000' is not a 2-digit"),
        ({"dispute_decision_working_days": "ten"}, "must be an integer"),
        ({"dispute_decision_working_days": 900}, "must be an integer 0 to 250"),
        ({"measure_requirements": [{"satisfying": []}]}, "name at least one measure"),
        ({"measure_requirements": [{"satisfying": ["NAP"]}]}, "'NAP' is not one of"),
        ({"measure_requirements": [{"list": "X", "satisfying": ["CLOSE_STORE"]}]}, "'X' is not"),
        ({"measure_requirements": [{"satisfying": ["CLOSE_STORE"], "x": 1}]}, "unknown key"),
    ],
)
def test_policy_file_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(data)


def test_an_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        load_policy_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("units = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy_file(bad)
