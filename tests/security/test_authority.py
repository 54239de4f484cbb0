"""Hardening, part 2 (issue 14), items 1-3 and 4's last clause: only the right identity
signs what only it may sign, against real federated gateways (ZJ and GD).

1. A rogue gateway identity of our trust domain (a gateway-role member record, or a
   certificate our CA issued to another gateway name) signs nothing and calls nothing;
   a peer gateway pushes nothing through SubmitRecord(s); a member record dated far in
   the future takes effect only when its time comes and never stalls replication.
2. A signing key belongs to one member: a squatter's claim on another member's key
   neither blocks the owner locally nor stalls replication; registration needs the
   key's proof of possession.
3. Any valid signature by the issuer suffices, whatever other signatures come first.
4. (last clause) A suspended member's records are refused with PERMISSION_DENIED,
   also on a stream opened before the suspension.
Issue 15 item 9: PERMISSION_DENIED when the issuer is not the caller, whatever keyid.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from authz_support import (
    MEMBER_RECORD_V1,
    Pair,
    append_v1_member_record,
    code_of,
    eventually,
    federated_pair,
    has,
)
from gwtest import USCC, Member, audit, exchange, listing, running_gateway, submit, zhejiang

from certs.pki import generate_signing_key, issue_gateway
from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey, load_signing_key
from gateway.core.notes import CosignatureSigner
from gateway.core.statements import MemberRecord, MemberStatus, MonthlyReport, Role
from gateway.pb.alliance.v1 import audit_pb2 as au
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import federation_pb2 as fe
from gateway.pb.alliance.v1 import federation_pb2_grpc
from gateway.service.ledger import Accepted
from gateway.transport.errors import REASON_KEY

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _submit(member: Member, port: int, env: dsse.Envelope) -> grpc.StatusCode:
    with member.channel(port) as ch:
        return code_of(lambda: submit(ch, env))


def _refusal(member: Member, port: int, env: dsse.Envelope) -> tuple[grpc.StatusCode, str | None]:
    """The status code and reason code (trailer ``alliance-reason``) of a refused
    submission."""
    with member.channel(port) as ch:
        try:
            submit(ch, env)
        except grpc.RpcError as e:
            assert isinstance(e, grpc.Call)
            found = [v for k, v in e.trailing_metadata() or () if k == REASON_KEY]
            return e.code(), found[0] if found else None
    raise AssertionError("the gateway accepted the record")


def _listing_reaches(pair: Pair, member: Member, gw_from: int, uscc: str) -> str:
    """Submit a fresh listing as ``member`` at ``gw_from``; the record id."""
    env = member.sign(listing(member, uscc=uscc, decision_ref=f"T-{uscc}-{member.member_id}"))
    assert _submit(member, gw_from, env) == OK
    return env.record_id


def _rogue(pair: Pair, tmp_path: Path) -> Member:
    """A second gateway identity in ZJ's trust domain: a certificate from ZJ's own CA
    for gateway/rogue, and a member record ZJ's gateway signed for it (what `members add
    spiffe://…/gateway/rogue` did silently before the fix)."""
    zj = pair.zj
    folder = tmp_path / "rogue"
    issue_gateway(zj.alliance.ca_dir, zj.trust_domain, "rogue", folder)
    generate_signing_key(folder / "signing-key.pem")
    rogue = Member(
        f"spiffe://{zj.trust_domain}/gateway/rogue",
        folder / "rogue.pem",
        folder / "rogue-key.pem",
        load_signing_key(folder / "signing-key.pem"),
        zj.alliance.ca,
        zj.alliance.region,
    )
    append_v1_member_record(
        pair.zj_gw,
        zj,
        rogue.member_id,
        keys=[rogue.signing_key.public_key().raw],
        issued_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    return rogue


def _suspension(issuer: Member, member: Member, at: datetime) -> dsse.Envelope:
    """A member record suspending ``member`` (keys dropped), signed by ``issuer`` in the
    v1 format (what any code version reads)."""
    record = MemberRecord(
        issuer=issuer.member_id,
        member_id=member.member_id,
        role=Role[member.member_id.split("/")[3].upper()],
        region_code=member.region,
        keys=(),
        status=MemberStatus.SUSPENDED,
        issued_at=at,
    )
    payload = codec.statement_to_pb(record).SerializeToString(deterministic=True)
    return dsse.sign(MEMBER_RECORD_V1, payload, issuer.signing_key)


# --- 1. rogue gateway identities ---------------------------------------------------------


def test_a_rogue_gateway_of_our_domain_signs_nothing_and_federation_goes_on(
    tmp_path: Path, database_url: str
) -> None:
    """The attack: a gateway-role member of our trust domain signs a MemberRecord dated
    9999-12-31 that suspends shop ZJ for ever, and submits it. Before the fix ZJ
    appended it (the CLI could not undo it) and GD refused the batch holding it, which
    halted federation. Now the rogue is refused at the door and ZJ goes on."""
    with federated_pair(tmp_path, database_url) as pair:
        zj = pair.zj
        rogue = _rogue(pair, tmp_path)
        attack = _suspension(rogue, zj.platform, FAR_FUTURE)
        assert _submit(rogue, zj.port, attack) == DENIED
        assert not has(pair.zj_gw, attack.record_id)

        # Neither may it pull our log as if it were a replica, nor cosign.
        with rogue.channel(zj.port) as ch:
            stub = federation_pb2_grpc.FederationStub(ch)
            replicate = code_of(
                lambda: next(iter(stub.Replicate(fe.ReplicateRequest(), timeout=5)))
            )
            assert replicate == DENIED
            body = pair.zj_gw.core.store.latest_checkpoint()
            assert body is not None
            text = body.note.split("\n\n", 1)[0] + "\n"
            line = CosignatureSigner(rogue.member_id, rogue.signing_key).cosign(
                text, int(datetime.now(UTC).timestamp())
            )
            cosign = code_of(
                lambda: audit(ch).AddCosignature(
                    au.AddCosignatureRequest(checkpoint=text, signature_line=line), timeout=5
                )
            )
            assert cosign == DENIED

        # The platform still signs, and its records still reach GD.
        listing_id = _listing_reaches(pair, zj.platform, zj.port, USCC[0])
        eventually(lambda: has(pair.gd_gw, listing_id), "GD replicates ZJ's new listing")
        (status,) = pair.gd_gw.replication.status()
        assert "refused" not in status.last_error


def test_a_rogue_gateway_of_a_peers_domain_signs_nothing_we_replicate(
    tmp_path: Path, database_url: str
) -> None:
    """GD's log holds a gateway-role member record for gd/gateway/rogue (signed by GD's
    configured gateway, as `members add` allowed) and a MonthlyReport the rogue signed.
    Before the fix ZJ replicated the report as a statement of a gateway; now only GD's
    configured gateway may sign what only a gateway signs, so ZJ refuses the batch."""
    with federated_pair(tmp_path, database_url) as pair:
        gd = pair.gd
        rogue_key = SigningKey.generate()
        rogue = f"spiffe://{gd.trust_domain}/gateway/rogue"
        append_v1_member_record(
            pair.gd_gw,
            gd,
            rogue,
            keys=[rogue_key.public_key().raw],
            issued_at=datetime.now(UTC) - timedelta(minutes=1),
        )
        report = MonthlyReport(
            issuer=rogue,
            month="2026-11",
            unit="44",
            checkpoint_size=0,
            checkpoint_root=bytes(32),
            content=b'{"units": []}',
        )
        payload_type, payload = codec.encode_statement(report)
        env = dsse.sign(payload_type, payload, rogue_key)
        pair.gd_gw.core.ledger.append([Accepted(env, env.record_id, rogue, report, gd.origin)])

        def refused() -> bool:
            (status,) = pair.zj_gw.replication.status()
            return "not a configured gateway" in status.last_error

        eventually(refused, "ZJ refuses the batch holding the rogue's report")
        assert not has(pair.zj_gw, env.record_id)


def test_a_peer_gateway_cannot_push_records_through_submit(
    tmp_path: Path, database_url: str
) -> None:
    """Only replication carries a peer's records: before the fix GD's gateway could
    SubmitRecord its own (gateway-signed) records into ZJ's log, with ZJ as origin."""
    with federated_pair(tmp_path, database_url) as pair:
        gd_gateway = pair.gd.gateway_caller(pair.zj)
        env = _suspension(gd_gateway, pair.gd.platform, datetime.now(UTC))
        assert _submit(gd_gateway, pair.zj.port, env) == DENIED
        with gd_gateway.channel(pair.zj.port) as ch:
            stream = exchange(ch).SubmitRecords(
                iter([ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env))]), timeout=5
            )
            assert code_of(lambda: list(stream)) == DENIED
        assert not has(pair.zj_gw, env.record_id)
        # Its records still arrive the way they should: by replication.
        listing_id = _listing_reaches(pair, pair.gd.platform, pair.gd.port, USCC[1])
        eventually(lambda: has(pair.zj_gw, listing_id), "ZJ replicates GD's listing")


def test_a_member_record_dated_in_the_future_takes_effect_only_when_its_time_comes(
    tmp_path: Path, database_url: str
) -> None:
    """A configured peer's gateway (misbehaving, or an older version) signs a member
    record dated 9999-12-31 suspending its own platform. It replicates (a batch is never
    stalled by it) but changes nothing before its time, here or at its origin: before
    the fix the platform was suspended for ever on every gateway."""
    with federated_pair(tmp_path, database_url) as pair:
        gd, shop = pair.gd, pair.gd.platform
        future = append_v1_member_record(
            pair.gd_gw,
            gd,
            shop.member_id,
            keys=[],
            status=MemberStatus.SUSPENDED,
            issued_at=FAR_FUTURE,
        )
        eventually(lambda: has(pair.zj_gw, future), "ZJ replicates the future-dated record")
        for gw in (pair.zj_gw, pair.gd_gw):
            current = gw.core.directory.member(shop.member_id)
            assert current is not None and current.status is MemberStatus.ACTIVE
        listing_id = _listing_reaches(pair, shop, gd.port, USCC[2])
        eventually(lambda: has(pair.zj_gw, listing_id), "its later records still replicate")


# --- 2. key squatting --------------------------------------------------------------------


def test_a_squatted_key_still_belongs_to_its_first_holder_everywhere(
    tmp_path: Path, database_url: str
) -> None:
    """The attack: another member record lists ZJ's platform key, under a member id that
    sorts first (aaa-squatter), in ZJ's own domain and in GD's. Before the fix every
    signature of the key was credited to the squatter: the platform was refused at home
    and GD refused every batch holding its records. Now the key belongs to the member
    of the earliest record that lists it, on both gateways alike."""
    with federated_pair(tmp_path, database_url) as pair:
        zj, gd, shop = pair.zj, pair.gd, pair.zj.platform
        raw = shop.signing_key.public_key().raw
        later = datetime.now(UTC)
        append_v1_member_record(
            pair.zj_gw,
            zj,
            f"spiffe://{zj.trust_domain}/platform/aaa-squatter",
            keys=[raw],
            issued_at=later,
        )
        squat = append_v1_member_record(
            pair.gd_gw,
            gd,
            f"spiffe://{gd.trust_domain}/platform/aaa-squatter",
            keys=[raw],
            issued_at=later,
        )
        eventually(lambda: has(pair.zj_gw, squat), "ZJ replicates GD's squatting record")
        listing_id = _listing_reaches(pair, shop, zj.port, USCC[0])
        eventually(lambda: has(pair.gd_gw, listing_id), "GD replicates the owner's listing")
        stored = pair.gd_gw.core.store.record_by_id(listing_id)
        assert stored is not None and stored.signer == shop.member_id
        for gw in (pair.zj_gw, pair.gd_gw):
            assert gw.core.directory.owner(raw) == shop.member_id


# --- 3. several signatures ---------------------------------------------------------------


def test_any_valid_signature_by_the_issuer_suffices_here_and_on_replicas(
    tmp_path: Path, database_url: str
) -> None:
    """For issuer ZJ's authority, an envelope signed [ZJ platform, ZJ authority] was
    refused because the first valid signature decided. Now any signature by the issuer
    suffices, at the gateway it is submitted to and on every replica."""
    with federated_pair(tmp_path, database_url) as pair:
        amr, shop = pair.zj.authority, pair.zj.platform
        ids = []
        for n, keyid in enumerate(("hint", "", "wrong")):
            own = amr.sign(listing(amr, uscc=USCC[n], decision_ref=f"MULTI-{n}"))
            first = dsse.sign(own.payload_type, own.payload, shop.signing_key).signatures[0]
            mine = own.signatures[0]
            if keyid != "hint":
                mine = dsse.Signature(sig=mine.sig, keyid="" if keyid == "" else first.keyid)
            env = dsse.Envelope(own.payload, own.payload_type, (first, mine), own.disclosures)
            assert _submit(amr, pair.zj.port, env) == OK, keyid
            ids.append(env.record_id)
        # Signatures by others only, for the issuer's record: refused as a bad signature.
        own = amr.sign(listing(amr, uscc=USCC[0], decision_ref="MULTI-none"))
        only_others = dsse.with_disclosures(
            dsse.sign(own.payload_type, own.payload, shop.signing_key), own.disclosures
        )
        assert _refusal(amr, pair.zj.port, only_others) == (INVALID, "bad-signature")
        for record_id in ids:
            eventually(lambda r=record_id: has(pair.gd_gw, r), "GD replicates it")  # type: ignore[misc]
            stored = pair.gd_gw.core.store.record_by_id(record_id)
            assert stored is not None and stored.signer == amr.member_id


# --- 4 (last clause) and issue 15 item 9: one rule for the status codes ---------------


def _stream(
    member: Member, port: int
) -> tuple[queue.Queue[ex.SubmitRecordRequest | None], queue.Queue[object]]:
    """A SubmitRecords stream we feed one request at a time; answers arrive in ``out``."""
    requests: queue.Queue[ex.SubmitRecordRequest | None] = queue.Queue()
    out: queue.Queue[object] = queue.Queue()

    def feed() -> Iterator[ex.SubmitRecordRequest]:
        while (item := requests.get()) is not None:
            yield item

    def run() -> None:
        with member.channel(port) as ch:
            try:
                for result in exchange(ch).SubmitRecords(feed(), timeout=30):
                    out.put(result)
            except grpc.RpcError as e:
                out.put(e.code())
            out.put(None)

    threading.Thread(target=run, daemon=True).start()
    return requests, out


def test_a_suspended_members_records_are_refused_with_permission_denied(
    tmp_path: Path, database_url: str
) -> None:
    """A stream opened before the suspension: its next record was refused with
    INVALID_ARGUMENT (no valid key), as if the signature were bad."""
    alliance = zhejiang(tmp_path / "zj")
    shop = alliance.members["shop-a"]
    with running_gateway(alliance.config(database_url), register=(shop,)) as gw:
        requests, out = _stream(shop, gw.port)

        def send(n: int) -> object:
            env = shop.sign(listing(shop, uscc=USCC[n], decision_ref=f"STREAM-{n}"))
            requests.put(ex.SubmitRecordRequest(envelope=codec.envelope_to_pb(env)))
            return out.get(timeout=20)

        first = send(0)
        assert isinstance(first, ex.SubmitRecordResult) and first.code == 0
        gw.core.members.set_status(shop.member_id, MemberStatus.SUSPENDED)
        second = send(1)
        requests.put(None)
        # Refused in its result, or the whole stream ended: either way, PERMISSION_DENIED.
        code = second.code if isinstance(second, ex.SubmitRecordResult) else second
        assert code in (DENIED.value[0], DENIED), second
        with shop.channel(gw.port) as ch:
            env = shop.sign(listing(shop, uscc=USCC[2], decision_ref="UNARY"))
            assert code_of(lambda: submit(ch, env)) == DENIED


@pytest.mark.parametrize("keyid", ["the signer's", "empty", "the caller's"])
def test_the_status_code_depends_on_the_issuer_not_on_the_keyid(
    tmp_path: Path, database_url: str, keyid: str
) -> None:
    """PERMISSION_DENIED when the issuer is not the caller; INVALID_ARGUMENT when no
    signature verifies under the issuer's keys: whatever keyid says. Before, shop-b's
    record submitted by shop-a was PERMISSION_DENIED with shop-b's keyid and
    INVALID_ARGUMENT without one."""
    alliance = zhejiang(tmp_path / "zj")
    shop_a, shop_b = alliance.members["shop-a"], alliance.members["shop-b"]

    def with_keyid(env: dsse.Envelope) -> dsse.Envelope:
        sig = env.signatures[0]
        hint = {
            "the signer's": sig.keyid,
            "empty": "",
            "the caller's": shop_a.signing_key.public_key().keyid,
        }[keyid]
        return dsse.Envelope(
            env.payload, env.payload_type, (dsse.Signature(sig.sig, hint),), env.disclosures
        )

    with running_gateway(alliance.config(database_url), register=(shop_a, shop_b)) as gw:
        theirs = with_keyid(shop_b.sign(listing(shop_b, decision_ref=f"THEIRS-{keyid}")))
        assert _submit(shop_a, gw.port, theirs) == DENIED
        mine = listing(shop_a, decision_ref=f"MINE-{keyid}")
        # shop_a's statement, with its disclosures, signed by shop_b.
        forged = with_keyid(codec.seal(mine, shop_b.signing_key))
        assert _refusal(shop_a, gw.port, forged) == (INVALID, "bad-signature")
        assert _submit(shop_a, gw.port, with_keyid(shop_a.sign(mine))) == OK
