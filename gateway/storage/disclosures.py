"""The erasable store: disclosures, erasures and the keyed lookup index (issue 18).

The log (``records``) holds what was signed: for a redactable record, commitments only.
The values themselves live here, in ``disclosures``, and a subject is found through
``listings.subject_key``, a keyed digest of its lookup key (the values of a listing's
disclosures also sit beside it, in ``listings.disclosed``, for lookups). Erasure deletes
all of them and remembers the erased record ids in ``erased`` (``audit replay`` and
retention read it). On SQLite the connection runs with
``secure_delete=ON`` (gateway.storage.db) and an erasure ends with a WAL checkpoint
that truncates the WAL, so no copy stays in a free page or an old frame.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, or_, select, update

from gateway.core.disclosure import Disclosure, Group
from gateway.storage.models import Base
from gateway.storage.walcheck import checkpoint

__all__ = [
    "DISCLOSURE_FIELDS",
    "SUBJECT_INDEX_INFO",
    "SubjectIndex",
    "digest_clear_keys",
    "disclosures_for",
    "erase",
    "erased_among",
    "truncate_wal",
]

# The HKDF info naming the lookup index's key (SigningKey.derive_secret).
SUBJECT_INDEX_INFO = b"alliance-gateway/subject-index/v1"
_CHUNK = 500
# How long a WAL truncation waits for readers and writers before it answers busy.
_TRUNCATE_WAIT_MS = 250
_TABLES = Base.metadata.tables
_DISCLOSURES = _TABLES["disclosures"]
# The columns of a stored disclosure, in the order the append path writes them.
DISCLOSURE_FIELDS = ("log_index", "grp", "salt", "value")
_ERASED = _TABLES["erased"]
_LISTINGS = _TABLES["listings"]
_RECORDS = _TABLES["records"]
# Disclosures are keyed by their record's log index: a record id is found in ``records``.
_BY_RECORDS = (
    select(_RECORDS.c.record_id, _DISCLOSURES.c.grp, _DISCLOSURES.c.salt, _DISCLOSURES.c.value)
    .join_from(_RECORDS, _DISCLOSURES, _DISCLOSURES.c.log_index == _RECORDS.c.log_index)
    .where(_RECORDS.c.record_id.in_(bindparam("ids", expanding=True)))
)
_HELD = select(_RECORDS.c.record_id, _RECORDS.c.log_index).where(
    _RECORDS.c.record_id.in_(bindparam("ids", expanding=True))
)
_ERASED_AMONG = select(_ERASED.c.record_id).where(
    _ERASED.c.record_id.in_(bindparam("ids", expanding=True))
)


class SubjectIndex:
    """The lookup index's key: keyed BLAKE2b-128 (RFC 7693 keyed mode, a MAC) of a
    subject's lookup key (``uscc:<code>`` / ``person:<hex>``) under a secret of this
    gateway, in hex (a third of HMAC-SHA-256's cost, paid per subject of every check).

    The index answers a check in one query without holding a credit code or person
    token in the clear; without the secret a digest cannot be tested against guesses."""

    def __init__(self, key: bytes) -> None:
        if not 32 <= len(key) <= 64:
            raise ValueError("the subject index key must be 32 to 64 bytes")
        self._key = key

    def digest(self, subject_key: str) -> str:
        return hashlib.blake2b(subject_key.encode(), key=self._key, digest_size=16).hexdigest()


def disclosures_for(
    conn: Connection, record_ids: Sequence[str]
) -> dict[str, tuple[Disclosure, ...]]:
    """The disclosures held for each record, in group order (records without: absent)."""
    found: dict[str, list[Disclosure]] = defaultdict(list)
    for i in range(0, len(record_ids), _CHUNK):
        rows = conn.execute(_BY_RECORDS, {"ids": list(record_ids[i : i + _CHUNK])})
        for rid, grp, salt, value in rows:
            found[rid].append(Disclosure(Group(grp), bytes(salt), bytes(value)))
    return {rid: tuple(sorted(ds, key=lambda d: d.group)) for rid, ds in found.items()}


def erased_among(conn: Connection, record_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for i in range(0, len(record_ids), _CHUNK):
        out.update(conn.execute(_ERASED_AMONG, {"ids": list(record_ids[i : i + _CHUNK])}).scalars())
    return out


def erase(conn: Connection, erasure_id: str, at: datetime, record_ids: Sequence[str]) -> int:
    """Delete the named records' disclosures and the index entries of named listings,
    of the named records this gateway holds; remember those ids (a second erasure of
    one record changes nothing). Returns how many disclosures were deleted.

    A named record not held is left alone: whoever holds it checks the erasure against
    it, and a record replicated later comes from an origin that applied it."""
    held: dict[str, int] = {}
    for i in range(0, len(record_ids), _CHUNK):
        rows = conn.execute(_HELD, {"ids": list(record_ids[i : i + _CHUNK])})
        held.update((str(rid), int(index)) for rid, index in rows)
    record_ids = [rid for rid in record_ids if rid in held]
    deleted = 0
    known = erased_among(conn, record_ids)
    fresh = [rid for rid in record_ids if rid not in known]
    for i in range(0, len(record_ids), _CHUNK):
        chunk = list(record_ids[i : i + _CHUNK])
        indexes = [held[rid] for rid in chunk]
        deleted += conn.execute(
            delete(_DISCLOSURES).where(_DISCLOSURES.c.log_index.in_(indexes))
        ).rowcount
        conn.execute(
            update(_LISTINGS)
            .where(_LISTINGS.c.listing_id.in_(chunk))
            .values(subject_key=None, disclosed=None)
        )
    if fresh:
        conn.execute(
            _ERASED.insert(),
            [{"record_id": rid, "erasure_id": erasure_id, "erased_at": at} for rid in fresh],
        )
    return deleted


def truncate_wal(engine: Engine) -> bool:
    """SQLite: copy the WAL into the database and truncate it to zero bytes, so the
    frames that held erased values are gone from disk; True when done (always
    elsewhere).

    False when SQLite answers busy: a reader still holds a snapshot that needs the old
    pages (a backup, a long query), or a writer is active. The erased values then stay
    on disk until a later call succeeds, so the caller tries again. It waits at most
    ``_TRUNCATE_WAIT_MS`` for them (not the connection's busy timeout: the sequencer
    calls this)."""
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        return not checkpoint(conn, "TRUNCATE", wait_ms=_TRUNCATE_WAIT_MS).busy


def digest_clear_keys(engine: Engine, index: SubjectIndex, *, batch: int = 1000) -> int:
    """Replace lookup keys stored in the clear (before migration 0010) by their digests;
    returns how many. Runs at every start; after the first it finds none."""
    clear = or_(_LISTINGS.c.subject_key.like("uscc:%"), _LISTINGS.c.subject_key.like("person:%"))
    done = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(_LISTINGS.c.listing_id, _LISTINGS.c.subject_key).where(clear).limit(batch)
            ).all()
            for listing_id, key in rows:
                conn.execute(
                    update(_LISTINGS)
                    .where(_LISTINGS.c.listing_id == listing_id)
                    .values(subject_key=index.digest(key))
                )
        done += len(rows)
        if len(rows) < batch:
            return done
