"""The project's error tree. Every error carries a one-line advice for the user, and a
stable reason code for programs.

The transport maps each class to a gRPC status code in one table
(``gateway.transport.errors``); the core never imports grpc. The reason code (lower
case with dashes, e.g. ``issuer-not-signer``) travels in the trailing metadata key
``alliance-reason`` (docs/PROTOCOL.md, "Reason codes"): clients translate by it, and the
message stays English for the log. Each class has a default code; a raise site that
clients should tell apart passes its own (``reason="unknown-listing"``). A code, once
published, keeps its meaning.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    advice: str = "see docs/OPERATIONS.md"
    reason: str = "internal"

    def __init__(
        self, message: str, *, advice: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        if advice is not None:
            self.advice = advice
        if reason is not None:
            self.reason = reason

    @property
    def message(self) -> str:
        return str(self)

    @property
    def hinted(self) -> str:
        """The message with its advice, as a caller or an operator reads it (the gRPC
        status message, a peer's last error)."""
        return f"{self} (hint: {self.advice})"


class RecordError(GatewayError, ValueError):
    """A statement or envelope is malformed or breaks a field rule."""

    reason = "invalid-record"
    advice = "fix the named field; the byte formats are in docs/PROTOCOL.md"


class VerificationError(GatewayError):
    """A signature, key or proof does not verify."""

    reason = "bad-signature"
    advice = "sign the exact payload bytes with a key registered for the issuer"


class LogIntegrityError(GatewayError):
    """The audit log or a checkpoint is inconsistent: evidence of tampering or a fork."""

    reason = "log-inconsistent"
    advice = "keep the checkpoints involved as evidence and alert the regulator"


class LogDamageError(LogIntegrityError):
    """The log's own storage lost or altered what it once held: a missing entry or node,
    bytes that no longer hash to what was signed. Served as ``DATA_LOSS``, never as OK."""

    reason = "log-damaged"
    advice = (
        "the gateway's database is damaged: its operator runs `alliance-gateway check-log` "
        "and restores the database from backup (docs/OPERATIONS.md, backup and restore)"
    )


class PermissionError(GatewayError):  # shadows the builtin on purpose (STYLE.md)
    """The caller may not do this (role, identity, revocation, suspension)."""

    reason = "permission-denied"
    advice = "check the member id in your certificate and what its role may do"


class NotFoundError(GatewayError):
    """A record, listing or log entry asked for does not exist."""

    reason = "not-found"
    advice = "check the id or index; records replicate within seconds"


class FederationError(GatewayError):
    """A peer gateway misbehaved or could not be reached."""

    reason = "peer-unavailable"
    advice = "check the peer's address, trust anchors and log key in the configuration"


class StorageError(GatewayError):
    """The database failed or its schema is not at the expected revision."""

    reason = "storage-unavailable"
    advice = "run `alliance-gateway migrate` and check the database URL"


class ConfigError(GatewayError):
    """The configuration is invalid."""

    reason = "misconfigured"
    advice = "fix the named setting in the TOML file or its ALLIANCE_* override"
