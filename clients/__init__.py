"""The Python client library and the ``alliance`` CLI for alliance members.

```python
from clients import AllianceClient, load_profile, new_listing, company_subject

profile = load_profile("profile.toml")
with AllianceClient(profile) as client:
    listing = new_listing(profile.member_id, company_subject("91330100716105852F"), ...)
    result = client.submit(listing)
```

``__version__`` is ``<contract>.<revision>.<patch>``: 1.4.x speaks ``alliance.v1``
revision 4 (``PROTOCOL``; docs/PROTOCOL.md §5.1).
"""

from __future__ import annotations

from clients.audit import AuditState, ProveOutcome, ReplayOutcome, VerifyOutcome
from clients.bulk import BulkReport, Progress, Rejection, submit_file
from clients.client import (
    AllianceClient,
    ClientError,
    InclusionProof,
    ListingState,
    LogEntry,
    RetryPolicy,
    SanctionState,
    SubjectStatus,
    SubmitResult,
)
from clients.profile import PROFILE_ENV, Profile, load_profile
from clients.statements import (
    company_subject,
    new_listing,
    person_subject,
    sanction,
    status_change,
)
from clients.version import PROTOCOL, VersionCheck

__version__ = "1.4.0"

__all__ = [
    "PROFILE_ENV",
    "PROTOCOL",
    "AllianceClient",
    "AuditState",
    "BulkReport",
    "ClientError",
    "InclusionProof",
    "ListingState",
    "LogEntry",
    "Profile",
    "Progress",
    "ProveOutcome",
    "Rejection",
    "ReplayOutcome",
    "RetryPolicy",
    "SanctionState",
    "SubjectStatus",
    "SubmitResult",
    "VerifyOutcome",
    "VersionCheck",
    "company_subject",
    "load_profile",
    "new_listing",
    "person_subject",
    "sanction",
    "status_change",
    "submit_file",
]
