"""``alliance audit``: a monitor verifies a real gateway's log with only its key.

The tamper test edits the database while the gateway is stopped, as an insider with
database access would: the gateway itself notices (tests/integration/test_log_integrity.py
covers every kind of damage). The monitor's replay is shown catching an altered record
against an in-memory log that serves one, since a gateway never does.
"""

from __future__ import annotations

import json
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from gwtest import LISTED_AT, USCC, Alliance, Member, listing, running_gateway
from test_client import write_profile

from clients import AllianceClient, InclusionProof, LogEntry
from clients import audit as monitor
from clients.cli import main
from clients.client import ClientError
from clients.profile import load_profile
from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.crypto import SigningKey
from gateway.core.notes import Checkpoint, NoteSigner, parse_signed_note, sign_note
from gateway.core.possession import prove_possession
from gateway.core.statements import (
    AuthorityScope,
    Erasure,
    ErasureBasis,
    LifecycleStep,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
    StatusChange,
)
from gateway.errors import LogIntegrityError
from gateway.ops.app import Gateway
from gateway.ops.config import Config


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    a.member("monitor", "ndrc", region="110000")
    return a


def _profile(alliance: Alliance, name: str, gw: Gateway) -> Path:
    member = alliance.members[name]
    return write_profile(alliance, member, f"127.0.0.1:{gw.port}", gw.config.log_origin)


def audit(capsys: pytest.CaptureFixture[str], profile: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--profile", str(profile), "audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _signed_size(note: str) -> int:
    return Checkpoint.parse(parse_signed_note(note)[0]).size


def wait_for_checkpoint(profile: Path, size: int) -> None:
    """The gateway signs a checkpoint every 0.2 s in tests; wait until one covers ``size``."""
    deadline = time.monotonic() + 10
    with AllianceClient(load_profile(profile)) as client:
        while _signed_size(client.checkpoint()) < size:
            assert time.monotonic() < deadline, f"no checkpoint of size {size}"
            time.sleep(0.05)


def submit_listings(profile: Path, author: Member, codes: tuple[str, ...]) -> list[int]:
    with AllianceClient(load_profile(profile)) as client:
        return [client.submit(listing(author, uscc=code)).log_index or 0 for code in codes]


def test_verify_prove_replay_and_cosign(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    amr = alliance.members["zj-amr"]
    with running_gateway(
        alliance.config(database_url), register=(amr, alliance.members["ndrc"])
    ) as gw:
        author, ndrc = _profile(alliance, "zj-amr", gw), _profile(alliance, "ndrc", gw)
        (first,) = submit_listings(author, amr, USCC[:1])
        wait_for_checkpoint(ndrc, first + 1)
        code, out, err = audit(capsys, ndrc, "verify")
        assert code == 0, err
        size = int(re.fullmatch(r"checkpoint (\d+) verified \(first checkpoint seen\)\n", out)[1])  # type: ignore[index]
        state_dir = load_profile(ndrc).state_dir
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700

        later = submit_listings(author, amr, USCC[1:])
        wait_for_checkpoint(ndrc, later[-1] + 1)
        code, out, err = audit(capsys, ndrc, "verify")
        assert code == 0, err
        assert re.fullmatch(rf"checkpoint (\d+) verified \(consistent with {size}\)\n", out)

        with AllianceClient(load_profile(author)) as client:
            record_id = client.submit(listing(amr, uscc=USCC[1])).record_id  # a duplicate
        code, out, err = audit(capsys, ndrc, "prove", record_id)
        assert code == 0, err
        assert f"record {record_id} is entry {later[0]} of verified checkpoint" in out

        code, out, err = audit(capsys, ndrc, "replay")
        assert code == 0, err
        assert re.search(
            r"replayed (\d+) entries: root matches checkpoint \1; every signature", out
        )
        assert "3 listing" in out and "3 member-record" in out and "3 member(s)" in out

        code, out, err = audit(capsys, ndrc, "cosign")
        assert code == 0, err
        assert "cosigned checkpoint" in out
        with AllianceClient(load_profile(ndrc)) as client:
            note = client.checkpoint()
        assert f"\u2014 {alliance.members['ndrc'].member_id} " in note

        # Only monitors and gateways cosign: an authority is refused, the CLI exits 1.
        code, _, err = audit(capsys, author, "cosign")
        assert code == 1 and "error:" in err


def _tamper(database_url: str, statement: str, **params: object) -> None:
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text(statement), params).rowcount == 1
    finally:
        engine.dispose()


def _one(database_url: str, query: str) -> tuple[object, ...]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(query)).one())
    finally:
        engine.dispose()


def _history(alliance: Alliance, config: Config, capsys: pytest.CaptureFixture[str]) -> int:
    """Two listings, verified by the monitor; returns the first listing's index."""
    amr = alliance.members["zj-amr"]
    with running_gateway(config, register=(amr, alliance.members["ndrc"])) as gw:
        author, ndrc = _profile(alliance, "zj-amr", gw), _profile(alliance, "ndrc", gw)
        indexes = submit_listings(author, amr, USCC[:2])
        wait_for_checkpoint(ndrc, indexes[-1] + 1)
        assert audit(capsys, ndrc, "verify")[0] == 0
    return indexes[0]


def test_tampered_log_node_stops_the_gateway(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alliance.config(database_url)
    _history(alliance, config, capsys)
    (size,) = _one(database_url, "SELECT max(tree_size) FROM checkpoints")
    assert isinstance(size, int)
    level = size.bit_length() - 1  # the first node of the signed tree's right edge
    _tamper(
        database_url,
        "UPDATE log_nodes SET hash = :h WHERE level = :l AND idx = 0",
        h=b"\x42" * 32,
        l=level,
    )
    # Without the start-up rehash of the newest entries (which names the node, see
    # test_log_integrity.py), the root check against the newest checkpoint still stops it.
    with pytest.raises(LogIntegrityError, match="do not match the signed checkpoint"):
        Gateway(alliance.config(database_url, startup_check_entries=0))


def test_restart_keeps_the_history_consistent(
    alliance: Alliance, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = alliance.config(database_url)
    _history(alliance, config, capsys)
    amr = alliance.members["zj-amr"]
    with running_gateway(config) as gw:
        author, ndrc = _profile(alliance, "zj-amr", gw), _profile(alliance, "ndrc", gw)
        (index,) = submit_listings(author, amr, USCC[2:])
        wait_for_checkpoint(ndrc, index + 1)
        code, out, err = audit(capsys, ndrc, "verify")
    assert code == 0, err
    assert re.fullmatch(rf"checkpoint {index + 1} verified \(consistent with {index}\)\n", out)


# --- forks, rollbacks and forged records, against an in-memory log ----------------------


class FakeLog:
    """A log the test controls: entries, and checkpoints signed by the real log key."""

    def __init__(self, key: SigningKey, origin: str) -> None:
        self.signer = NoteSigner(origin, key)
        self.log: list[dsse.Envelope] = []
        self.served: str = ""

    def append(self, env: dsse.Envelope) -> None:
        self.log.append(env)

    def root(self, size: int) -> bytes:
        tree = merkle.CompactRange()
        for env in self.log[:size]:
            tree.append(merkle.leaf_hash(env.pae()))
        return tree.root()

    def serve(self, size: int, root: bytes | None = None) -> None:
        body = Checkpoint(self.signer.name, size, root or self.root(size)).body()
        self.served = sign_note(body, [self.signer])

    def checkpoint(self) -> str:
        return self.served

    def consistency_proof(self, first_size: int, second_size: int) -> tuple[bytes, ...]:
        store = merkle.MemoryNodeStore()
        tree = merkle.CompactRange()
        for env in self.log[:second_size]:
            store.put_many(tree.append(merkle.leaf_hash(env.pae())))
        return tuple(merkle.consistency_proof(first_size, second_size, store))

    def get(self, record_id: str) -> LogEntry:
        found = [i for i, e in enumerate(self.log) if e.record_id == record_id]
        if not found:
            raise ClientError(grpc.StatusCode.NOT_FOUND, f"no record {record_id}")
        return LogEntry(found[0], record_id, self.log[found[0]])

    def inclusion_proof(self, leaf: str | int, tree_size: int = 0) -> InclusionProof:
        raise NotImplementedError

    def entries(self, start: int, end: int) -> Iterator[LogEntry]:
        for i in range(start, end):
            yield LogEntry(i, self.log[i].record_id, self.log[i])

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None:
        raise NotImplementedError


ORIGIN = "zj.alliance.test/alliance-log/v1"
GATEWAY = "spiffe://zj.alliance.test/gateway/gw"
AUTHORITY = "spiffe://zj.alliance.test/authority/zj-amr"


def _member_record(
    gateway_key: SigningKey, member_id: str, role: Role, key: SigningKey
) -> dsse.Envelope:
    record = MemberRecord(
        issuer=GATEWAY,
        member_id=member_id,
        role=role,
        region_code="330000",
        keys=(
            MemberKey(
                key.public_key().raw,
                datetime(2026, 1, 1, tzinfo=UTC),
                possession=prove_possession(key, member_id),
            ),
        ),
        status=MemberStatus.ACTIVE,
        issued_at=datetime(2026, 1, 1, tzinfo=UTC),
        scope=AuthorityScope.UNIT if role is Role.AUTHORITY else None,
    )
    return dsse.sign(*codec.encode_statement(record), gateway_key)


@pytest.fixture
def fake() -> Iterator[tuple[FakeLog, SigningKey, SigningKey]]:
    gateway_key, amr_key = SigningKey.generate(), SigningKey.generate()
    log = FakeLog(gateway_key, ORIGIN)
    log.append(_member_record(gateway_key, GATEWAY, Role.GATEWAY, gateway_key))
    log.append(_member_record(gateway_key, AUTHORITY, Role.AUTHORITY, amr_key))
    yield log, gateway_key, amr_key


def _listing_env(key: SigningKey, code: str) -> dsse.Envelope:
    author = Member(AUTHORITY, Path(), Path(), key, Path(), "330000")
    return codec.seal(listing(author, uscc=code), key)


def test_fork_and_rollback_are_refused_with_evidence(
    fake: tuple[FakeLog, SigningKey, SigningKey], tmp_path: Path
) -> None:
    log, _, amr_key = fake
    log.append(_listing_env(amr_key, USCC[0]))
    verifier = log.signer.verifier()
    state = monitor.AuditState(tmp_path / "state")
    log.serve(2)
    assert monitor.verify(log, verifier, state).previous is None
    log.serve(3)
    assert monitor.verify(log, verifier, state).previous == Checkpoint(ORIGIN, 2, log.root(2))

    log.serve(3, root=b"\x07" * 32)
    with pytest.raises(LogIntegrityError, match="fork: two different signed roots for tree size 3"):
        monitor.verify(log, verifier, state)
    log.serve(2)
    with pytest.raises(LogIntegrityError, match="rollback: the log served checkpoint 2 after"):
        monitor.verify(log, verifier, state)
    evidence = sorted(p.name for p in (tmp_path / "state" / "evidence").glob("*/*.note"))
    assert evidence == ["served.note", "served.note", "stored.note", "stored.note"]

    log.append(_listing_env(amr_key, USCC[1]))
    log.serve(4, root=b"\x08" * 32)  # signed, but not an extension of checkpoint 3
    with pytest.raises(LogIntegrityError, match="not consistent with checkpoint 3"):
        monitor.verify(log, verifier, state)
    assert _signed_size(state.checkpoint_path.read_text()) == 3  # the bad one was not kept


def test_replay_refuses_a_record_no_registered_key_signed(
    fake: tuple[FakeLog, SigningKey, SigningKey],
) -> None:
    log, _, amr_key = fake
    log.append(_listing_env(amr_key, USCC[0]))
    log.append(_listing_env(SigningKey.generate(), USCC[1]))  # a key never registered
    verifier = log.signer.verifier()
    good = monitor.replay(
        log, Checkpoint(ORIGIN, 3, log.root(3)), verifier, trust_domain="zj.alliance.test"
    )
    assert good.members == 2 and good.signers == {GATEWAY, AUTHORITY}
    with pytest.raises(LogIntegrityError, match="entry 3: no key its signer ever held verifies"):
        monitor.replay(
            log, Checkpoint(ORIGIN, 4, log.root(4)), verifier, trust_domain="zj.alliance.test"
        )
    with pytest.raises(LogIntegrityError, match="root rebuilt from 3 entries does not match"):
        monitor.replay(
            log, Checkpoint(ORIGIN, 3, b"\x01" * 32), verifier, trust_domain="zj.alliance.test"
        )


class AlteringLog(FakeLog):
    """A log that serves one entry with altered bytes under its original record id (a
    gateway would refuse to: it rehashes what it serves; a monitor must not rely on it)."""

    def __init__(self, base: FakeLog, index: int) -> None:
        self.__dict__.update(base.__dict__)
        self.altered = index

    def entries(self, start: int, end: int) -> Iterator[LogEntry]:
        for entry in super().entries(start, end):
            if entry.log_index != self.altered:
                yield entry
                continue
            env = entry.envelope
            payload = env.payload[:-1] + bytes([env.payload[-1] ^ 0x01])
            altered = dsse.Envelope(payload, env.payload_type, env.signatures)
            yield LogEntry(entry.log_index, entry.record_id, altered)


def test_replay_catches_an_altered_record(
    fake: tuple[FakeLog, SigningKey, SigningKey],
) -> None:
    log, _, amr_key = fake
    log.append(_listing_env(amr_key, USCC[0]))
    altering = AlteringLog(log, 2)
    with pytest.raises(LogIntegrityError, match=r"entry 2: record id .*altered"):
        monitor.replay(
            altering,
            Checkpoint(ORIGIN, 3, log.root(3)),
            log.signer.verifier(),
            trust_domain="zj.alliance.test",
        )


def _record(
    issuer_key: SigningKey, issuer: str, member_id: str, role: Role, *keys: SigningKey
) -> dsse.Envelope:
    record = MemberRecord(
        issuer=issuer,
        member_id=member_id,
        role=role,
        region_code="440300",
        keys=tuple(
            MemberKey(
                k.public_key().raw,
                datetime(2026, 1, 1, tzinfo=UTC),
                possession=prove_possession(k, member_id),
            )
            for k in keys
        ),
        status=MemberStatus.ACTIVE,
        issued_at=datetime(2026, 1, 2, tzinfo=UTC),
        scope=AuthorityScope.UNIT if role is Role.AUTHORITY else None,
    )
    return dsse.sign(*codec.encode_statement(record), issuer_key)


def test_replay_trusts_a_peer_gateway_on_first_use_and_its_members_after(
    fake: tuple[FakeLog, SigningKey, SigningKey],
) -> None:
    log, gateway_key, _ = fake
    peer, peer_key = "spiffe://gd.alliance.test/gateway/gd", SigningKey.generate()
    shop, shop_key = "spiffe://gd.alliance.test/platform/shop-g", SigningKey.generate()
    log.append(_record(peer_key, peer, peer, Role.GATEWAY, peer_key))
    log.append(_record(peer_key, peer, shop, Role.PLATFORM, shop_key))
    author = Member(shop, Path(), Path(), shop_key, Path(), "440300")
    log.append(codec.seal(listing(author), shop_key))
    verifier = log.signer.verifier()
    outcome = monitor.replay(
        log, Checkpoint(ORIGIN, 5, log.root(5)), verifier, trust_domain="zj.alliance.test"
    )
    assert outcome.trusted_on_first_use == [peer]
    assert outcome.members == 4 and shop in outcome.signers

    # A member record of the log's own trust domain must carry the log's signature,
    # even when the gateway's own record lists the key that signed it.
    second = SigningKey.generate()
    log.append(_record(gateway_key, GATEWAY, GATEWAY, Role.GATEWAY, gateway_key, second))
    log.append(
        _record(second, GATEWAY, "spiffe://zj.alliance.test/platform/shop-z", Role.PLATFORM, second)
    )
    with pytest.raises(
        LogIntegrityError, match=r"entry 6: member record .* is not signed by the log's key"
    ):
        monitor.replay(
            log, Checkpoint(ORIGIN, 7, log.root(7)), verifier, trust_domain="zj.alliance.test"
        )


# --- erasure: what the replay reports, and what it refuses ---------------------------------


def _erasure_env(key: SigningKey, record_ids: list[str]) -> dsse.Envelope:
    erasure = Erasure(
        issuer=AUTHORITY,
        record_ids=tuple(record_ids),
        basis=ErasureBasis.PURPOSE_ACHIEVED,
        legal_basis="PIPL art. 47(1)",
        effective_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return codec.seal(erasure, key)


def _without_disclosures(env: dsse.Envelope) -> dsse.Envelope:
    return dsse.Envelope(env.payload, env.payload_type, env.signatures)


def _replay(log: FakeLog) -> monitor.ReplayOutcome:
    size = len(log.log)
    return monitor.replay(
        log, Checkpoint(ORIGIN, size, log.root(size)), log.signer.verifier(), trust_domain=ZJ
    )


ZJ = "zj.alliance.test"


def test_replay_reports_erased_entries(fake: tuple[FakeLog, SigningKey, SigningKey]) -> None:
    log, _, amr_key = fake
    kept, erased, early = (_listing_env(amr_key, code) for code in USCC)
    log.append(kept)
    log.append(_without_disclosures(erased))  # index 3: its disclosures were deleted
    # Served without its disclosures, and named by no erasure yet: its origin erased it
    # before this gateway received it; the erasure record comes later in this log.
    log.append(_without_disclosures(early))
    erasure = _erasure_env(amr_key, [erased.record_id, "ab" * 32])  # one it never held
    log.append(erasure)

    outcome = _replay(log)
    assert outcome.erased == [
        monitor.ErasedEntry(3, erased.record_id, erasure.record_id),
        monitor.ErasedEntry(4, early.record_id, None),
    ]
    assert outcome.by_type["application/vnd.alliance.erasure.v1+protobuf"] == 1

    later = _erasure_env(amr_key, [early.record_id])
    log.append(later)
    assert _replay(log).erased[1] == monitor.ErasedEntry(4, early.record_id, later.record_id)


def test_replay_refuses_a_gateway_that_kept_erased_disclosures(
    fake: tuple[FakeLog, SigningKey, SigningKey],
) -> None:
    log, _, amr_key = fake
    listed = _listing_env(amr_key, USCC[0])
    log.append(listed)  # index 2, still with its disclosures
    log.append(_erasure_env(amr_key, [listed.record_id]))
    with pytest.raises(
        LogIntegrityError, match=rf"entry 2: record {listed.record_id} is named by erasure"
    ):
        _replay(log)

    # The other order, as in a replica: the erasure first, then the record with them.
    log, _, amr_key = fake
    del log.log[2:]
    log.append(_erasure_env(amr_key, [listed.record_id]))
    log.append(listed)
    with pytest.raises(LogIntegrityError, match=r"entry 3: .* still serves its disclosures"):
        _replay(log)
    log.log[3] = _without_disclosures(listed)
    assert [e.log_index for e in _replay(log).erased] == [3]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_erase_and_replay_on_the_command_line(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    alliance = Alliance(tmp_path / "zj", "zj.alliance.test")
    amr = alliance.member("authority", "zj-amr", region="330000")
    shop = alliance.member("platform", "shop-a")
    alliance.member("monitor", "ndrc", region="110000")
    with running_gateway(
        alliance.config(database_url), register=tuple(alliance.members.values())
    ) as gw:
        author, platform, ndrc = (_profile(alliance, n, gw) for n in ("zj-amr", "shop-a", "ndrc"))
        with AllianceClient(load_profile(author)) as client:
            listed = client.submit(listing(amr, uscc=USCC[0]))
            kept = client.submit(listing(amr, uscc=USCC[1]))
            client.submit(  # closed: its records may be erased now (kept stays in force)
                StatusChange(
                    issuer=amr.member_id,
                    listing_id=listed.record_id,
                    step=LifecycleStep.CORRECTED,
                    effective_at=LISTED_AT + timedelta(days=1),
                    decision_ref="ZJ-AMR-2026-0100",
                    reason="corrected",
                )
            )
        erase = ["erase", listed.record_id, "--legal-basis", "PIPL art. 47(1)"]
        code, _, err = _run(
            capsys, "--profile", str(author), "erase", kept.record_id, "--basis", "decision",
            "--legal-basis", "court order",
        )  # fmt: skip
        assert code == 1 and f"listing {kept.record_id} is in force" in err

        # Refusals: a wrong basis (2), a platform that did not issue it (1, in Chinese
        # too), a record the gateway does not know (1).
        code, _, err = _run(capsys, "--profile", str(author), *erase, "--basis", "expired")
        assert code == 2 and "--basis: invalid choice: 'expired'" in err
        code, _, err = _run(capsys, "--profile", str(author), *erase)
        assert code == 2 and "--basis" in err
        code, _, err = _run(capsys, "--profile", str(platform), *erase, "--basis", "withdrawn")
        assert code == 1 and f"{shop.member_id} may not erase record {listed.record_id}" in err
        code, _, err = _run(
            capsys, "--lang", "zh-CN", "--profile", str(platform), *erase, "--basis", "withdrawn"
        )
        assert code == 1 and err.startswith("错误：您无权删除其中某条记录的内容")
        code, _, err = _run(
            capsys, "--profile", str(author), "erase", "ab" * 32, "--basis", "decision",
            "--legal-basis", "court order",
        )  # fmt: skip
        assert code == 1 and f"no record {'ab' * 32} is known" in err
        code, _, err = _run(
            capsys, "--profile", str(author), "erase", "AB" * 32, "--basis", "decision",
            "--legal-basis", "court order",
        )  # fmt: skip
        assert code == 2 and "erasure.record_ids[0]: must be a record id" in err

        code, out, err = _run(
            capsys, "--profile", str(author), *erase, "--basis", "purpose-achieved"
        )
        assert code == 0, err
        erasure_id = re.search(r"record id: ([0-9a-f]{64})", out)[1]  # type: ignore[index]
        assert out.startswith("erasure stored\n")
        assert "the subject and free text of 1 record are erased at every gateway" in out
        with AllianceClient(load_profile(ndrc)) as client:
            assert client.get(listed.record_id).envelope.disclosures == ()
            assert client.get(kept.record_id).envelope.disclosures != ()
            erasure_index = client.get(erasure_id).log_index

        wait_for_checkpoint(ndrc, erasure_index + 1)
        code, out, err = audit(capsys, ndrc, "replay")
        assert code == 0, err
        assert "1 entry erased (served without its subject and free text; it still verifies)" in out
        assert f"  entry {listed.log_index}  {listed.record_id}  erased by {erasure_id}\n" in out

        code, out, err = audit(capsys, ndrc, "replay", "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["erased"] == {
            "count": 1,
            "entries": [
                {
                    "log_index": listed.log_index,
                    "record_id": listed.record_id,
                    "erased_by": erasure_id,
                }
            ],
        }
        assert doc["entries"] == doc["checkpoint"]["size"] >= erasure_index + 1
        assert doc["by_type"]["application/vnd.alliance.erasure.v1+protobuf"] == 1

        code, out, err = _run(capsys, "--lang", "zh-CN", "--profile", str(ndrc), "audit", "replay")
        assert code == 0, err
        assert "1 个条目已删除内容" in out and f"由删除记录 {erasure_id} 删除" in out
