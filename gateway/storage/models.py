"""SQLAlchemy 2 typed models: the schema every migration must produce.

Records keep the received payload bytes verbatim; the fold's state (listings,
sanctions, members) is a projection kept up to date by the sequencer in the same
transaction as the append, so lookups never recompute it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached storage")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_stored_time(value: object) -> object:
    """``value`` exactly as a UtcDateTime column binds it on SQLite (UTC, no offset,
    ``YYYY-MM-DD HH:MM:SS.ffffff``), for rows handed to the driver as is: one C call
    where UtcDateTime and SQLAlchemy's SQLite type take two Python calls and a
    ``%``-format of seven fields (tests/unit/test_stored_time.py compares the two)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValueError("a naive datetime (or not a datetime) reached storage")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class Base(DeclarativeBase):
    pass


class RecordRow(Base):
    """One accepted record, at its position in this gateway's log."""

    __tablename__ = "records"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload_type: Mapped[str] = mapped_column(String(128))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON list of {"keyid": ..., "sig": base64}: the envelope's signatures as received.
    signatures: Mapped[str] = mapped_column(Text)
    signer: Mapped[str] = mapped_column(String(300))
    # The log origin the record was first accepted into (ours, or a peer's when replicated).
    origin: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())

    # The records of one payload type in log order (calendars, policies, government
    # measures, reports): an index range, not a scan of the log.
    __table_args__ = (Index("ix_records_type_index", "payload_type", "log_index"),)


class LogStateRow(Base):
    """One row: the log's size. Every append batch updates it first, so the row lock
    serializes sequencers (several replicas, or an operator command) on any backend."""

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)


class LogNodeRow(Base):
    """Hash of the complete subtree over leaves [idx*2^level, (idx+1)*2^level)."""

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class CheckpointRow(Base):
    """Every checkpoint this log signed, kept so none is ever contradicted."""

    __tablename__ = "checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CosignatureRow(Base):
    __tablename__ = "cosignatures"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    cosigner: Mapped[str] = mapped_column(String(300), primary_key=True)
    signature_line: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class MemberRow(Base):
    """Current member record per member id (newest issued_at, then record id)."""

    __tablename__ = "members"

    member_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    role: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[int] = mapped_column(SmallInteger)
    region_code: Mapped[str] = mapped_column(String(6))
    # AuthorityScope of an authority (NULL for other roles); since migration 0006.
    scope: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class ListingRow(Base):
    __tablename__ = "listings"

    listing_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The lookup index (migration 0010): a keyed digest of the subject's key (hex
    # HMAC-SHA-256 under a secret derived from the gateway's key), never the credit code
    # or person token itself; NULL once the listing's disclosures are erased.
    subject_key: Mapped[str | None] = mapped_column(String(80), index=True, nullable=True)
    issuer: Mapped[str] = mapped_column(String(300))
    list_kind: Mapped[int] = mapped_column(SmallInteger)
    conduct: Mapped[int] = mapped_column(SmallInteger)
    region_code: Mapped[str] = mapped_column(String(6))
    listed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    deadline: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    step: Mapped[int] = mapped_column(SmallInteger)
    in_force: Mapped[bool] = mapped_column(Boolean)
    log_index: Mapped[int] = mapped_column(BigInteger)
    # Due process (gateway.core.lifecycle), since migration 0006: the correction deadline
    # in force (NULL while reported or while a dispute is open), when the listing was
    # identified (NULL: reported), and since when a dispute is open (NULL: none).
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    identified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    dispute_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Publication periods (issue 18), since migration 0009: the earliest closing step's
    # effective_at (NULL: in force).
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    # Revision 4 (migration 0010): the values of the listing's disclosures in group order,
    # concatenated: appended to the payload they read as the listing in the clear, so a
    # lookup answers from this one row. Erasable: NULL once erased (or never disclosed).
    disclosed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)

    __table_args__ = (
        Index("ix_listings_filter", "list_kind", "conduct", "region_code"),
        Index("ix_listings_due", "in_force", "step", "deadline"),
        # Escalation and overdue counts: in force, not yet escalated, deadline in force passed.
        Index("ix_listings_due_at", "in_force", "step", "due_at"),
    )


class StepRow(Base):
    """Each lifecycle step applied to a listing (the listing's history)."""

    __tablename__ = "listing_steps"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[int] = mapped_column(SmallInteger)
    effective_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SanctionRow(Base):
    """The winning confirmation per (listing, platform, measure, measure_other)."""

    __tablename__ = "sanctions"

    listing_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(300), primary_key=True)
    measure: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    measure_other: Mapped[str] = mapped_column(String(256), primary_key=True)
    action: Mapped[int] = mapped_column(SmallInteger)
    effective_at: Mapped[datetime] = mapped_column(UtcDateTime())
    record_id: Mapped[str] = mapped_column(String(64))


class DisclosureRow(Base):
    """A redactable record's disclosure (protocol revision 4), kept apart from the log:
    the only place the gateway holds a subject's identity and free text in the clear.
    Erasure deletes the rows; the record and its log leaf stay.

    Keyed by the record's log index (migration 0012; was its record id): consecutive
    records' disclosures sit side by side, so an append writes a few pages at the end
    of the table instead of one page per record at random places (docs/PERFORMANCE.md,
    "Key layouts"). On SQLite the table is the primary key's tree itself (WITHOUT ROWID)."""

    __tablename__ = "disclosures"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    grp: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = ({"sqlite_with_rowid": False},)


class ErasedRow(Base):
    """A held record whose disclosures an erasure record named and deleted here."""

    __tablename__ = "erased"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The erasure record that named it, and that record's effective time.
    erasure_id: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RetentionRecordRow(Base):
    """A redactable record issued in this gateway's trust domain, with the listing it
    belongs to and its kind (since migration 0011): what retention erases once that
    listing closed long enough ago (``gateway.service.retention``). Filled from the log
    by the retention service; rows of records whose disclosures are gone are deleted."""

    __tablename__ = "retention_records"

    log_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(64))
    listing_id: Mapped[str] = mapped_column(String(64))
    # gateway.service.retention.RecordKind: listing, status change, confirmation, measure.
    kind: Mapped[int] = mapped_column(SmallInteger)

    __table_args__ = (Index("ix_retention_records_kind", "kind", "log_index"),)


class PendingRow(Base):
    """A status change or confirmation whose listing has not arrived yet."""

    __tablename__ = "pending"

    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(64), index=True)


class AccessLogRow(Base):
    """The access log of schema 0003 (subjects in clear): converted to the keyed,
    compact tables below by the gateway at its first start on schema 0005, then empty."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    member_id: Mapped[str] = mapped_column(String(300))
    rpc: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text)


class AccessMemberRow(Base):
    """A small number for each member id the access log names (rows stay short)."""

    __tablename__ = "access_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(300), unique=True)


class AccessDayRow(Base):
    """One member's reads through one RPC on one UTC day: calls, items, first and last."""

    __tablename__ = "access_days"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since 1970-01-01
    member_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    rpc: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AccessReadRow(Base):
    """One call that read subjects or records: who, when (second of its UTC day), which
    RPC, and what, as 16-byte keyed digests one after the other (docs/OPERATIONS.md,
    "Access log")."""

    __tablename__ = "access_reads"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[int] = mapped_column(Integer, index=True)
    member_no: Mapped[int] = mapped_column(Integer)
    second: Mapped[int] = mapped_column(Integer)
    rpc: Mapped[int] = mapped_column(SmallInteger)
    digests: Mapped[bytes] = mapped_column(LargeBinary)


class PeerCursorRow(Base):
    """Replication from one peer gateway: how far we are, what we verified, how it goes.

    ``next_index`` and ``range_hashes`` (the compact range, 32 bytes per hash, largest
    subtree first) change only in the transaction that appends the peer's records, so
    a crash neither loses nor repeats entries.
    """

    __tablename__ = "peer_cursors"

    peer: Mapped[str] = mapped_column(String(300), primary_key=True)
    origin: Mapped[str] = mapped_column(String(300))
    next_index: Mapped[int] = mapped_column(BigInteger)
    range_hashes: Mapped[bytes] = mapped_column(LargeBinary)
    checkpoint_size: Mapped[int] = mapped_column(BigInteger)
    checkpoint_root: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    checkpoint_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    caught_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class FederationEvidenceRow(Base):
    """Two signed checkpoints of a peer's log that contradict each other, kept for the
    regulator: the one we had accepted, the conflicting one, and the proof sent."""

    __tablename__ = "federation_evidence"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    peer: Mapped[str] = mapped_column(String(300), index=True)
    origin: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    accepted_note: Mapped[str] = mapped_column(Text)
    conflicting_note: Mapped[str] = mapped_column(Text)
    # The consistency proof as sent: base64 hashes, one per line.
    proof: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LogDamageRow(Base):
    """A range of the log found missing or altered (``gateway.core.logcheck.Damage``).

    Reads that meet it answer ``DATA_LOSS`` until it is cleared: after a restore, a clean
    ``alliance-gateway check-log --record`` replaces these rows with its own findings.
    """

    __tablename__ = "log_damage"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(SmallInteger)
    first_index: Mapped[int] = mapped_column(BigInteger)
    end_index: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text)
    found_by: Mapped[str] = mapped_column(String(32))
    found_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScrubStateRow(Base):
    """One row: where the background scrubber is in its round over the log.

    A round checks ``[0, round_end)``, ``round_end`` being the log's size when the round
    began; ``next_index`` is the first entry not yet checked in it.
    """

    __tablename__ = "scrub_state"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    next_index: Mapped[int] = mapped_column(BigInteger)
    round_end: Mapped[int] = mapped_column(BigInteger)
    rounds_completed: Mapped[int] = mapped_column(BigInteger)
    round_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_round_completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ReportDraftRow(Base):
    """When a draft of a month's report was last written (``report --draft``).

    Local bookkeeping of the report's state (due, drafted, finalised, submitted), not a
    record: a draft is signed by no one and never leaves the gateway.
    """

    __tablename__ = "report_drafts"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    # 2-digit reporting unit, or "" for all units.
    unit: Mapped[str] = mapped_column(String(2), primary_key=True)
    drafted_at: Mapped[datetime] = mapped_column(UtcDateTime())
