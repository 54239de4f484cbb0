"""The monitor's tools: verify the gateway's log with nothing but its key.

A monitor trusts two things: the log's C2SP verifier key (profile ``log_vkey_file``)
and its own state directory (profile ``state_dir``, mode 0700), where it keeps the
last checkpoint it verified. Everything the gateway says is checked against those.

- ``verify``: the latest checkpoint is signed by the log key and is consistent with
  the one stored (RFC 9162 consistency proof). A smaller size is a rollback, the same
  size with another root is a fork: both notes go to ``state_dir/evidence/``.
- ``prove``: a record is in the verified tree (inclusion proof over SHA-256(0x00 ‖ PAE)).
- ``replay``: every entry up to the verified size is downloaded, the root rebuilt and
  every record's signature checked again (rules in ``replay``'s docstring); it reports
  the entries served without their disclosures (erased), and refuses a gateway that
  still serves the disclosures of a record an erasure in its log names.
- ``cosign``: the member cosigns the verified checkpoint (C2SP tlog-cosignature), so
  the gateway cannot show another history to someone else unnoticed.

Failures raise ``LogIntegrityError`` with a precise message; nothing here prints.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol

import grpc

from clients.client import ClientError, InclusionProof, LogEntry
from gateway.codec import decode_envelope, open_payload
from gateway.core import dsse, merkle
from gateway.core.crypto import VerifyingKey
from gateway.core.fold import MemberDirectory
from gateway.core.identifiers import MemberId, Role
from gateway.core.notes import (
    Checkpoint,
    CosignatureSigner,
    NoteVerifier,
    open_checkpoint,
    parse_signed_note,
)
from gateway.core.statements import MEMBER_RECORD_TYPES, Erasure, MemberRecord, Statement
from gateway.errors import GatewayError, LogIntegrityError, RecordError, VerificationError

__all__ = [
    "AuditState",
    "ErasedEntry",
    "LogSource",
    "ProveOutcome",
    "ReplayOutcome",
    "VerifyOutcome",
    "cosign",
    "prove",
    "replay",
    "verify",
]

_CHECKPOINT_FILE: Final = "checkpoint.note"
_EVIDENCE_DIR: Final = "evidence"


class LogSource(Protocol):
    """What the monitor asks of a gateway (``AllianceClient`` is one)."""

    def checkpoint(self) -> str: ...
    def consistency_proof(self, first_size: int, second_size: int) -> tuple[bytes, ...]: ...
    def get(self, record_id: str) -> LogEntry: ...
    def inclusion_proof(self, leaf: str | int, tree_size: int = 0) -> InclusionProof: ...
    def entries(self, start: int, end: int) -> Iterator[LogEntry]: ...
    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None: ...


def _integrity(message: str, advice: str | None = None) -> LogIntegrityError:
    return LogIntegrityError(message, advice=advice)


def _open(note: str, verifier: NoteVerifier, what: str) -> Checkpoint:
    try:
        return open_checkpoint(note, verifier, origin=verifier.name)
    except (VerificationError, RecordError) as e:
        raise _integrity(f"{what}: {e}") from e


class AuditState:
    """The monitor's memory: the last verified checkpoint note, and evidence."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)  # an existing folder may have been wider

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / _CHECKPOINT_FILE

    def load(self, verifier: NoteVerifier) -> tuple[str, Checkpoint] | None:
        """The stored note, verified again (the file is ours, but disks lie too)."""
        try:
            note = self.checkpoint_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return note, _open(note, verifier, f"stored checkpoint {self.checkpoint_path}")

    def store(self, note: str) -> None:
        _atomic_write(self.checkpoint_path, note)

    def save_evidence(self, label: str, notes: dict[str, str]) -> Path:
        folder = self.dir / _EVIDENCE_DIR
        folder.mkdir(mode=0o700, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = folder / f"{stamp}-{label}"
        target.mkdir(mode=0o700)
        for name, note in notes.items():
            _atomic_write(target / f"{name}.note", note)
        return target


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- verify --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    checkpoint: Checkpoint
    note: str
    previous: Checkpoint | None

    @property
    def body(self) -> str:
        """The checkpoint text exactly as signed."""
        return parse_signed_note(self.note)[0]


def verify(client: LogSource, verifier: NoteVerifier, state: AuditState) -> VerifyOutcome:
    """Check the latest checkpoint against the log key and the stored one; store it."""
    note = client.checkpoint()
    new = _open(note, verifier, "latest checkpoint")
    stored = state.load(verifier)
    if stored is None:
        state.store(note)
        return VerifyOutcome(new, note, None)
    old_note, old = stored
    if new.size < old.size:
        folder = state.save_evidence(
            f"rollback-{old.size}-to-{new.size}", {"stored": old_note, "served": note}
        )
        raise _integrity(
            f"rollback: the log served checkpoint {new.size} after this monitor verified "
            f"checkpoint {old.size}; both notes saved in {folder}",
            advice="report the evidence to the regulator; do not trust this gateway's answers",
        )
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            folder = state.save_evidence(f"fork-{new.size}", {"stored": old_note, "served": note})
            raise _integrity(
                f"fork: two different signed roots for tree size {new.size}; both notes "
                f"saved in {folder}",
                advice="report the evidence to the regulator: the log signed two histories",
            )
    elif old.size > 0:
        proof = client.consistency_proof(old.size, new.size)
        try:
            merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
        except LogIntegrityError as e:
            folder = state.save_evidence(
                f"inconsistent-{old.size}-{new.size}", {"stored": old_note, "served": note}
            )
            raise _integrity(
                f"checkpoint {new.size} is not consistent with checkpoint {old.size}: {e}; "
                f"both notes saved in {folder}",
                advice="report the evidence to the regulator: the log rewrote its history",
            ) from e
    state.store(note)
    return VerifyOutcome(new, note, old)


# --- prove ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProveOutcome:
    record_id: str
    leaf_index: int
    tree_size: int


def prove(client: LogSource, checkpoint: Checkpoint, record_id: str) -> ProveOutcome:
    """Prove ``record_id`` is in the verified tree ``checkpoint``."""
    entry = client.get(record_id)
    entry_bytes = dsse.pae(entry.envelope.payload_type, entry.envelope.payload)
    if hashlib.sha256(entry_bytes).hexdigest() != record_id:
        raise _integrity(f"record {record_id}: the gateway returned bytes with another record id")
    if entry.log_index >= checkpoint.size:
        raise RecordError(
            f"record {record_id} is at log index {entry.log_index}, after the verified "
            f"checkpoint of size {checkpoint.size}",
            advice="the next checkpoint will cover it: retry in a few seconds",
        )
    proof = client.inclusion_proof(record_id, checkpoint.size)
    if (proof.leaf_index, proof.tree_size) != (entry.log_index, checkpoint.size):
        raise _integrity(
            f"record {record_id}: proof is for leaf {proof.leaf_index} of {proof.tree_size}, "
            f"not leaf {entry.log_index} of {checkpoint.size}"
        )
    merkle.verify_inclusion(
        proof.leaf_index,
        checkpoint.size,
        merkle.leaf_hash(entry_bytes),
        proof.hashes,
        checkpoint.root_hash,
    )
    return ProveOutcome(record_id, proof.leaf_index, checkpoint.size)


# --- replay --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErasedEntry:
    """A redactable record served without its disclosures: its subject and free text
    are gone from the gateway; its entry, signature and proofs still verify."""

    log_index: int
    record_id: str
    # The erasure record that names it; None when none up to the checkpoint does (its
    # origin had erased it before this gateway received it, and the erasure record
    # lies beyond the checkpoint).
    erased_by: str | None


@dataclass
class ReplayOutcome:
    tree_size: int
    members: int = 0  # member ids with a member record, folded in log order
    by_type: Counter[str] = field(default_factory=Counter)
    signers: set[str] = field(default_factory=set)
    trusted_on_first_use: list[str] = field(default_factory=list)
    erased: list[ErasedEntry] = field(default_factory=list)  # in log order


class _Keys:
    """Every key each member held in any member record seen so far, in log order; a
    key counts for the one member that owns it (docs/PROTOCOL.md §3, MemberRecord)."""

    def __init__(self, log_key: VerifyingKey, trust_domain: str) -> None:
        self.log_key = log_key
        self.trust_domain = trust_domain
        self.directory = MemberDirectory()

    def learn(self, record_id: str, record: MemberRecord) -> None:
        self.directory.apply(record_id, record)

    def of(self, member_id: str) -> list[VerifyingKey]:
        return [VerifyingKey.from_raw(k) for k in self.directory.keys_ever(member_id)]


def _signed_by(env: dsse.Envelope, owners: dict[VerifyingKey, str]) -> str | None:
    if not owners:
        return None
    try:
        return owners[dsse.verify(env, owners)]
    except VerificationError:
        return None


def _signer_of(env: dsse.Envelope, keys: _Keys) -> str | None:
    """The member whose key signed ``env`` (``""``: the log's own key), or None.

    Any signature by the record's issuer counts (the issuer is read from the payload to
    choose its keys; the keyid is only a hint), as the gateway verifies it.
    """
    if env.payload_type in MEMBER_RECORD_TYPES and _signed_by(env, {keys.log_key: ""}) == "":
        return ""
    try:
        issuer = open_payload(env.payload_type, env.payload).issuer
    except GatewayError:
        return None
    return _signed_by(env, dict.fromkeys(keys.of(issuer), issuer))


def replay(
    client: LogSource,
    checkpoint: Checkpoint,
    verifier: NoteVerifier,
    *,
    trust_domain: str,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayOutcome:
    """Rebuild the tree of ``checkpoint`` from its entries and re-verify every record.

    Signature rules, applied in log order (a payload is parsed only once its signature
    verified, except the self-signed peer record of the last rule, which carries the
    key that must verify it):

    - a member record issued in the log's own trust domain (``trust_domain``) must be
      signed by the log's key, the one the monitor was given: the gateway vouches for
      its members and for itself with it;
    - every other record must be signed by a key its signer held in *any* member record
      seen before it (validity windows are not enforced: the log records no trusted
      signing time, and a key that was once registered was vouched for), and the
      statement's issuer must be that signer;
    - a peer gateway's own member record, signed by a key no record named before, is
      accepted on first use when it is self-issued and signed by a key it lists (the
      gateway checked it against the peer's configured key; the monitor cannot).

    Erasure (protocol revision 4): a redactable record served without its disclosures
    still verifies (its signature covers commitments only) and is reported in
    ``erased``; one served with them must match its commitments. A record that an
    erasure in the log names must come without them: a gateway deletes them when it
    appends the erasure, so one that still serves them fails the replay.
    """
    outcome = ReplayOutcome(checkpoint.size)
    keys = _Keys(verifier.key, trust_domain)
    tree = merkle.CompactRange()
    erasures = _Erasures()
    expected = 0
    for entry in client.entries(0, checkpoint.size):
        index = entry.log_index
        if index != expected:
            raise _integrity(f"entry {expected}: the gateway sent entry {index} instead")
        env = entry.envelope
        entry_bytes = dsse.pae(env.payload_type, env.payload)
        if hashlib.sha256(entry_bytes).hexdigest() != entry.record_id:
            raise _integrity(
                f"entry {index}: record id {entry.record_id} is not the SHA-256 of the entry's "
                "bytes (the stored record was altered)"
            )
        tree.append(merkle.leaf_hash(entry_bytes))
        signer, statement = _verify_entry(index, env, entry.record_id, keys, outcome)
        erasures.see(index, entry.record_id, statement, disclosed=bool(env.disclosures))
        outcome.by_type[env.payload_type] += 1
        outcome.signers.add(signer)
        expected += 1
        if on_progress is not None:
            on_progress(expected)
    if expected != checkpoint.size:
        raise _integrity(
            f"entry {expected}: the gateway sent {expected} of {checkpoint.size} entries"
        )
    if tree.root() != checkpoint.root_hash:
        raise _integrity(
            f"the root rebuilt from {checkpoint.size} entries does not match checkpoint "
            f"{checkpoint.size}: the log's entries were altered"
        )
    outcome.members = sum(1 for _ in keys.directory.members())
    outcome.erased = erasures.report(client, checkpoint.size)
    return outcome


class _Erasures:
    """The records erasures name, and the redactable records served without their
    disclosures, as the replay meets them (either may come first in a replica's log).

    Only those two sets are kept, not every record served with disclosures: a named
    record that was not served redacted is fetched again at the end (none, from a
    gateway that keeps the protocol)."""

    def __init__(self) -> None:
        self.named: dict[str, str] = {}  # record id -> the first erasure naming it
        self.redacted: list[tuple[int, str]] = []

    def see(self, index: int, record_id: str, statement: Statement, *, disclosed: bool) -> None:
        if isinstance(statement, Erasure):
            for named in statement.record_ids:
                self.named.setdefault(named, record_id)
        if getattr(statement, "redacted", False):
            self.redacted.append((index, record_id))
        elif disclosed and record_id in self.named:
            raise _kept(index, record_id, self.named[record_id])

    def report(self, client: LogSource, size: int) -> list[ErasedEntry]:
        served_redacted = {rid for _, rid in self.redacted}
        for named, erasure in self.named.items():
            if named in served_redacted:
                continue
            try:
                entry = client.get(named)
            except ClientError as e:
                if e.code is not grpc.StatusCode.NOT_FOUND:
                    raise
                continue  # not in this log: the erasure came from a gateway that held it
            if entry.log_index < size and entry.envelope.disclosures:
                raise _kept(entry.log_index, named, erasure)
        return [ErasedEntry(i, rid, self.named.get(rid)) for i, rid in self.redacted]


def _kept(index: int, record_id: str, erasure: str) -> LogIntegrityError:
    return _integrity(
        f"entry {index}: record {record_id} is named by erasure {erasure}, but the gateway "
        "still serves its disclosures",
        advice="report it to the regulator: the gateway keeps personal data it erased",
    )


def _verify_entry(
    index: int, env: dsse.Envelope, record_id: str, keys: _Keys, outcome: ReplayOutcome
) -> tuple[str, Statement]:
    """The entry's signer and its statement (a redactable record served without its
    disclosures reads as a redacted statement)."""
    signer = _signer_of(env, keys)
    if signer is None and env.payload_type in MEMBER_RECORD_TYPES:
        return _first_use(index, env, record_id, keys, outcome)
    if signer is None:
        raise _integrity(f"entry {index}: no key its signer ever held verifies record {record_id}")
    try:
        statement = decode_envelope(env)
    except GatewayError as e:
        raise _integrity(f"entry {index}: signed payload does not parse: {e}") from e
    if signer == "":
        if not isinstance(statement, MemberRecord):
            raise _integrity(f"entry {index}: the log key signed a non-member record")
        issuer = MemberId.parse(statement.issuer)
        if issuer.role is not Role.GATEWAY or issuer.trust_domain != keys.trust_domain:
            raise _integrity(
                f"entry {index}: member record signed by the log key names issuer "
                f"{statement.issuer}, not a gateway of {keys.trust_domain}"
            )
        signer = statement.issuer
    elif statement.issuer != signer:
        raise _integrity(f"entry {index}: issuer {statement.issuer} is not the signer {signer}")
    elif (
        isinstance(statement, MemberRecord)
        and MemberId.parse(statement.issuer).trust_domain == keys.trust_domain
    ):
        raise _integrity(
            f"entry {index}: member record {record_id} of {keys.trust_domain} is not signed "
            "by the log's key"
        )
    if isinstance(statement, MemberRecord):
        keys.learn(record_id, statement)
    return signer, statement


def _first_use(
    index: int, env: dsse.Envelope, record_id: str, keys: _Keys, outcome: ReplayOutcome
) -> tuple[str, Statement]:
    try:
        record = decode_envelope(env)
    except GatewayError as e:
        raise _integrity(f"entry {index}: member record does not parse: {e}") from e
    assert isinstance(record, MemberRecord)
    # Parsed before verification on purpose: the record names the key that must verify it.
    member = MemberId.parse(record.member_id)
    own = [VerifyingKey.from_raw(k.public_key) for k in record.keys]
    if (
        record.issuer != record.member_id
        or member.role is not Role.GATEWAY
        or member.trust_domain == keys.trust_domain
        or not own
    ):
        raise _integrity(f"entry {index}: no known key verifies member record {record_id}")
    try:
        dsse.verify(env, own)
    except VerificationError as e:
        raise _integrity(f"entry {index}: peer gateway record {record_id}: {e}") from e
    keys.learn(record_id, record)
    outcome.trusted_on_first_use.append(record.member_id)
    return record.member_id, record


# --- cosign --------------------------------------------------------------------------


def cosign(
    client: LogSource,
    verified: VerifyOutcome,
    signer: CosignatureSigner,
    *,
    timestamp: int | None = None,
) -> str:
    """Cosign a verified checkpoint and hand the cosignature to the gateway."""
    line = signer.cosign(verified.body, int(time.time()) if timestamp is None else timestamp)
    client.add_cosignature(verified.body, line)
    return line
