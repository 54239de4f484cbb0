"""C2SP signed-note, tlog-checkpoint and tlog-cosignature: spec examples and strict parsing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.core.crypto import SigningKey
from gateway.core.notes import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_checkpoint,
    open_note,
    parse_signed_note,
    sign_note,
    verify_cosignature,
)
from gateway.errors import RecordError, VerificationError

# c2sp.org/signed-note, "Verifier keys" example (the same vkey and note are quoted by
# several independent implementations' test suites; the spec file confirms the prefix).
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXs"
    "YjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/tlog-cosignature, the example checkpoint with a witness cosignature
SPEC_COSIGNED = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


# -- the spec's signed note -------------------------------------------------------------


def test_spec_vkey() -> None:
    verifier = NoteVerifier.from_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id.hex() == "530d903a"
    assert verifier.vkey == SPEC_VKEY
    assert key_id("example.com/foo", 0x01, verifier.key.raw) == bytes.fromhex("530d903a")


def test_spec_note_verifies() -> None:
    assert open_note(SPEC_NOTE, [NoteVerifier.from_vkey(SPEC_VKEY)]) == (
        "This is an example message.\n"
    )


def test_spec_note_tampered_text_fails() -> None:
    with pytest.raises(VerificationError, match=r"example.com/foo\+530d903a does not verify"):
        open_note(
            SPEC_NOTE.replace("example message", "exemplary message"),
            [NoteVerifier.from_vkey(SPEC_VKEY)],
        )


def test_spec_cosigned_checkpoint_parses() -> None:
    text, signatures = parse_signed_note(SPEC_COSIGNED)
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    witness = signatures[1]
    assert witness.name == "witness.example.com/w1"
    assert len(witness.signature) == 8 + 64
    # the spec's example signed message carries "time 1679315147"
    assert int.from_bytes(witness.signature[:8], "big") == 1679315147
    assert "".join(s.to_line() for s in signatures) == SPEC_COSIGNED.split("\n\n", 1)[1]


# -- signing and opening -----------------------------------------------------------------


def _signer(name: str = "log.example/a") -> NoteSigner:
    return NoteSigner(name, SigningKey.generate())


def test_sign_and_open_round_trip() -> None:
    a, b = _signer("a.example"), _signer("b.example")
    note = sign_note("hello\n\nworld\n", [a, b])
    text, signatures = parse_signed_note(note)
    assert text == "hello\n\nworld\n"
    assert [s.name for s in signatures] == ["a.example", "b.example"]
    assert open_note(note, [b.verifier()]) == "hello\n\nworld\n"
    assert NoteVerifier.from_vkey(a.verifier().vkey) == a.verifier()


def test_vkey_whose_base64_contains_a_plus() -> None:
    verifier = NoteSigner("log.example/plus", SigningKey.from_raw(b"\x08" * 32)).verifier()
    assert verifier.vkey == "log.example/plus+df180575+AROY9ixtGkV8UbpqS189vS9p/KkyFiGNyJl+QWvRfZPK"
    assert NoteVerifier.from_vkey(verifier.vkey) == verifier


def test_unknown_signatures_are_ignored() -> None:
    known, stranger = _signer("a.example"), _signer("a.example")  # same name, other key id
    note = sign_note("text\n", [stranger]) + known.sign_note("text\n")
    assert open_note(note, [known.verifier()]) == "text\n"


def test_no_known_signature_rejects() -> None:
    note = sign_note("text\n", [_signer()])
    with pytest.raises(VerificationError, match="no signature by a known key"):
        open_note(note, [_signer().verifier()])
    with pytest.raises(VerificationError, match="no verifier keys"):
        open_note(note, [])


def test_a_known_bad_signature_rejects_even_beside_a_good_one() -> None:
    a, b = _signer("a.example"), _signer("b.example")
    bad_b = b.sign_note("other\n")  # b's key and id, but over another text
    note = "text\n\n" + a.sign_note("text\n") + bad_b
    with pytest.raises(VerificationError, match=r"b\.example\+"):
        open_note(note, [a.verifier(), b.verifier()])


def _b64_payload(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])


def test_at_least_sixteen_signatures_are_accepted() -> None:
    signers = [_signer(f"s{i}.example") for i in range(20)]
    note = sign_note("many\n", signers)
    assert open_note(note, [signers[-1].verifier()]) == "many\n"


def test_cosignature_verifier_cannot_open_a_note() -> None:
    cosigner = CosignatureSigner("w.example", SigningKey.generate())
    with pytest.raises(TypeError):
        open_note(SPEC_NOTE, [cosigner.verifier()])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("text\n\n\u2014 a AAAAAAA=", "does not end with a newline"),
        ("text\n\u2014 a AAAAAAA=\n", "no blank line"),
        ("text\n\n", "no signature lines"),
        ("text\n\n- a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 aAAAAAAA=\n", "no space"),
        ("text\n\n\u2014  AAAAAAA=\n", "key name is empty"),
        ("text\n\n\u2014 a+b AAAAAAA=\n", "'\\+'"),
        ("text\n\n\u2014 a !!!!\n", "not standard base64"),
        ("text\n\n\u2014 a AAAAAAB=\n", "not canonical"),
        ("text\n\n\u2014 a AAAA\n", "too short"),
        ("te\tx\n\n\u2014 a AAAAAAA=\n", "control character"),
        ("text\r\n\n\u2014 a AAAAAAA=\n", "control character"),
    ],
)
def test_malformed_signed_notes(note: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        parse_signed_note(note)


@pytest.mark.parametrize(
    ("text", "message"),
    [("no newline", "end with a newline"), ("bell\x07\n", "control character")],
)
def test_signing_bad_text_fails(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        _signer().sign_note(text)


@pytest.mark.parametrize("name", ["", "has space", "plus+sign", "tab\tname", "nbsp\u00a0x"])
def test_bad_key_names(name: str) -> None:
    with pytest.raises(RecordError, match="key name"):
        NoteSigner(name, SigningKey.generate())


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("example.com/foo+530d903a", "name\\+keyid\\+base64key"),
        ("example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "8 hex"),
        ("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
        ("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "does not match"),
        ("example.com/foo+530d903a+BOkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", "type 0x04"),
        ("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U0=", "32 bytes"),
        ("example.com/foo+530d903a+Aeky!", "base64"),
    ],
)
def test_malformed_vkeys(vkey: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        NoteVerifier.from_vkey(vkey)


# -- checkpoints -------------------------------------------------------------------------


def test_checkpoint_body_and_parse() -> None:
    cp = Checkpoint("gw.example/audit/v1", 12, ROOT, ("ext one",))
    assert cp.body() == f"gw.example/audit/v1\n12\n{ROOT_B64}\next one\n"
    assert Checkpoint.parse(cp.body()) == cp
    empty = Checkpoint("o", 0, hashlib.sha256(b"").digest())
    assert empty.body() == "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"o\n1\n{ROOT_B64}", "does not end with a newline"),
        (f"\n1\n{ROOT_B64}\n", "origin line is empty"),
        ("o\n1\n", "needs origin, tree size and root hash"),
        (f"o\n01\n{ROOT_B64}\n", "tree size '01' has a leading zero"),
        (f"o\n1a\n{ROOT_B64}\n", "tree size '1a' is not an ASCII decimal"),
        (f"o\n\uff11\n{ROOT_B64}\n", "is not an ASCII decimal"),
        (f"o\n-1\n{ROOT_B64}\n", "tree size '-1' is negative"),
        (f"o\n \n{ROOT_B64}\n", "is not an ASCII decimal"),
        (f"o\n\n{ROOT_B64}\n", "tree size is empty"),
        (f"o\n{2**63}\n{ROOT_B64}\n", "larger than"),
        ("o\n1\nnot base64!\n", "root hash is not standard base64"),
        (f"o\n1\n{base64.b64encode(b'x' * 31).decode()}\n", "root hash is 31 bytes"),
        (f"o\n1\n{ROOT_B64[:-2]}Z=\n", "root hash is not canonical"),
        (f"o\n1\n{ROOT_B64}\n\n", "extension line 1 is empty"),
        (f"o\n1\n{ROOT_B64}\next\n\n", "extension line 2 is empty"),
        (f"o\x00\n1\n{ROOT_B64}\n", "control character"),
    ],
)
def test_malformed_checkpoints(text: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        Checkpoint.parse(text)


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(RecordError, match="origin is empty"):
        Checkpoint("", 1, ROOT)
    with pytest.raises(RecordError, match="32 bytes"):
        Checkpoint("o", 1, ROOT[:31])
    with pytest.raises(RecordError, match="out of range"):
        Checkpoint("o", -1, ROOT)
    with pytest.raises(RecordError, match="newline"):
        Checkpoint("o", 1, ROOT, ("a\nb",))


def test_open_checkpoint() -> None:
    signer = _signer("gw.example/audit/v1")
    cp = Checkpoint("gw.example/audit/v1", 3, ROOT)
    note = sign_note(cp.body(), [signer])
    assert open_checkpoint(note, signer.verifier()) == cp
    assert open_checkpoint(note, signer.verifier(), origin="gw.example/audit/v1") == cp
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(note, signer.verifier(), origin="other.example/log")
    with pytest.raises(VerificationError):
        open_checkpoint(note, _signer("gw.example/audit/v1").verifier())
    bogus = sign_note("not a checkpoint\n", [signer])
    with pytest.raises(RecordError, match="checkpoint has 1 line"):
        open_checkpoint(bogus, signer.verifier())


# -- cosignatures ------------------------------------------------------------------------


def test_cosignature_round_trip() -> None:
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    line = cosigner.cosign(body, 1_700_000_000)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    payload = _b64_payload(line)
    assert payload[:4] == key_id("witness.example/w1", 0x04, cosigner.key.public_key().raw)
    assert int.from_bytes(payload[4:12], "big") == 1_700_000_000
    signed = f"cosignature/v1\ntime 1700000000\n{body}".encode()
    cosigner.key.public_key().verify(payload[12:], signed)
    assert verify_cosignature(line, body, cosigner.verifier()) == 1_700_000_000
    verifier = CosignatureVerifier.from_vkey(cosigner.verifier().vkey)
    assert verifier.vkey.split("+")[2].startswith("B")  # 0x04 type byte
    assert verify_cosignature(line.rstrip("\n"), body, verifier) == 1_700_000_000


def test_cosignature_lines_do_not_disturb_the_log_signature() -> None:
    log = _signer("gw.example/audit/v1")
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    note = sign_note(body, [log]) + cosigner.cosign(body, 5)
    assert open_checkpoint(note, log.verifier()).size == 7


def test_tampered_cosignatures_fail() -> None:
    cosigner = CosignatureSigner("witness.example/w1", SigningKey.generate())
    body = Checkpoint("gw.example/audit/v1", 7, ROOT).body()
    line = cosigner.cosign(body, 1_700_000_000)
    verifier = cosigner.verifier()
    other_body = Checkpoint("gw.example/audit/v1", 8, ROOT).body()
    with pytest.raises(VerificationError, match="does not verify"):
        verify_cosignature(line, other_body, verifier)

    payload = bytearray(_b64_payload(line))
    payload[11] ^= 1  # a different timestamp
    retimed = f"\u2014 witness.example/w1 {base64.b64encode(bytes(payload)).decode()}\n"
    with pytest.raises(VerificationError, match="does not verify"):
        verify_cosignature(retimed, body, verifier)

    truncated = f"\u2014 witness.example/w1 {base64.b64encode(bytes(payload[:-1])).decode()}\n"
    with pytest.raises(VerificationError, match="expected 72"):
        verify_cosignature(truncated, body, verifier)

    stranger = CosignatureSigner("witness.example/w1", SigningKey.generate()).verifier()
    with pytest.raises(VerificationError, match=r"not witness\.example/w1"):
        verify_cosignature(line, body, stranger)

    # a log's note signature is not a cosignature, even by the same key and name
    as_note = NoteSigner("witness.example/w1", cosigner.key).sign_note(body)
    with pytest.raises(VerificationError):
        verify_cosignature(as_note, body, verifier)


def test_cosign_validates_input() -> None:
    cosigner = CosignatureSigner("w.example", SigningKey.generate())
    body = Checkpoint("o", 1, ROOT).body()
    with pytest.raises(RecordError, match="timestamp"):
        cosigner.cosign(body, -1)
    with pytest.raises(RecordError, match="timestamp"):
        cosigner.cosign(body, 2**63)
    with pytest.raises(RecordError, match="checkpoint"):
        cosigner.cosign("not a checkpoint\n", 1)
