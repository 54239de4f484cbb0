"""SQL storage (SQLAlchemy 2): the only package that imports sqlalchemy."""

from gateway.storage.access import AccessEntry, AccessStore, DayReads, LegacyRow, Read
from gateway.storage.checkpoints import StoredCheckpoint
from gateway.storage.db import check_schema, make_engine, migrate
from gateway.storage.listings import (
    ListingFilter,
    ListingProjection,
    SanctionProjection,
    SubjectListing,
)
from gateway.storage.log import StoredRecord
from gateway.storage.peers import PeerCursor, StoredEvidence
from gateway.storage.store import SqlStore, UnitOfWork
from gateway.storage.walcheck import WalCheckpointer, background_checkpoints_apply

__all__ = [
    "AccessEntry",
    "AccessStore",
    "DayReads",
    "LegacyRow",
    "ListingFilter",
    "ListingProjection",
    "PeerCursor",
    "Read",
    "SanctionProjection",
    "SqlStore",
    "StoredCheckpoint",
    "StoredEvidence",
    "StoredRecord",
    "SubjectListing",
    "UnitOfWork",
    "WalCheckpointer",
    "background_checkpoints_apply",
    "check_schema",
    "make_engine",
    "migrate",
]
