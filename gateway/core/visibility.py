"""Who sees a listing once its publication ended (issue 18): one rule for every view.

``visibility`` decides what a member's lookup (CheckSubjects, ListListings) shows of one
listing; the query service applies it and nothing else. Before the listing's
publication ends (``gateway.core.periods.publication_end``: the minimum period after a
correction or removal, the maximum period, a withdrawal at once) everyone sees it as
before. Afterwards:

======================  ====================================================
viewer                  sees
======================  ====================================================
authority, monitor,     ``FULL``: the listing and its whole history (until
gateway                 the retention end; retention is NOT built yet, so
                        for now for good)
platform still applying ``LIFT_ONLY``: the listing, not listed, with only its
a measure on it         own sanctions (what it needs to lift them)
any other platform      ``HIDDEN``: "not listed", no history
======================  ====================================================

"Still applying a measure" is the winning confirmation of one of its measures being
APPLIED (``gateway.core.obligations``: after a listing closes, such a platform owes a
LIFT). A platform that has lifted everything, answered NOT_APPLICABLE or never acted is
not concerned by the listing any more.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from datetime import datetime

from gateway.core.identifiers import MemberId, Role

__all__ = ["Visibility", "publication_ended", "visibility"]


class Visibility(enum.Enum):
    FULL = "full"
    LIFT_ONLY = "lift-only"
    HIDDEN = "hidden"


def publication_ended(end: datetime | None, at: datetime) -> bool:
    """Whether a publication ending at ``end`` (``None``: not ending) has ended at ``at``."""
    return end is not None and at >= end


def visibility(
    viewer: MemberId,
    *,
    publication_end: datetime | None,
    applying: Collection[str],
    at: datetime,
) -> Visibility:
    """What ``viewer`` sees of a listing whose publication ends at ``publication_end``
    (``gateway.core.periods``), at ``at``; ``applying``: the member ids of the platforms
    whose winning confirmation of some measure on it is APPLIED."""
    if viewer.role is not Role.PLATFORM or not publication_ended(publication_end, at):
        return Visibility.FULL
    if str(viewer) in applying:
        return Visibility.LIFT_ONLY
    return Visibility.HIDDEN
