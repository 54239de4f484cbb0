"""Response assembly: service results into alliance.v1 messages (statements go
through ``gateway.codec``, the one protobuf <-> domain converter)."""

from __future__ import annotations

from gateway import codec
from gateway.core.statements import LifecycleStep
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.service.query import ListingState, SubjectState
from gateway.storage import StoredRecord


def log_entry(record: StoredRecord) -> ex.LogEntry:
    return ex.LogEntry(
        log_index=record.log_index,
        record_id=record.record_id,
        envelope=codec.envelope_to_pb(
            codec.stored_envelope(record.payload_type, record.payload, record.signatures)
        ),
    )


def listing_state(state: ListingState) -> ex.ListingState:
    p = state.projection
    return ex.ListingState(
        listing_id=p.listing_id,
        listing=codec.stored_listing_to_pb(state.listing_payload),
        step=LifecycleStep(p.step).value,  # type: ignore[arg-type]
        correction_deadline=codec.timestamp_to_pb(p.deadline),
        in_force=p.in_force,
        overdue=state.overdue,
        sanctions=[
            ex.SanctionState(
                platform=s.platform,
                measure=s.measure,  # type: ignore[arg-type]
                measure_other=s.measure_other,
                action=s.action,  # type: ignore[arg-type]
                effective_at=codec.timestamp_to_pb(s.effective_at),
            )
            for s in state.sanctions
        ],
    )


def subject_status(state: SubjectState) -> ex.SubjectStatus:
    return ex.SubjectStatus(
        subject=codec.subject_to_pb(state.subject),
        listed=state.listed,
        listings=[listing_state(s) for s in state.listings],
    )
