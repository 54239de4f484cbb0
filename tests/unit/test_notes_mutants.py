"""Signed-note and checkpoint limits found by mutation testing (docs/TESTING.md).

Every limit is inclusive: a note, checkpoint or cosignature exactly at the limit that a
peer or witness produced must open here too, or gateways and witnesses would disagree
about the same log.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest

from gateway.core.crypto import SigningKey
from gateway.core.notes import (
    MAX_NOTE_BYTES,
    MAX_NOTE_SIGNATURES,
    MAX_TIMESTAMP,
    MAX_TREE_SIZE,
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    parse_signed_note,
    sign_note,
    verify_cosignature,
)
from gateway.errors import RecordError, VerificationError

ROOT = hashlib.sha256(b"root").digest()


def _signer(name: str) -> NoteSigner:
    return NoteSigner(name, SigningKey.generate())


def test_a_checkpoint_of_the_largest_tree_size_signs_and_opens() -> None:
    signer = _signer("gw.example/audit/v1")
    body = Checkpoint("gw.example/audit/v1", MAX_TREE_SIZE, ROOT).body()
    opened = open_checkpoint(sign_note(body, [signer]), signer.verifier())
    assert opened.size == MAX_TREE_SIZE


def test_a_note_of_exactly_the_maximum_length_opens() -> None:
    signer = _signer("gw.example")
    block = len(sign_note("x\n", [signer])) - len("x\n")
    text = "a" * (MAX_NOTE_BYTES - block - 1) + "\n"
    note = sign_note(text, [signer])
    assert len(note) == MAX_NOTE_BYTES
    assert open_note(note, [signer.verifier()]) == text


def test_a_note_with_the_maximum_number_of_signatures_opens() -> None:
    signers = [_signer(f"s{i}.example") for i in range(MAX_NOTE_SIGNATURES)]
    note = sign_note("many\n", signers)
    assert open_note(note, [signers[0].verifier()]) == "many\n"


def test_cosignatures_at_both_ends_of_the_timestamp_range_verify() -> None:
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    for timestamp in (0, 1, MAX_TIMESTAMP):
        line = cosigner.cosign(body, timestamp)
        assert verify_cosignature(line, body, cosigner.verifier()) == timestamp


def test_signing_refuses_a_text_that_no_verifier_would_open() -> None:
    """Signing checks the text itself (the signed note's own checks come later, at open):
    a signer must not produce a signature over text with controls, without its final
    newline, or that is not UTF-8, and says which."""
    signer = _signer("gw.example")
    cases = [
        ("bell\x07\n", "note text contains control character '\\x07' at offset 4"),
        ("no newline", "note text does not end with a newline"),
    ]
    for text, message in cases:
        with pytest.raises(RecordError) as caught:
            signer.sign_note(text)
        assert str(caught.value) == message
    with pytest.raises(RecordError) as caught:
        signer.sign_note("\ud800\n")
    assert str(caught.value).startswith("note text is not valid UTF-8: ")
    with pytest.raises(RecordError) as caught:
        sign_note("x\n", [])
    assert str(caught.value) == "a signed note needs at least one signer"


def test_the_note_text_limit_counts_utf8_bytes_not_characters() -> None:
    """A note under the character limit whose text is over the byte limit is refused;
    a text of exactly the byte limit opens (a peer's 1 MiB text must open here too)."""
    signer = _signer("gw.example")
    # Two-byte characters: the signed note stays far below MAX_NOTE_BYTES characters.
    exact = "\u00e9" * ((MAX_NOTE_BYTES - 2) // 2) + "a\n"
    assert len(exact.encode("utf-8")) == MAX_NOTE_BYTES
    note = sign_note(exact, [signer])
    assert len(note) < MAX_NOTE_BYTES
    assert open_note(note, [signer.verifier()]) == exact
    over = "b" + exact
    with pytest.raises(RecordError) as caught:
        signer.sign_note(over)
    assert str(caught.value) == f"note text is longer than {MAX_NOTE_BYTES} bytes"
    forged = over + note[len(exact) :]  # the same signature line under a longer text
    with pytest.raises(RecordError) as caught:
        open_note(forged, [signer.verifier()])
    assert str(caught.value) == f"note text is longer than {MAX_NOTE_BYTES} bytes"


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("x\n\n\u2014 a AAAAAAA=", "signed note does not end with a newline"),
        ("x\n\u2014 a AAAAAAA=\n", "signed note has no blank line before its signatures"),
        ("x\n\n", "signed note has no signature lines"),
        (
            "x\x07\n\n\u2014 a AAAAAAA=\n",
            "signed note contains control character '\\x07' at offset 1",
        ),
        (
            "x\n\n" + "\u2014 a AAAAAAA=\n" * (MAX_NOTE_SIGNATURES + 1),
            f"signed note has more than {MAX_NOTE_SIGNATURES} signatures",
        ),
        (
            "x" * MAX_NOTE_BYTES + "\n\n\u2014 a AAAAAAA=\n",
            "signed note is longer than 1048576 characters",
        ),
    ],
)
def test_a_malformed_signed_note_is_refused_by_name(note: str, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        parse_signed_note(note)
    assert str(caught.value) == message


def test_a_note_whose_text_is_one_empty_line_parses() -> None:
    """The blank line may start the note (text "\\n"), as in the Go reference parser;
    refusing it would make this gateway disagree with witnesses about the same note."""
    text, signatures = parse_signed_note("\n\n\u2014 a AAAAAAA=\n")
    assert text == "\n"
    assert [(s.name, s.key_id, s.signature) for s in signatures] == [("a", b"\0" * 4, b"\0")]


def test_open_note_names_what_it_was_given() -> None:
    signer = _signer("gw.example")
    cosigner = CosignatureSigner("w.example", SigningKey.generate())
    with pytest.raises(TypeError) as type_error:
        open_note("x\n\n\u2014 a AAAAAAA=\n", [cosigner.verifier()])  # type: ignore[list-item]
    assert str(type_error.value) == "open_note needs NoteVerifier keys, not CosignatureVerifier"
    with pytest.raises(VerificationError) as caught:
        open_note("x\n\n\u2014 a AAAAAAA=\n", [])
    assert str(caught.value) == "no verifier keys to open the note with"
    with pytest.raises(VerificationError) as caught:
        open_note("x\n\n\u2014 a AAAAAAA=\n\u2014 b AAAAAAA=\n", [signer.verifier()])
    assert str(caught.value) == (
        "note has no signature by a known key (signed by a+00000000, b+00000000)"
    )


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("a b+530d903a+AA==", "verifier key name 'a b' contains ' ': no spaces, '+' or controls"),
        (
            "a+530d903a+!!",
            "verifier key material is not standard base64: Only base64 data is allowed",
        ),
        ("a+530d903a+", "verifier key material is empty"),
        ("example.com/foo+530d903a", "verifier key must have the form name+keyid+base64key"),
    ],
)
def test_a_malformed_verifier_key_is_refused_by_name(vkey: str, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        NoteVerifier.from_vkey(vkey)
    assert str(caught.value) == message


def test_every_key_holder_refuses_a_name_with_a_space() -> None:
    """A name with a space would split its own signature line differently when parsed."""
    key = SigningKey.generate()
    makers: list[Callable[[], object]] = [
        lambda: NoteSigner("a b", key),
        lambda: CosignatureSigner("a b", key),
        lambda: NoteVerifier("a b", key.public_key()),
        lambda: CosignatureVerifier("a b", key.public_key()),
    ]
    for make in makers:
        with pytest.raises(RecordError) as caught:
            make()
        assert str(caught.value) == "key name 'a b' contains ' ': no spaces, '+' or controls"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 1, ROOT), "checkpoint origin is empty"),
        (("o\x07", 1, ROOT), "checkpoint origin contains control character '\\x07' at offset 1"),
        (("o\nb", 1, ROOT), "checkpoint origin contains a newline"),
        (("o", True, ROOT), "checkpoint tree size must be an int, not True"),
        (("o", 1.0, ROOT), "checkpoint tree size must be an int, not 1.0"),
        (("o", 1, ROOT[:3]), "checkpoint root hash must be 32 bytes"),
        (("o", 1, ROOT, ("",)), "checkpoint extension line 1 is empty"),
        (
            ("o", 1, ROOT, ("a", "b\x07")),
            "checkpoint extension line 2 contains control character '\\x07' at offset 1",
        ),
        (("o", 1, ROOT, ("a", "b\nc")), "checkpoint extension line 2 contains a newline"),
    ],
)
def test_a_checkpoint_that_would_not_serialise_back_is_refused(
    args: tuple[object, ...], message: str
) -> None:
    """A tree size of True or 1.0 would print as "True" or "1.0", a newline in the origin
    would add a line: the signed body would not be the checkpoint the caller meant."""
    with pytest.raises(RecordError) as caught:
        Checkpoint(*args)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o\n1", "checkpoint does not end with a newline"),
        ("o\x07\n1\n", "checkpoint contains control character '\\x07' at offset 1"),
        ("\n1\nAA==\n", "checkpoint origin line is empty"),
        ("o" * MAX_NOTE_BYTES + "\n", f"checkpoint is longer than {MAX_NOTE_BYTES} characters"),
    ],
)
def test_a_malformed_checkpoint_text_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        Checkpoint.parse(text)
    assert str(caught.value) == message


def test_a_checkpoint_of_exactly_the_maximum_length_parses() -> None:
    body = Checkpoint("gw.example/audit/v1", 1, ROOT).body()
    extension = "e" * (MAX_NOTE_BYTES - len(body) - 1)
    text = body + extension + "\n"
    assert len(text) == MAX_NOTE_BYTES
    assert Checkpoint.parse(text).extensions == (extension,)


def test_a_cosignature_must_be_one_line() -> None:
    """Two lines handed in as one cosignature are refused as such, not half-read."""
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    line = cosigner.cosign(body, 5)
    with pytest.raises(RecordError) as caught:
        verify_cosignature(line + line, body, cosigner.verifier())
    assert str(caught.value) == "a cosignature is a single line"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "- " + "a" * 50 + " AAAAAAA=",
            "signature line '- aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' does not start with an em "
            "dash and space",
        ),
        (
            "\u2014 " + "a" * 50 + "AAAAAAA=",
            "signature line '\u2014 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' has no space before "
            "the signature",
        ),
        ("\u2014 a !!!!", "signature by a is not standard base64: Only base64 data is allowed"),
        ("\u2014 a AAAAAA==", "signature by a is 4 bytes; too short"),
    ],
)
def test_a_malformed_signature_line_is_named_in_forty_characters(line: str, message: str) -> None:
    """The line is quoted, cut at 40 characters (a hostile peer's line is not echoed
    whole into logs), and the signer named."""
    with pytest.raises(RecordError) as caught:
        parse_signed_note(f"x\n\n{line}\n")
    assert str(caught.value) == message


def test_a_signature_line_key_name_ends_at_its_first_space() -> None:
    """The key name is everything up to the first space, as in the Go reference parser
    (strings.Cut): "\u2014 a AAAA AAAAAAA=" is a signature by key "a" whose base64
    holds a space, not a signature by a key "a AAAA". Splitting at another space would
    name, and look up, a different key than every other verifier of the same note."""
    with pytest.raises(RecordError) as caught:
        parse_signed_note("x\n\n\u2014 a AAAA AAAAAAA=\n")
    assert str(caught.value) == (
        "signature by a is not standard base64: Only base64 data is allowed"
    )


def test_a_cosignature_timestamp_past_2_63_is_refused_before_verifying() -> None:
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    payload = cosigner.key_id + (2**63).to_bytes(8, "big") + bytes(64)
    line = f"\u2014 witness.example/w1 {base64.b64encode(payload).decode()}\n"
    with pytest.raises(VerificationError) as caught:
        verify_cosignature(line, body, cosigner.verifier())
    assert str(caught.value) == "cosignature timestamp 9223372036854775808 exceeds 2^63-1"
