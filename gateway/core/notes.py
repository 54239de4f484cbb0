"""C2SP signed notes, checkpoints and cosignatures (Ed25519 only).

- ``signed-note`` v1: text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(key ID[4] ‖ signature)``; key ID =
  SHA-256(name ‖ 0x0A ‖ sigtype ‖ public key)[:4]; sigtype 0x01 for Ed25519.
- ``tlog-checkpoint`` v1: the note text is origin, decimal tree size, base64 root hash,
  then optional extension lines, each ending in a newline.
- ``tlog-cosignature`` v1 (Ed25519, sigtype 0x04): a signature line whose payload is
  key ID ‖ u64 big-endian timestamp ‖ Ed25519 signature over
  ``"cosignature/v1\\ntime <T>\\n" ‖ checkpoint body``.

Parsers are strict and name the bad part in a ``RecordError``; signatures that do not
verify raise ``VerificationError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Final, Self

from gateway.core.crypto import SIGNATURE_BYTES, SigningKey, VerifyingKey
from gateway.errors import RecordError, VerificationError

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_NOTE_SIGNATURES",
    "MAX_TIMESTAMP",
    "MAX_TREE_SIZE",
    "SIGTYPE_COSIGNATURE",
    "SIGTYPE_ED25519",
    "Checkpoint",
    "CosignatureSigner",
    "CosignatureVerifier",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "key_id",
    "open_checkpoint",
    "open_note",
    "parse_signed_note",
    "sign_note",
    "verify_cosignature",
]

SIGTYPE_ED25519: Final = 0x01
SIGTYPE_COSIGNATURE: Final = 0x04
MAX_NOTE_BYTES: Final = 1024 * 1024
MAX_NOTE_SIGNATURES: Final = 100  # the spec requires accepting at least 16
MAX_TREE_SIZE: Final = 2**63 - 1
MAX_TIMESTAMP: Final = 2**63 - 1

_SIG_PREFIX: Final = "\u2014 "  # em dash, space
_COSIGNATURE_HEADER: Final = "cosignature/v1\n"
_DECIMAL = re.compile(r"[0-9]+")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")


def _check_no_controls(what: str, text: str) -> None:
    for offset, char in enumerate(text):
        if char < " " and char != "\n":
            raise RecordError(f"{what} contains control character {char!r} at offset {offset}")


def _check_name(what: str, name: str) -> None:
    if not name:
        raise RecordError(f"{what} is empty")
    for char in name:
        if char.isspace() or char == "+" or char < " ":
            raise RecordError(f"{what} {name!r} contains {char!r}: no spaces, '+' or controls")


def _b64decode(what: str, text: str) -> bytes:
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise RecordError(f"{what} is not standard base64: {e}") from e
    if base64.b64encode(raw).decode("ascii") != text:
        raise RecordError(f"{what} is not canonical base64")
    return raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_decimal(what: str, text: str, maximum: int) -> int:
    if not text:
        raise RecordError(f"{what} is empty")
    if text.startswith("-"):
        raise RecordError(f"{what} {text!r} is negative")
    if not _DECIMAL.fullmatch(text):
        raise RecordError(f"{what} {text!r} is not an ASCII decimal number")
    if len(text) > 1 and text[0] == "0":
        raise RecordError(f"{what} {text!r} has a leading zero")
    value = int(text)
    if value > maximum:
        raise RecordError(f"{what} {text} is larger than {maximum}")
    return value


def key_id(name: str, sigtype: int, pubkey: bytes) -> bytes:
    """C2SP key ID: SHA-256(name ‖ 0x0A ‖ sigtype ‖ pubkey)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sigtype]) + pubkey).digest()[:4]


# -- checkpoints -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint v1 body."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise RecordError("checkpoint origin is empty")
        _check_no_controls("checkpoint origin", self.origin)
        if "\n" in self.origin:
            raise RecordError("checkpoint origin contains a newline")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise RecordError(f"checkpoint tree size must be an int, not {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise RecordError(f"checkpoint tree size {self.size} is out of range")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise RecordError("checkpoint root hash must be 32 bytes")
        for number, line in enumerate(self.extensions, start=1):
            if not line:
                raise RecordError(f"checkpoint extension line {number} is empty")
            _check_no_controls(f"checkpoint extension line {number}", line)
            if "\n" in line:
                raise RecordError(f"checkpoint extension line {number} contains a newline")

    def body(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if len(text) > MAX_NOTE_BYTES:
            raise RecordError(f"checkpoint is longer than {MAX_NOTE_BYTES} characters")
        _check_no_controls("checkpoint", text)
        if not text.endswith("\n"):
            raise RecordError("checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise RecordError(
                f"checkpoint has {len(lines)} line(s); it needs origin, tree size and root hash"
            )
        origin, size_line, root_line, *extensions = lines
        if not origin:
            raise RecordError("checkpoint origin line is empty")
        size = _parse_decimal("checkpoint tree size", size_line, MAX_TREE_SIZE)
        root = _b64decode("checkpoint root hash", root_line)
        if len(root) != 32:
            raise RecordError(f"checkpoint root hash is {len(root)} bytes, not 32")
        for number, line in enumerate(extensions, start=1):
            if not line:
                raise RecordError(f"checkpoint extension line {number} is empty")
        return cls(origin, size, root, tuple(extensions))


# -- signed notes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One parsed signature line: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"


def _check_text(text: str) -> bytes:
    if not text.endswith("\n"):
        raise RecordError("note text does not end with a newline")
    _check_no_controls("note text", text)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RecordError(f"note text is not valid UTF-8: {e}") from e
    if len(data) > MAX_NOTE_BYTES:
        raise RecordError(f"note text is longer than {MAX_NOTE_BYTES} bytes")
    return data


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise RecordError(f"signature line {line[:40]!r} does not start with an em dash and space")
    name, sep, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise RecordError(f"signature line {line[:40]!r} has no space before the signature")
    _check_name("signature key name", name)
    payload = _b64decode(f"signature by {name}", encoded)
    if len(payload) < 5:
        raise RecordError(f"signature by {name} is {len(payload)} bytes; too short")
    return NoteSignature(name=name, key_id=payload[:4], signature=payload[4:])


def parse_signed_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (with its final newline) and its signatures."""
    if len(note) > MAX_NOTE_BYTES:
        raise RecordError(f"signed note is longer than {MAX_NOTE_BYTES} characters")
    _check_no_controls("signed note", note)
    if not note.endswith("\n"):
        raise RecordError("signed note does not end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise RecordError("signed note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise RecordError("signed note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise RecordError(f"signed note has more than {MAX_NOTE_SIGNATURES} signatures")
    _check_text(text)
    return text, [_parse_signature_line(line) for line in lines]


@dataclass(frozen=True, slots=True)
class _Ed25519Verifier:
    name: str
    key: VerifyingKey
    key_id: bytes = field(init=False)

    _sigtype: ClassVar[int]

    def __post_init__(self) -> None:
        _check_name("key name", self.name)
        object.__setattr__(self, "key_id", key_id(self.name, self._sigtype, self.key.raw))

    @property
    def vkey(self) -> str:
        """``name+hex(key ID)+base64(sigtype ‖ public key)``."""
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self._sigtype]) + self.key.raw)}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        name, key = _parse_vkey(vkey, cls._sigtype)
        return cls(name, key)

    def _verify(self, signature: bytes, message: bytes) -> None:
        try:
            self.key.verify(signature, message)
        except VerificationError as e:
            raise VerificationError(
                f"signature by {self.name}+{self.key_id.hex()} does not verify: {e}"
            ) from e


@dataclass(frozen=True, slots=True)
class NoteVerifier(_Ed25519Verifier):
    """An Ed25519 note verifier key (sigtype 0x01): checks a log's checkpoint signature."""

    _sigtype: ClassVar[int] = SIGTYPE_ED25519


@dataclass(frozen=True, slots=True)
class CosignatureVerifier(_Ed25519Verifier):
    """An Ed25519 cosigner verifier key (sigtype 0x04): checks tlog-cosignature lines."""

    _sigtype: ClassVar[int] = SIGTYPE_COSIGNATURE


def _parse_vkey(vkey: str, sigtype: int) -> tuple[str, VerifyingKey]:
    parts = vkey.split("+", 2)  # the base64 key may itself contain "+"
    if len(parts) != 3:
        raise RecordError("verifier key must have the form name+keyid+base64key")
    name, hex_id, encoded = parts
    _check_name("verifier key name", name)
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise RecordError(f"verifier key id {hex_id!r} is not 8 hex digits")
    material = _b64decode("verifier key material", encoded)
    if not material:
        raise RecordError("verifier key material is empty")
    if material[0] != sigtype:
        raise RecordError(
            f"verifier key has signature type 0x{material[0]:02x}, expected 0x{sigtype:02x}"
        )
    key = VerifyingKey.from_raw(material[1:])
    expected = key_id(name, sigtype, key.raw)
    if bytes.fromhex(hex_id) != expected:
        raise RecordError(
            f"verifier key id {hex_id} does not match its name and key ({expected.hex()})"
        )
    return name, key


@dataclass(frozen=True, slots=True)
class NoteSigner:
    """Signs note text with Ed25519 (sigtype 0x01)."""

    name: str
    key: SigningKey
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _check_name("key name", self.name)
        raw = self.key.public_key().raw
        object.__setattr__(self, "key_id", key_id(self.name, SIGTYPE_ED25519, raw))

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key.public_key())

    def sign_note(self, text: str) -> str:
        """The signature line (ending in a newline) over ``text``."""
        signature = self.key.sign(_check_text(text))
        return NoteSignature(self.name, self.key_id, signature).to_line()


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """The complete signed note: text, blank line, one signature line per signer."""
    lines = [signer.sign_note(text) for signer in signers]
    if not lines:
        raise RecordError("a signed note needs at least one signer")
    return text + "\n" + "".join(lines)


def open_note(note: str, verifiers: Iterable[NoteVerifier]) -> str:
    """Verify ``note`` and return its text.

    Signatures whose (name, key ID) matches no verifier are ignored; a known key's bad
    signature rejects the note, and so does the absence of any known key's signature.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if not isinstance(v, NoteVerifier):
            raise TypeError(f"open_note needs NoteVerifier keys, not {type(v).__name__}")
        known[(v.name, v.key_id)] = v
    if not known:
        raise VerificationError("no verifier keys to open the note with")
    text, signatures = parse_signed_note(note)
    message = text.encode("utf-8")
    verified = False
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        verifier._verify(sig.signature, message)
        verified = True
    if not verified:
        signed_by = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures)
        raise VerificationError(f"note has no signature by a known key (signed by {signed_by})")
    return text


def open_checkpoint(note: str, verifier: NoteVerifier, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with the log's key and parse it.

    With ``origin``, the checkpoint's origin line must equal it.
    """
    checkpoint = Checkpoint.parse(open_note(note, [verifier]))
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(
            f"checkpoint origin {checkpoint.origin!r} is not the expected {origin!r}"
        )
    return checkpoint


# -- cosignatures ------------------------------------------------------------------------


def _cosigned_message(checkpoint_body: str, timestamp: int) -> bytes:
    Checkpoint.parse(checkpoint_body)
    return f"{_COSIGNATURE_HEADER}time {timestamp}\n{checkpoint_body}".encode()


@dataclass(frozen=True, slots=True)
class CosignatureSigner:
    """Cosigns checkpoints with Ed25519 (tlog-cosignature v1, sigtype 0x04)."""

    name: str
    key: SigningKey
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        _check_name("key name", self.name)
        raw = self.key.public_key().raw
        object.__setattr__(self, "key_id", key_id(self.name, SIGTYPE_COSIGNATURE, raw))

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.key.public_key())

    def cosign(self, checkpoint_body: str, timestamp: int) -> str:
        """The cosignature line (ending in a newline) over ``checkpoint_body`` at ``timestamp``."""
        if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_TIMESTAMP:
            raise RecordError(f"cosignature timestamp {timestamp!r} is out of range")
        signature = self.key.sign(_cosigned_message(checkpoint_body, timestamp))
        payload = timestamp.to_bytes(8, "big") + signature
        return NoteSignature(self.name, self.key_id, payload).to_line()


def verify_cosignature(line: str, checkpoint_body: str, verifier: CosignatureVerifier) -> int:
    """Verify one cosignature line over ``checkpoint_body``; return its timestamp."""
    line = line.removesuffix("\n")
    if "\n" in line:
        raise RecordError("a cosignature is a single line")
    sig = _parse_signature_line(line)
    if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
        raise VerificationError(
            f"cosignature is by {sig.name}+{sig.key_id.hex()}, "
            f"not {verifier.name}+{verifier.key_id.hex()}"
        )
    if len(sig.signature) != 8 + SIGNATURE_BYTES:
        raise VerificationError(
            f"cosignature by {sig.name} is {len(sig.signature)} bytes, "
            f"expected {8 + SIGNATURE_BYTES} (timestamp and Ed25519 signature)"
        )
    timestamp = int.from_bytes(sig.signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise VerificationError(f"cosignature timestamp {timestamp} exceeds 2^63-1")
    verifier._verify(sig.signature[8:], _cosigned_message(checkpoint_body, timestamp))
    return timestamp
