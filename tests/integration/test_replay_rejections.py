"""The monitor's refusals (``clients/audit.py``): ``replay`` and ``prove`` against a log
that lies in each way they check, one test per rejection.

The log is ``FakeLog`` (test_audit_tooling): entries and checkpoints the test controls,
signed with the log's real key, so every refusal is the monitor's own code judging a
gateway that signs what it should not, leaves entries out, or answers with other bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from gwtest import USCC
from test_audit_tooling import (
    AUTHORITY,
    GATEWAY,
    ORIGIN,
    FakeLog,
    _listing_env,
    _member_record,
    _record,
)

from clients import InclusionProof, LogEntry
from clients import audit as monitor
from gateway import codec
from gateway.core import dsse, merkle
from gateway.core.crypto import SigningKey
from gateway.core.notes import Checkpoint
from gateway.core.statements import (
    MEMBER_RECORD_V1,
    PAYLOAD_TYPES,
    MemberKey,
    MemberRecord,
    MemberStatus,
    Role,
)
from gateway.errors import LogIntegrityError, RecordError
from gateway.pb.alliance.v1 import statements_pb2 as st_pb

TRUST_DOMAIN = "zj.alliance.test"
PEER = "spiffe://gd.alliance.test/gateway/gd"
PEER_SHOP = "spiffe://gd.alliance.test/platform/shop-g"
MEMBER_RECORD_TYPE = PAYLOAD_TYPES[MemberRecord]


class ProvingLog(FakeLog):
    """A FakeLog that also answers inclusion proofs, and can be told to lie in them."""

    def __init__(self, key: SigningKey, origin: str) -> None:
        super().__init__(key, origin)
        self.swap_bytes: dict[str, dsse.Envelope] = {}  # record id -> envelope served
        self.proof_for: tuple[int, int] | None = None  # (leaf, size) to prove instead
        self.proof_hashes: tuple[bytes, ...] | None = None  # hashes served instead

    def get(self, record_id: str) -> LogEntry:
        entry = super().get(record_id)
        swapped = self.swap_bytes.get(record_id)
        return entry if swapped is None else replace(entry, envelope=swapped)

    def inclusion_proof(self, leaf: str | int, tree_size: int = 0) -> InclusionProof:
        assert isinstance(leaf, str)
        index, size = self.proof_for or (self.get(leaf).log_index, tree_size)
        store = merkle.MemoryNodeStore()
        tree = merkle.CompactRange()
        for env in self.log[:size]:
            store.put_many(tree.append(merkle.leaf_hash(env.pae())))
        hashes = tuple(merkle.inclusion_proof(index, size, store))
        return InclusionProof(index, size, self.proof_hashes or hashes)


@dataclass
class Keys:
    gateway: SigningKey
    amr: SigningKey


@pytest.fixture
def log() -> Iterator[tuple[ProvingLog, Keys]]:
    """A log of our gateway's own member record, an authority's, and one listing."""
    keys = Keys(SigningKey.generate(), SigningKey.generate())
    log = ProvingLog(keys.gateway, ORIGIN)
    log.append(_member_record(keys.gateway, GATEWAY, Role.GATEWAY, keys.gateway))
    log.append(_member_record(keys.gateway, AUTHORITY, Role.AUTHORITY, keys.amr))
    log.append(_listing_env(keys.amr, USCC[0]))
    yield log, keys


def _checkpoint(log: FakeLog, size: int | None = None) -> Checkpoint:
    size = len(log.log) if size is None else size
    return Checkpoint(ORIGIN, size, log.root(size))


def _replay(log: FakeLog, source: monitor.LogSource | None = None) -> monitor.ReplayOutcome:
    return monitor.replay(
        source or log, _checkpoint(log), log.signer.verifier(), trust_domain=TRUST_DOMAIN
    )


def test_the_honest_log_replays(log: tuple[ProvingLog, Keys]) -> None:
    """The control: every case below changes one thing of this log."""
    fake, _ = log
    outcome = _replay(fake)
    assert outcome.tree_size == 3 and outcome.signers == {GATEWAY, AUTHORITY}


# --- what the log key may sign ---------------------------------------------------------


def test_a_member_record_of_another_domain_signed_by_the_log_key_is_refused(
    log: tuple[ProvingLog, Keys],
) -> None:
    """Our gateway's key vouches for our trust domain only: with it, a gateway could
    otherwise mint members of a peer region that the peer never registered."""
    fake, keys = log
    fake.append(_record(keys.gateway, PEER, PEER_SHOP, Role.PLATFORM, SigningKey.generate()))
    with pytest.raises(
        LogIntegrityError,
        match=rf"entry 3: member record signed by the log key names issuer {PEER}, "
        rf"not a gateway of {TRUST_DOMAIN}",
    ):
        _replay(fake)


def test_a_member_record_signed_by_the_log_key_that_does_not_parse_is_refused(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, keys = log
    fake.append(dsse.sign(MEMBER_RECORD_TYPE, b"\xff\xff not a member record", keys.gateway))
    with pytest.raises(LogIntegrityError, match="entry 3: signed payload does not parse"):
        _replay(fake)


def test_a_record_whose_payload_does_not_parse_is_refused(log: tuple[ProvingLog, Keys]) -> None:
    """Signed by its issuer's registered key, but not a valid statement (no subject, an
    unknown list): the signature verifies over the bytes, then parsing refuses them."""
    fake, keys = log
    listing_type = _listing_env(keys.amr, USCC[1]).payload_type
    bad = st_pb.Listing(issuer=AUTHORITY, list=st_pb.ListKind.ValueType(7)).SerializeToString()
    fake.append(dsse.sign(listing_type, bad, keys.amr))
    with pytest.raises(LogIntegrityError, match="entry 3: signed payload does not parse"):
        _replay(fake)


def test_a_record_that_names_no_readable_issuer_is_refused(log: tuple[ProvingLog, Keys]) -> None:
    """Bytes that do not parse far enough to name an issuer: no key can be chosen, so
    nothing verifies them."""
    fake, keys = log
    listing_type = _listing_env(keys.amr, USCC[1]).payload_type
    fake.append(dsse.sign(listing_type, b"\x0a\x03abc garbage", keys.amr))
    with pytest.raises(LogIntegrityError, match="entry 3: no key its signer ever held verifies"):
        _replay(fake)


# --- first-use trust of peer gateways ----------------------------------------------------


def _peer_record(
    signer: SigningKey,
    issuer: str,
    member_id: str,
    role: Role,
    keys: tuple[SigningKey, ...],
    status: MemberStatus = MemberStatus.ACTIVE,
) -> dsse.Envelope:
    record = MemberRecord(
        issuer=issuer,
        member_id=member_id,
        role=role,
        region_code="440300",
        keys=tuple(MemberKey(k.public_key().raw, datetime(2026, 1, 1, tzinfo=UTC)) for k in keys),
        status=status,
        issued_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    # A peer's v1 member record (no proofs of possession: trusted on first use).
    return dsse.sign(*codec.encode_statement(record, MEMBER_RECORD_V1), signer)


def test_a_peer_gateway_record_is_trusted_on_first_use(log: tuple[ProvingLog, Keys]) -> None:
    """The control for first use: self-issued, a gateway of another domain, signed by a
    key it lists."""
    fake, _ = log
    peer_key = SigningKey.generate()
    fake.append(_peer_record(peer_key, PEER, PEER, Role.GATEWAY, (peer_key,)))
    assert _replay(fake).trusted_on_first_use == [PEER]


def test_first_use_refuses_a_record_the_peer_did_not_issue_about_itself(
    log: tuple[ProvingLog, Keys],
) -> None:
    """A record signed by a key nobody registered may only introduce the signer itself:
    otherwise anyone could register any peer member with a key of their own."""
    fake, _ = log
    stranger = SigningKey.generate()
    fake.append(_peer_record(stranger, PEER, PEER_SHOP, Role.PLATFORM, (stranger,)))
    with pytest.raises(LogIntegrityError, match="entry 3: no known key verifies member record"):
        _replay(fake)


def test_first_use_refuses_a_gateway_of_our_own_domain(log: tuple[ProvingLog, Keys]) -> None:
    """Our domain's gateways are vouched for by the log key the monitor holds, never on
    first use: a second 'gateway' of our domain could then sign our members."""
    fake, _ = log
    rogue, rogue_key = f"spiffe://{TRUST_DOMAIN}/gateway/rogue", SigningKey.generate()
    fake.append(_peer_record(rogue_key, rogue, rogue, Role.GATEWAY, (rogue_key,)))
    with pytest.raises(LogIntegrityError, match="entry 3: no known key verifies member record"):
        _replay(fake)


def test_first_use_refuses_a_peer_record_that_lists_no_key(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, _ = log
    fake.append(
        _peer_record(SigningKey.generate(), PEER, PEER, Role.GATEWAY, (), MemberStatus.SUSPENDED)
    )
    with pytest.raises(LogIntegrityError, match="entry 3: no known key verifies member record"):
        _replay(fake)


def test_first_use_refuses_a_peer_record_signed_by_a_key_it_does_not_list(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, _ = log
    listed, signer = SigningKey.generate(), SigningKey.generate()
    fake.append(_peer_record(signer, PEER, PEER, Role.GATEWAY, (listed,)))
    with pytest.raises(LogIntegrityError, match=r"entry 3: peer gateway record [0-9a-f]{64}: "):
        _replay(fake)


def test_first_use_refuses_a_member_record_that_does_not_parse(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, _ = log
    fake.append(dsse.sign(MEMBER_RECORD_TYPE, b"\xff not a record", SigningKey.generate()))
    with pytest.raises(LogIntegrityError, match="entry 3: member record does not parse"):
        _replay(fake)


# --- entries out of order, missing, altered ----------------------------------------------


class Reordered:
    """Serves the log's entries with two of them swapped, or the last ones left out."""

    def __init__(self, log: FakeLog, *, swap: tuple[int, int] | None = None, drop: int = 0) -> None:
        self.log = log
        self.swap = swap
        self.drop = drop

    def __getattr__(self, name: str) -> object:
        return getattr(self.log, name)

    def entries(self, start: int, end: int) -> Iterator[LogEntry]:
        entries = list(self.log.entries(start, end - self.drop))
        if self.swap is not None:
            i, j = self.swap
            entries[i], entries[j] = entries[j], entries[i]
        yield from entries


def test_entries_out_of_order_are_refused(log: tuple[ProvingLog, Keys]) -> None:
    fake, _ = log
    with pytest.raises(LogIntegrityError, match="entry 1: the gateway sent entry 2 instead"):
        _replay(fake, Reordered(fake, swap=(1, 2)))  # type: ignore[arg-type]


def test_truncated_entries_are_refused(log: tuple[ProvingLog, Keys]) -> None:
    """A gateway that leaves the newest entries out (a listing it wants to hide) cannot
    claim the checkpoint covers what it sent."""
    fake, _ = log
    with pytest.raises(LogIntegrityError, match="entry 2: the gateway sent 2 of 3 entries"):
        _replay(fake, Reordered(fake, drop=1))  # type: ignore[arg-type]


def test_an_entry_whose_record_id_is_not_its_hash_is_refused(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, keys = log
    other = _listing_env(keys.amr, USCC[2]).record_id

    class Mislabelled(Reordered):
        def entries(self, start: int, end: int) -> Iterator[LogEntry]:
            for entry in self.log.entries(start, end):
                yield replace(entry, record_id=other) if entry.log_index == 2 else entry

    with pytest.raises(LogIntegrityError, match=rf"entry 2: record id {other} is not the SHA-256"):
        _replay(fake, Mislabelled(fake))  # type: ignore[arg-type]


# --- prove ---------------------------------------------------------------------------------


def test_prove_accepts_an_honest_proof(log: tuple[ProvingLog, Keys]) -> None:
    fake, _ = log
    record_id = fake.log[2].record_id
    outcome = monitor.prove(fake, _checkpoint(fake), record_id)
    assert (outcome.leaf_index, outcome.tree_size) == (2, 3)


def test_prove_refuses_bytes_with_another_record_id(log: tuple[ProvingLog, Keys]) -> None:
    """The gateway answers a record id with other bytes (another, harmless listing)."""
    fake, keys = log
    record_id = fake.log[2].record_id
    fake.swap_bytes[record_id] = _listing_env(keys.amr, USCC[1])
    with pytest.raises(LogIntegrityError, match="returned bytes with another record id"):
        monitor.prove(fake, _checkpoint(fake), record_id)


def test_prove_of_a_record_after_the_checkpoint_asks_to_wait(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, _ = log
    with pytest.raises(RecordError, match="after the verified checkpoint of size 2"):
        monitor.prove(fake, _checkpoint(fake, 2), fake.log[2].record_id)


@pytest.mark.parametrize("proof_for", [(1, 3), (1, 2)])
def test_prove_refuses_a_proof_for_another_leaf_or_size(
    log: tuple[ProvingLog, Keys], proof_for: tuple[int, int]
) -> None:
    """A valid proof, of something else: the member's record is not what it proves."""
    fake, _ = log
    fake.proof_for = proof_for
    with pytest.raises(LogIntegrityError, match=r"proof is for leaf \d of \d, not leaf 2 of 3"):
        monitor.prove(fake, _checkpoint(fake), fake.log[2].record_id)


def test_prove_refuses_a_proof_that_does_not_reach_the_root(
    log: tuple[ProvingLog, Keys],
) -> None:
    fake, _ = log
    record_id = fake.log[1].record_id
    honest = fake.inclusion_proof(record_id, 3).hashes
    fake.proof_hashes = (honest[0], b"\x07" * 32)
    with pytest.raises(LogIntegrityError):
        monitor.prove(fake, _checkpoint(fake), record_id)
