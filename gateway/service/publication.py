"""The public feed's use cases: keep the index at the newest checkpoint, serve pages,
entries and their proofs.

``PublicFeed`` folds the log into ``gateway.core.public_index.PublicIndex`` up to the
newest signed checkpoint (``refresh``, run by its own thread every ``interval_s`` and
when woken), so every page names the checkpoint it was built from and every entry on it
is provable against that checkpoint. Only listings, closing and IDENTIFIED status
changes, member records, alliance policies and erasures are read; nothing a member
alone may read (sanctions, access, other statements) is reachable from here.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway import codec
from gateway.core.disclosure import Group
from gateway.core.notes import NoteVerifier
from gateway.core.public_index import IndexedRecord, PageEntry, PublicIndex
from gateway.core.public_proof import VerifiedEntry, verify_entry_proof
from gateway.core.publication import entry_fields
from gateway.core.statements import (
    ALLIANCE_POLICY_V1,
    ERASURE_V1,
    LISTING_V1,
    LISTING_V2,
    MEMBER_RECORD_TYPES,
    STATUS_CHANGE_V1,
    STATUS_CHANGE_V2,
    AlliancePolicy,
    Erasure,
    Listing,
    MemberRecord,
    StatusChange,
)
from gateway.errors import GatewayError, NotFoundError, VerificationError
from gateway.service.audit import AuditService
from gateway.service.ledger import Clock, utc_now
from gateway.storage import SqlStore, StoredCheckpoint, StoredRecord

logger = logging.getLogger(__name__)

PUBLIC_TYPES = (
    LISTING_V1,
    LISTING_V2,
    STATUS_CHANGE_V1,
    STATUS_CHANGE_V2,
    ALLIANCE_POLICY_V1,
    ERASURE_V1,
    *sorted(MEMBER_RECORD_TYPES),
)
_BATCH = 2000
MAX_SEARCH_RESULTS = 50


@dataclass(frozen=True, slots=True)
class FeedEntry:
    change_index: int
    log_index: int
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class FeedPage:
    checkpoint: StoredCheckpoint
    entries: list[FeedEntry]
    since: int
    next_since: int
    more: bool


class PublicFeed:
    def __init__(
        self,
        store: SqlStore,
        audit: AuditService,
        *,
        trust_domain: str,
        log_verifier: NoteVerifier,
        clock: Clock = utc_now,
        interval_s: float = 1.0,
    ) -> None:
        self._store = store
        self._audit = audit
        self._verifier = log_verifier
        self._clock = clock
        self._interval_s = interval_s
        self._index = PublicIndex(trust_domain)
        self._checkpoint: StoredCheckpoint | None = None
        self._fields_cache: dict[str, tuple[tuple[int, int, object], dict[str, str]]] = {}
        self._lock = threading.RLock()  # the index: refreshed and read under it
        self._ready = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the index ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="public-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """A checkpoint was signed: refresh soon."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except GatewayError as e:
                logger.error("public feed: the index stays at its checkpoint: %s", e)
            except Exception:
                logger.exception("public feed: refresh failed; retrying")
            self._wake.wait(self._interval_s)
            self._wake.clear()

    def refresh(self) -> int:
        """Fold the log up to its newest checkpoint; returns the index's tree size."""
        latest = self._store.latest_checkpoint()
        if latest is None or (self._checkpoint and latest.tree_size <= self._index.size):
            return self._index.size
        start = self._index.size
        while start < latest.tree_size:
            rows = self._store.records_of_types_range(
                PUBLIC_TYPES, start, latest.tree_size, limit=_BATCH
            )
            end = rows[-1].log_index + 1 if len(rows) == _BATCH else latest.tree_size
            records = [_indexed(r) for r in rows]
            with self._lock:
                self._index.apply(records, end)
            start = end
        with self._ready:
            self._checkpoint = latest
            self._ready.notify_all()
        return latest.tree_size

    def wait_for_size(self, size: int, timeout_s: float) -> bool:
        """Wait until the index covers ``size`` entries (tests, benchmarks)."""
        with self._ready:
            return self._ready.wait_for(
                lambda: self._checkpoint is not None and self._index.size >= size,
                timeout=timeout_s,
            )

    def checkpoint(self) -> StoredCheckpoint:
        with self._lock:
            if self._checkpoint is None:
                raise NotFoundError(
                    "the public feed has no checkpoint yet", advice="retry in a few seconds"
                )
            return self._checkpoint

    # -- reads -------------------------------------------------------------------------

    def _fields(self, entry: PageEntry) -> dict[str, str]:
        # An entry's fields change with its change index (a removal, an identification),
        # with the member records (the deciding body's name) or an erasure (a step's
        # text) and, as time passes or a policy changes the
        # periods, with its status (an entry whose publication ended turns into a
        # tombstone with no record): cached on all three; the status is computed by
        # publication() at the time of every read, so the cache never outlives it.
        listing_id = entry.publication.listing_id
        key = (entry.change_index, self._index.generation, entry.publication.status)
        cached = self._fields_cache.get(listing_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        member = self._index.authority_record(listing_id)
        name = member[1].display_name if member else ""
        fields = entry_fields(entry.publication, authority_name=name)
        self._fields_cache[listing_id] = (key, fields)
        return fields

    def _entry(self, entry: PageEntry) -> FeedEntry:
        return FeedEntry(entry.change_index, entry.listing_index, self._fields(entry))

    def page(self, since: int, limit: int, *, unit: str | None, in_force_only: bool) -> FeedPage:
        now = self._clock()
        with self._lock:
            checkpoint = self.checkpoint()
            found, next_since, more = self._index.page(
                since, limit, at=now, unit=unit, in_force_only=in_force_only
            )
            entries = [self._entry(e) for e in found]
        return FeedPage(checkpoint, entries, since, next_since, more)

    def subject(self, uscc: str) -> tuple[StoredCheckpoint, list[FeedEntry]]:
        now = self._clock()
        with self._lock:
            checkpoint = self.checkpoint()
            return checkpoint, [self._entry(e) for e in self._index.by_uscc(uscc, now)]

    def search_names(self, text: str) -> list[tuple[str, str]]:
        """(credit code, name) of published subjects whose name contains ``text``."""
        with self._lock:
            codes = self._index.search_name(text, MAX_SEARCH_RESULTS, self._clock())
            return [(c, self._index.name_of(c)) for c in codes]

    def entry(self, record_id: str) -> tuple[StoredCheckpoint, FeedEntry]:
        with self._lock:
            checkpoint = self.checkpoint()
            found = self._index.entry(record_id, self._clock())
            if found is None:
                raise NotFoundError(f"record_id: no published entry {record_id}")
            return checkpoint, self._entry(found)

    def proof(self, record_id: str, tree_size: int = 0) -> dict[str, Any]:
        """The proof document of a published entry against the checkpoint of
        ``tree_size`` (0: the index's), as docs/PROTOCOL.md "Public feed" lays it out."""
        with self._lock:
            checkpoint = self.checkpoint()
            found = self._index.entry(record_id, self._clock())
            if found is None:
                raise NotFoundError(f"record_id: no published entry {record_id}")
            size = tree_size or checkpoint.tree_size
            if size > checkpoint.tree_size:
                raise NotFoundError(
                    f"tree_size: the feed is at checkpoint {checkpoint.tree_size}, not {size}"
                )
            fields = self._fields(found)
            member = self._index.authority_record(record_id)
            reporter = self._index.reporter_record(record_id)
            reporter_gateway = self._index.reporter_gateway_record(record_id, size)
            remover = self._index.remover_record(record_id)
        note = self._audit.checkpoint_note(size)
        roles = [("listing", record_id)]
        if fields["identification_record_id"]:
            roles.append(("identification", fields["identification_record_id"]))
        if fields["removal_record_id"]:
            roles.append(("removal", fields["removal_record_id"]))
        if member is not None:
            roles.append(("authority", member[0]))
        if reporter is not None:
            roles.append(("reporter", reporter[0]))
        if reporter_gateway is not None:
            roles.append(("reporter_gateway", reporter_gateway[0]))
        elif reporter is not None and not self._index.own_member(reporter[1].member_id):
            raise NotFoundError(
                f"tree_size: the gateway record of {reporter[1].member_id}'s alliance is not "
                f"in the tree of size {size}",
                advice="ask for the proof at a later checkpoint",
            )
        if remover is not None:
            roles.append(("remover", remover[0]))
        records = self._store.records_by_ids([rid for _, rid in roles])
        leaves = []
        for role, rid in roles:
            stored = records.get(rid)
            if stored is None or stored.log_index >= size:
                raise NotFoundError(
                    f"tree_size: the {role} record of this entry is not in the tree of size {size}",
                    advice="ask for the proof at the checkpoint of the page the entry was on",
                )
            _, path = self._audit.inclusion_proof(stored.log_index, size, entry_read=True)
            leaves.append(_leaf(role, stored, path))
        return {
            "record_id": record_id,
            "tree_size": size,
            "checkpoint": note,
            "entry": fields,
            "leaves": leaves,
        }

    def verify(self, doc: dict[str, Any], at: datetime | None = None) -> VerifiedEntry:
        """Check a proof document as any reader would (the search page shows the result)."""
        return verify_entry_proof(
            doc, self._verifier, decode=codec.decode_public, at=at or self._clock()
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)


def _indexed(r: StoredRecord) -> IndexedRecord:
    stmt = codec.decode_statement(r.payload_type, r.payload, r.disclosures)
    if not isinstance(stmt, Listing | StatusChange | MemberRecord | AlliancePolicy | Erasure):
        raise VerificationError(f"record {r.record_id}: {r.payload_type} is not a public type")
    return IndexedRecord(r.log_index, r.record_id, stmt, tuple(k for k, _ in r.signatures))


def _leaf(role: str, r: StoredRecord, path: list[bytes]) -> dict[str, Any]:
    return {
        "role": role,
        "log_index": r.log_index,
        "record_id": r.record_id,
        "envelope": {
            "payloadType": r.payload_type,
            "payload": base64.b64encode(r.payload).decode(),
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(sig).decode()}
                for keyid, sig in r.signatures
            ],
            # The values the published fields come from, each checkable against the
            # commitment the signed payload holds (docs/PROTOCOL.md, 8.4).
            "disclosures": [
                {
                    "group": int(d.group),
                    "salt": base64.b64encode(d.salt).decode(),
                    "value": base64.b64encode(d.value).decode(),
                }
                for d in r.disclosures
                if d.group is not Group.STORES  # the feed publishes no store
            ],
        },
        "audit_path": [base64.b64encode(h).decode() for h in path],
    }


__all__ = ["PUBLIC_TYPES", "FeedEntry", "FeedPage", "PublicFeed", "StoredCheckpoint"]
