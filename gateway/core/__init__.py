"""The pure core: records and their validation, signatures, the Merkle log and
checkpoints, authorization policy and the fold from records to list state.

It imports the standard library and ``cryptography`` only; no grpc, no sqlalchemy, no
protobuf (``gateway.codec`` converts).
"""

from __future__ import annotations

# --- records, identifiers, fold and policy -------------------------------------------
from gateway.core.fold import (
    STEP_PRECEDENCE,
    ListingView,
    ListState,
    MemberDirectory,
    SanctionKey,
    SanctionView,
    VerifiedRecord,
    in_force_step,
    sanction_wins,
    stronger_step,
)
from gateway.core.identifiers import (
    REPORTING_UNITS,
    XPCC_REGION_CODE,
    MemberId,
    person_hmac,
    reporting_unit,
    validate_region_code,
    validate_resident_id,
    validate_uscc,
)
from gateway.core.policy import (
    RPC_ROLES,
    STATEMENT_SIGNERS,
    authorize_statement,
    rpc_allowed,
)
from gateway.core.statements import (
    PAYLOAD_TYPES,
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    MemberKey,
    MemberRecord,
    MemberStatus,
    MonthlyReport,
    Role,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    Statement,
    StatusChange,
    StoreRef,
    Subject,
    add_months,
)

# --- signatures, envelopes, Merkle log, checkpoints ----------------------------------
# (added with crypto, dsse, merkle and notes)

__all__ = [
    "PAYLOAD_TYPES",
    "REPORTING_UNITS",
    "RPC_ROLES",
    "STATEMENT_SIGNERS",
    "STEP_PRECEDENCE",
    "XPCC_REGION_CODE",
    "ConductType",
    "LifecycleStep",
    "ListKind",
    "ListState",
    "Listing",
    "ListingView",
    "MemberDirectory",
    "MemberId",
    "MemberKey",
    "MemberRecord",
    "MemberStatus",
    "MonthlyReport",
    "Role",
    "SanctionAction",
    "SanctionConfirmation",
    "SanctionKey",
    "SanctionMeasure",
    "SanctionView",
    "Statement",
    "StatusChange",
    "StoreRef",
    "Subject",
    "VerifiedRecord",
    "add_months",
    "authorize_statement",
    "in_force_step",
    "person_hmac",
    "reporting_unit",
    "rpc_allowed",
    "sanction_wins",
    "stronger_step",
    "validate_region_code",
    "validate_resident_id",
    "validate_uscc",
]
