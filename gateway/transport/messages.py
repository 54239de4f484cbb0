"""Response assembly: service results into alliance.v1 messages (statements go
through ``gateway.codec``, the one protobuf <-> domain converter; a stored listing's
payload, verified and validated when it was accepted, is parsed as it is)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway import codec
from gateway.core.statements import LifecycleStep
from gateway.pb.alliance.v1 import exchange_pb2 as ex
from gateway.pb.alliance.v1 import statements_pb2 as pb
from gateway.service.query import ListingState, SubjectState
from gateway.storage import StoredRecord


def log_entry(record: StoredRecord) -> ex.LogEntry:
    return ex.LogEntry(
        log_index=record.log_index,
        record_id=record.record_id,
        envelope=codec.envelope_to_pb(
            codec.stored_envelope(
                record.payload_type, record.payload, record.signatures, record.disclosures
            )
        ),
    )


def fill_listing_state(out: ex.ListingState, state: ListingState) -> None:
    """Fill ``out``, an empty entry of a response under construction.

    Entries are filled in place: protobuf copies a message handed to a constructor or to
    ``add``, and the stored payload is parsed straight into the response's field.
    """
    out.listing_id = state.listing_id
    out.listing.MergeFromString(state.listing_payload)
    out.step = LifecycleStep(state.step).value  # type: ignore[assignment]
    out.correction_deadline.CopyFrom(codec.timestamp_to_pb(state.deadline))
    out.in_force = state.in_force
    out.overdue = state.overdue
    add_sanction = out.sanctions.add
    for s in state.sanctions:
        add_sanction(
            platform=s.platform,
            measure=s.measure,
            measure_other=s.measure_other,
            action=s.action,
            effective_at=codec.timestamp_to_pb(s.effective_at),
        )


def check_response(
    sent: Sequence[pb.Subject], states: Sequence[SubjectState]
) -> ex.CheckSubjectsResponse:
    """One result per subject, echoing each subject as it was ``sent`` (the caller has
    validated every one of them and dropped any unknown fields)."""
    response = ex.CheckSubjectsResponse()
    add = response.results.add
    for subject, state in zip(sent, states, strict=True):
        result = add(subject=subject)
        if state.listings:
            result.listed = state.listed
            add_listing = result.listings.add
            for listing in state.listings:
                fill_listing_state(add_listing(), listing)
    return response
