"""The members projection in SQL (``members``): each member's current record, as the
sequencer projects member records in a ``UnitOfWork`` (``MemberWrites``), and what
authorization reads of it within the same batch (scope, region, version).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from gateway.storage.base import UnitBase
from gateway.storage.models import Base

__all__ = ["MemberWrites"]

_MEMBERS = Base.metadata.tables["members"]


class MemberWrites(UnitBase):
    """The members' part of a ``UnitOfWork``."""

    def put_member(
        self,
        member_id: str,
        record_id: str,
        issued_at: datetime,
        role: int,
        status: int,
        region_code: str,
        scope: int | None = None,
    ) -> None:
        values = {
            "record_id": record_id,
            "issued_at": issued_at,
            "role": role,
            "status": status,
            "region_code": region_code,
            "scope": scope,
        }
        changed = self._c.execute(
            update(_MEMBERS).where(_MEMBERS.c.member_id == member_id).values(values)
        )
        if not changed.rowcount:
            self._c.execute(insert(_MEMBERS).values(member_id=member_id, **values))

    def get_member_version(self, member_id: str) -> tuple[datetime, str] | None:
        row = self._c.execute(
            select(_MEMBERS.c.issued_at, _MEMBERS.c.record_id).where(
                _MEMBERS.c.member_id == member_id
            )
        ).first()
        return None if row is None else (row[0], row[1])

    def member_scope(self, member_id: str) -> int | None:
        """AuthorityScope of the member's current record, as projected (None: not one)."""
        return self._c.execute(
            select(_MEMBERS.c.scope).where(_MEMBERS.c.member_id == member_id)
        ).scalar()

    def member_region(self, member_id: str) -> str | None:
        """Region code of the member's current record, as projected."""
        return self._c.execute(
            select(_MEMBERS.c.region_code).where(_MEMBERS.c.member_id == member_id)
        ).scalar()
