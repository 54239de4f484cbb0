"""Hardening, part 2 (issue 14), items 5-8: data that is valid protobuf but must not
enter an append-only, replicated log, refused where a member submits it (against a real
gateway), while replication goes on carrying what a peer accepted under its own rules.

5. Effective times outside [now - backdating window, now + clock skew].
6. Personal data in text: resident ID numbers, mobile numbers; a person_hmac that is
   plainly not HMAC output.
7. Invisible and line-breaking characters (Unicode Cc, Cf, Zl, Zp).
8. Cosignature timestamps: bounded by clock skew, never moving backwards.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from authz_support import code_of, eventually, federated_pair, has
from gwtest import (
    USCC,
    Alliance,
    Member,
    audit,
    confirmation,
    listing,
    pg_base_url,
    pg_schema_url,
    running_gateway,
    submit,
    zhejiang,
)

from gateway.core import dsse
from gateway.core.notes import CosignatureSigner
from gateway.core.statements import ConductType, LifecycleStep, StatusChange, StoreRef, Subject
from gateway.core.workdays import ReportMonth
from gateway.errors import RecordError
from gateway.ops.app import Gateway
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.service.ledger import Accepted

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
_BACKENDS = ["sqlite"] + (["postgresql"] if pg_base_url() else [])
RESIDENT_ID = "11010519491231002X"  # valid: check character and birth date hold
MOBILE = "13800138000"
FULL_WIDTH = {ord(d): ord(d) + 0xFEE0 for d in "0123456789"}  # 0 -> U+FF10 ...


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Alliance:
    return zhejiang(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module", params=_BACKENDS)
def gw(
    request: pytest.FixtureRequest, alliance: Alliance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    def run(url: str) -> Iterator[Gateway]:
        members = tuple(alliance.members.values())
        with running_gateway(alliance.config(url), register=members) as gateway:
            yield gateway

    if request.param == "sqlite":
        yield from run(f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}")
        return
    base = pg_base_url()
    assert base is not None
    with pg_schema_url(base) as url:
        yield from run(url)


def _code(gw: Gateway, member: Member, env: dsse.Envelope) -> tuple[grpc.StatusCode, str]:
    """Submit ``env`` as ``member``: the code and details; a refusal leaves the log as is."""
    size = gw.core.store.log_size()
    details = ""
    with member.channel(gw.port) as ch:
        try:
            submit(ch, env)
        except grpc.RpcError as e:
            details = e.details() or ""
            assert gw.core.store.log_size() == size
            return e.code(), details
    return OK, details


def _listing(gw: Gateway, alliance: Alliance, **kw: Any) -> tuple[grpc.StatusCode, str]:
    amr = alliance.members["zj-amr"]
    values: dict[str, Any] = {"decision_ref": f"D-{secrets.token_hex(6)}"}
    values.update(kw)
    return _code(gw, amr, amr.sign(listing(amr, **values)))


def _listed(gw: Gateway, alliance: Alliance) -> str:
    amr = alliance.members["zj-amr"]
    env = amr.sign(listing(amr, decision_ref=f"L-{secrets.token_hex(6)}"))
    assert _code(gw, amr, env)[0] == OK
    return env.record_id


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- 5. effective times ------------------------------------------------------------------


def test_listed_at_far_in_the_past_or_the_future_is_refused(
    gw: Gateway, alliance: Alliance
) -> None:
    """0001-01-01 was accepted and escalated at the next tick (every platform instantly
    overdue); 50 years ahead was accepted too."""
    now = _now()
    for listed_at in (
        datetime(1, 1, 1, tzinfo=UTC),
        now - timedelta(days=20 * 366),
        now + timedelta(days=50 * 366),
        now + timedelta(hours=1),
    ):
        code, details = _listing(gw, alliance, listed_at=listed_at)
        assert code == INVALID, listed_at
        assert details.startswith("listing.listed_at: ")
    assert _listing(gw, alliance, listed_at=now - timedelta(days=1))[0] == OK
    assert _listing(gw, alliance, listed_at=now + timedelta(seconds=60))[0] == OK  # skew


def test_effective_times_of_steps_and_confirmations_are_bounded(
    gw: Gateway, alliance: Alliance
) -> None:
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    listing_id = _listed(gw, alliance)
    for when in (datetime(1, 1, 1, tzinfo=UTC), _now() + timedelta(days=366)):
        step = StatusChange(
            issuer=amr.member_id,
            listing_id=listing_id,
            step=LifecycleStep.NOTICE_SERVED,
            effective_at=when,
        )
        code, details = _code(gw, amr, amr.sign(step))
        assert code == INVALID and details.startswith("status_change.effective_at: ")
        sanction = shop.sign(confirmation(shop, listing_id, effective_at=when))
        code, details = _code(gw, shop, sanction)
        assert code == INVALID and details.startswith("sanction_confirmation.effective_at: ")


def test_the_backdating_window_is_a_setting(tmp_path: Path, database_url: str) -> None:
    alliance = zhejiang(tmp_path / "zj")
    amr = alliance.members["zj-amr"]
    config = alliance.config(database_url, backdating_window_days=7, clock_skew_s=30)
    with running_gateway(config, register=(amr,)) as gw:
        now = _now()
        for delta, expected in (
            (timedelta(days=8), INVALID),
            (timedelta(days=6), OK),
            (timedelta(seconds=-60), INVALID),  # beyond the 30 s skew
        ):
            env = amr.sign(listing(amr, listed_at=now - delta, decision_ref=f"W-{delta}"))
            assert _code(gw, amr, env)[0] == expected, delta


# --- 6. personal data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"summary": f"resident ID {RESIDENT_ID}, phone {MOBILE}"}, "listing.summary"),
        ({"summary": f"身份证号{RESIDENT_ID.lower()}"}, "listing.summary"),
        ({"legal_basis": f"call 手机{MOBILE} for details"}, "listing.legal_basis"),
        ({"summary": f"full-width {MOBILE.translate(FULL_WIDTH)}"}, "listing.summary"),
        ({"summary": "grouped 138-0013-8000"}, "listing.summary"),
        ({"summary": "with the country code +86 13800138000"}, "listing.summary"),
        ({"decision_ref": f"ref {RESIDENT_ID}"}, "listing.decision_ref"),
        ({"subject": Subject(uscc=USCC[0], name=f"Shop of {RESIDENT_ID}")}, "listing.subject.name"),
    ],
)
def test_personal_data_in_text_is_refused_naming_the_field(
    gw: Gateway, alliance: Alliance, fields: dict[str, Any], named: str
) -> None:
    """A summary "resident ID 11010519491231002X, phone 13800138000" was stored verbatim
    in the append-only, replicated log."""
    code, details = _listing(gw, alliance, **fields)
    assert code == INVALID
    assert details.startswith(f"{named}: holds a ")
    assert RESIDENT_ID not in details and MOBILE not in details  # never echoed


def test_personal_data_in_steps_and_confirmations_is_refused(
    gw: Gateway, alliance: Alliance
) -> None:
    amr, shop = alliance.members["zj-amr"], alliance.members["shop-a"]
    listing_id = _listed(gw, alliance)
    step = StatusChange(
        issuer=amr.member_id,
        listing_id=listing_id,
        step=LifecycleStep.CORRECTED,
        effective_at=_now(),
        decision_ref="ZJ-2026-1",
        reason=f"the owner (ID {RESIDENT_ID}) paid",
    )
    code, details = _code(gw, amr, amr.sign(step))
    assert code == INVALID and details.startswith("status_change.reason: ")
    note = shop.sign(confirmation(shop, listing_id, effective_at=_now(), note=f"tel {MOBILE}"))
    code, details = _code(gw, shop, note)
    assert code == INVALID and details.startswith("sanction_confirmation.note: ")


def test_numbers_that_are_not_personal_data_are_accepted(gw: Gateway, alliance: Alliance) -> None:
    """A credit code holds an 11-digit run starting 1[3-9]... only inside a longer code;
    a reference may hold a phone-like number; an ID with a wrong check is no ID."""
    for fields in (
        {"summary": "seller 91330100716105852F and 91350200MA31E12PXF"},
        {"decision_ref": "(2026)浙0106执13800138000号"},
        {"summary": "order 11010519491231002Y, SKU 1380013800012"},
        {"summary": "第一行\n\t第二行 ✓ 😀"},
    ):
        assert _listing(gw, alliance, **fields)[0] == OK, fields


def test_a_person_hmac_that_is_plainly_not_hmac_output_is_refused(
    gw: Gateway, alliance: Alliance
) -> None:
    """person_hmac accepted the raw ID number padded with zeros."""
    for value in (
        RESIDENT_ID.encode() + bytes(14),
        RESIDENT_ID.encode().ljust(32, b"0"),
        b"11010519491231002X-not-a-hash-!!",
        bytes(32),
    ):
        code, details = _listing(gw, alliance, subject=Subject(person_hmac=value))
        assert code == INVALID, value
        assert details.startswith("listing.subject.person_hmac: ")
    real = hmac.new(bytes(range(32)), RESIDENT_ID.encode(), hashlib.sha256).digest()
    assert _listing(gw, alliance, subject=Subject(person_hmac=real))[0] == OK


# --- 7. invisible and line-breaking characters ---------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named", "char"),
    [
        ({"decision_ref": "ZJ-\u202e2024"}, "listing.decision_ref", "U+202E"),  # bidi override
        ({"conduct_other": "x\u200by"}, "listing.conduct_other", "U+200B"),  # zero width
        ({"summary": "line\u2028break"}, "listing.summary", "U+2028"),  # line separator
        ({"summary": "para\u2029break"}, "listing.summary", "U+2029"),
        ({"legal_basis": "next\u0085line"}, "listing.legal_basis", "U+0085"),  # C1 control
        ({"summary": "\ufeffBOM"}, "listing.summary", "U+FEFF"),
    ],
)
def test_invisible_and_line_breaking_characters_are_refused(
    gw: Gateway, alliance: Alliance, fields: dict[str, Any], named: str, char: str
) -> None:
    """Bidi overrides, C1 controls, U+2028/2029/0085 and zero-width characters passed
    single-line fields and reached terminals raw."""
    if "conduct_other" in fields:
        fields = {**fields, "conduct": ConductType.OTHER}
    code, details = _listing(gw, alliance, **fields)
    assert code == INVALID
    assert details.startswith(f"{named}: ") and char in details


def test_invisible_characters_in_a_store_id_are_refused(gw: Gateway, alliance: Alliance) -> None:
    shop = alliance.members["shop-a"]
    stores = (StoreRef(shop.member_id, "store\u200d42"),)
    code, details = _listing(gw, alliance, subject=Subject(uscc=USCC[1], stores=stores))
    assert code == INVALID and details.startswith("listing.subject.stores[0].store_id: ")


# --- 8. cosignatures ---------------------------------------------------------------------


def test_cosignature_times_are_bounded_and_never_move_backwards(
    gw: Gateway, alliance: Alliance
) -> None:
    """A timestamp of 2^63-1 was accepted, and a later cosignature with an older
    timestamp replaced a newer one."""
    ndrc = alliance.members["ndrc"]
    _listed(gw, alliance)
    eventually(lambda: gw.core.store.latest_checkpoint() is not None, "a checkpoint")
    latest = gw.core.store.latest_checkpoint()
    assert latest is not None
    body = latest.note.split("\n\n", 1)[0] + "\n"
    signer = CosignatureSigner(ndrc.member_id, ndrc.signing_key)
    now = int(datetime.now(UTC).timestamp())

    def cosign(timestamp: int) -> grpc.StatusCode:
        line = signer.cosign(body, timestamp)
        with ndrc.channel(gw.port) as ch:
            request = au.AddCosignatureRequest(checkpoint=body, signature_line=line)
            return code_of(lambda: audit(ch).AddCosignature(request, timeout=5))

    assert cosign(2**63 - 1) == INVALID
    assert cosign(now + 3600) == INVALID
    assert cosign(int(latest.signed_at.timestamp()) - 3600) == INVALID  # before it existed
    assert cosign(now + 5) == OK
    assert cosign(now) == INVALID  # older than the one held
    assert gw.core.store.cosignatures(latest.tree_size) == [signer.cosign(body, now + 5)]


def test_a_monthly_report_is_never_signed_for_a_month_to_come(gw: Gateway) -> None:
    """The gateway's own statements are bounded by its clock too (as member records'
    issued_at is): a report for a month that has not begun is refused, nothing signed."""
    size = gw.core.store.log_size()
    coming = ReportMonth.containing(datetime.now(UTC) + timedelta(days=40))
    with pytest.raises(RecordError, match=r"^month: .* has not begun"):
        gw.compliance.reports.generate(coming)
    assert gw.core.store.log_size() == size


# --- replication checks signatures and authority only ------------------------------------


def test_a_replicated_batch_holding_what_our_rules_would_refuse_still_replicates(
    tmp_path: Path, database_url: str
) -> None:
    """GD takes records in under its own rules (a wider backdating window; an older
    version without the content rules); ZJ, whose rules would refuse them if its own
    members submitted them, replicates the batch holding them all the same."""
    with federated_pair(tmp_path, database_url, zj_config={"backdating_window_days": 30}) as pair:
        gd_shop, zj_shop = pair.gd.platform, pair.zj.platform
        old = datetime.now(UTC) - timedelta(days=90)
        backdated = gd_shop.sign(listing(gd_shop, listed_at=old, decision_ref="GD-OLD"))
        assert _code(pair.gd_gw, gd_shop, backdated)[0] == OK
        # What GD's gateway took in before the content rules existed (the statement model
        # itself allows it: the rules apply at intake only).
        said = listing(gd_shop, uscc=USCC[1], summary=f"phone {MOBILE}\u202e", decision_ref="PII")
        chatty = gd_shop.sign(said)
        pair.gd_gw.core.ledger.append(
            [Accepted(chatty, chatty.record_id, gd_shop.member_id, said, pair.gd.origin)]
        )
        after = gd_shop.sign(listing(gd_shop, uscc=USCC[2], decision_ref="GD-AFTER"))
        assert _code(pair.gd_gw, gd_shop, after)[0] == OK
        for env in (backdated, chatty, after):
            eventually(lambda e=env: has(pair.zj_gw, e.record_id), "ZJ replicates it")  # type: ignore[misc]
        # ZJ's own members are held to ZJ's rules.
        mine = zj_shop.sign(listing(zj_shop, listed_at=old, decision_ref="ZJ-OLD"))
        assert _code(pair.zj_gw, zj_shop, mine)[0] == INVALID
