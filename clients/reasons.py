"""The gateway's refusals in the user's language, by their stable reason codes.

The gateway names why it refused a call in the trailing metadata key
``alliance-reason`` (docs/PROTOCOL.md, "Reason codes"); its message stays English. This
module says each code the CLI knows in the current language (``clients.i18n``). A code
it does not know (a newer gateway), or a refusal without one (an older gateway), is
shown as the gateway worded it. English users see the gateway's own message, which
names the field, id or limit involved; in Chinese the gateway's message follows on a
``detail:`` line, so nothing it said is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import grpc

from clients.i18n import N_, _, current
from gateway.errors import GatewayError

__all__ = ["REASONS", "REASON_KEY", "Explained", "explain", "reason_of"]

REASON_KEY: Final = "alliance-reason"

# Code -> (what happened, what to do). English is the msgid; the Chinese is in
# clients/locale/zh_CN/LC_MESSAGES/alliance.po.
REASONS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        # Authorization.
        "issuer-not-signer": (
            N_("the record's issuer is not the member that signed or sent it"),
            N_("members sign and submit only records they issue themselves"),
        ),
        "role-may-not-sign": (
            N_("your member role may not sign this kind of record"),
            N_("see the authorization table in docs/PROTOCOL.md"),
        ),
        "role-may-not-call": (
            N_("your member role may not call this service"),
            N_("see the authorization table in docs/PROTOCOL.md"),
        ),
        "outside-unit": (
            N_("an authority may change only listings of its own reporting unit"),
            N_("ask the authority of the listing's reporting unit, or its issuer"),
        ),
        "not-listing-issuer": (
            N_("only the listing's issuer or an authority of its unit may change it"),
            N_("ask the listing's issuer or the authority of its reporting unit"),
        ),
        "not-allowed-to-erase": (
            N_("you may not erase one of these records"),
            N_(
                "a record's issuer, an authority of its listing's reporting unit, or its "
                "alliance's gateway erases it"
            ),
        ),
        "permission-denied": (
            N_("the gateway refused: you may not do this"),
            N_("check the member id in your certificate and what its role may do"),
        ),
        # Standing.
        "unauthenticated": (
            N_("the gateway did not receive a client certificate"),
            N_("check cert_file and key_file in your profile"),
        ),
        "not-registered": (
            N_("your member id is not registered at this gateway"),
            N_("ask the gateway operator to register you"),
        ),
        "member-suspended": (
            N_("your membership is suspended: the gateway refuses your records"),
            N_("ask the gateway operator why; records are refused until reactivation"),
        ),
        # Records.
        "invalid-record": (
            N_("the record breaks a field rule"),
            N_("fix the field the detail names; the byte formats are in docs/PROTOCOL.md"),
        ),
        "deadline-too-early": (
            N_("the correction deadline is not after the listing date"),
            N_("give a --deadline after --listed-at, or leave it out for the default"),
        ),
        "time-in-future": (
            N_("a time in the record is in the future by the gateway's clock"),
            N_("state when it took effect, not when it is planned; check your clock"),
        ),
        "time-too-old": (
            N_("a time in the record is older than the gateway accepts"),
            N_("submit records when they take effect; older lists are imported as historical"),
        ),
        "personal-data": (
            N_("a text field holds personal data (an ID number or a phone number)"),
            N_("remove it: a natural person is identified only by the hashed ID number"),
        ),
        "listing-in-force": (
            N_("the listing is still in force: its records cannot be erased yet"),
            N_("correct, remove or withdraw the listing first, then erase its records"),
        ),
        "not-erasable": (
            N_("this record signs its subject and text in the clear: it cannot be erased"),
            N_("only records of protocol revision 4 (v2 forms) can be erased"),
        ),
        "bad-signature": (
            N_("the record's signature does not verify"),
            N_("sign with the key registered for your member id"),
        ),
        # Not found.
        "unknown-listing": (
            N_("the gateway knows no listing with this id"),
            N_("submit the listing first, or wait for it to replicate"),
        ),
        "unknown-record": (
            N_("the gateway knows no record with this id"),
            N_("check the id; records replicate within seconds"),
        ),
        "not-found": (
            N_("the gateway does not have what was asked for"),
            N_("check the id or index; records replicate within seconds"),
        ),
        # Limits.
        "rate-limited": (
            N_("too many requests: the gateway's rate limit for your member"),
            N_("slow down and retry later"),
        ),
        "too-many-streams": (
            N_("too many open streams for your member"),
            N_("end a stream before opening another one"),
        ),
        "quota-exceeded": (
            N_("your daily quota of checked subjects is used up"),
            N_("retry after midnight UTC (08:00 Beijing time), or ask the operator"),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Explained:
    message: str
    advice: str
    detail: str | None = None  # the gateway's own words, when the message is translated


def reason_of(e: BaseException) -> str | None:
    """The reason code of an error: the gateway's, from the gRPC error a client error
    wraps; else one the raise site named (the core checks records on both sides, so a
    record the CLI refuses before sending has the code the gateway would send)."""
    cause = e.__cause__
    if isinstance(cause, grpc.Call):
        for key, value in cause.trailing_metadata() or ():
            if key == REASON_KEY:
                return value if isinstance(value, str) else value.decode("ascii", "replace")
        return None
    explicit = vars(e).get("reason")  # not the class's default: that says too little
    return explicit if isinstance(explicit, str) else None


def explain(e: GatewayError) -> Explained:
    """``e`` as the CLI shows it (see the module docstring)."""
    code = reason_of(e)
    known = REASONS.get(code) if code is not None else None
    if known is None or current() == "en":
        return Explained(str(e), e.advice)
    message, advice = known
    return Explained(_(message), _(advice), detail=str(e))
