"""docs/PROTOCOL.md §3.1 and its worked redactable Listing, recomputed from the code.

Every value of the ``listing-v2-*`` blocks is derived twice: once by the codec
(``encode_record`` with the documented salts, ``dsse.sign``), once from the formula as
the document states it, with hashlib, protobuf and ``cryptography`` alone. The field
tables of §3 and §3.1 are compared with the codec's own tables. So neither the document
nor the code can change without the other.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from google.protobuf import json_format

from gateway import codec
from gateway.core import dsse
from gateway.core.crypto import SigningKey
from gateway.core.disclosure import DOMAIN, Group, commitment, keyed_salt
from gateway.core.statements import (
    ERASURE_V1,
    GOVERNMENT_MEASURE_V2,
    LISTING_V1,
    LISTING_V2,
    SANCTION_CONFIRMATION_V2,
    STATUS_CHANGE_V2,
    Listing,
)
from gateway.pb.alliance.v1 import envelope_pb2 as env_pb
from gateway.pb.alliance.v1 import statements_pb2 as pb

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
_BLOCK = re.compile(
    r"^```(?:text|hex|json) example=([\w-]+)\n(.*?)\n```$", re.MULTILINE | re.DOTALL
)
# RFC 8032 §7.1 TEST 1, the key of every worked example (section 4.3).
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
# The documented salts: 0x00..0x1f for SUBJECT, 0x20..0x3f for TEXT, 0x40..0x5f for STORES.
SALTS = {
    Group.SUBJECT: bytes(range(0x00, 0x20)),
    Group.TEXT: bytes(range(0x20, 0x40)),
    Group.STORES: bytes(range(0x40, 0x60)),
}
_NAMES = {Group.SUBJECT: "subject", Group.TEXT: "text", Group.STORES: "stores"}


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ex(text: str) -> dict[str, str]:
    blocks = _BLOCK.findall(text)
    names = [name for name, _ in blocks]
    assert len(names) == len(set(names)), "an example name is used twice"
    return dict(blocks)


def _hex(block: str) -> bytes:
    return bytes.fromhex("".join(block.split()))


def _lines(block: str) -> list[bytes]:
    return [bytes.fromhex(line) for line in block.splitlines()]


def _v1_payload(text: str) -> bytes:
    """The payload of "Worked example: a Listing" (listing.v1)."""
    start = text.index("Example listing payload:")
    match = re.compile(r"```hex\n(.*?)```", re.DOTALL).search(text, start)
    assert match is not None
    return _hex(match.group(1))


def _v1_listing(text: str) -> Listing:
    """The listing of "Worked example: a Listing", read from its v1 payload."""
    stmt = codec.decode_statement(LISTING_V1, _v1_payload(text))
    assert isinstance(stmt, Listing)
    return stmt


def _documented_salt(group: Group, clear: bytes) -> bytes:
    return SALTS[group]


@pytest.fixture(scope="module")
def encoded(text: str) -> codec.Encoded:
    return codec.encode_record(_v1_listing(text), LISTING_V2, salt=_documented_salt)


def test_the_salts_are_the_documented_bytes(ex: dict[str, str]) -> None:
    assert _lines(ex["disclosure-salts"]) == [SALTS[g] for g in sorted(SALTS)]


def test_the_disclosure_values_and_digests_are_what_the_codec_writes(
    ex: dict[str, str], text: str, encoded: codec.Encoded
) -> None:
    assert encoded.payload_type == LISTING_V2
    assert [d.group for d in encoded.disclosures] == [Group.SUBJECT, Group.TEXT, Group.STORES]
    digests = _lines(ex["listing-v2-digests"])
    for d, digest in zip(encoded.disclosures, digests, strict=True):
        value = _hex(ex[f"listing-v2-{_NAMES[d.group]}-value"])
        assert d.salt == SALTS[d.group]
        assert d.value == value
        assert f"{d.group.name}, {len(value)} bytes:" in text
        assert d.digest == commitment(d.group, d.salt, d.value) == digest


def test_the_digest_formula_as_documented(ex: dict[str, str], text: str) -> None:
    """The §3.1 formula, with hashlib alone, over the documented salts and values."""
    assert 'SHA-256("alliance.v1.disclosure" ‖ LF ‖ group ‖ salt ‖ value)' in text
    domain = b"alliance.v1.disclosure" + b"\x0a"
    assert domain == DOMAIN and len(domain) == 23
    digests = _lines(ex["listing-v2-digests"])
    for group, digest in zip(sorted(SALTS), digests, strict=True):
        value = _hex(ex[f"listing-v2-{_NAMES[group]}-value"])
        preimage = domain + bytes([group]) + SALTS[group] + value
        assert hashlib.sha256(preimage).digest() == digest


def test_the_preimage_layout(ex: dict[str, str], text: str) -> None:
    domain, group, salt, value = _lines(ex["listing-v2-subject-preimage"])
    assert domain == b"alliance.v1.disclosure\n"
    assert group == b"\x01"
    assert salt == SALTS[Group.SUBJECT]
    assert value == _hex(ex["listing-v2-subject-value"])
    preimage = domain + group + salt + value
    assert f"({len(preimage)} bytes in all" in text
    assert hashlib.sha256(preimage).digest() == _lines(ex["listing-v2-digests"])[0]


def test_the_payload_is_what_the_codec_writes(
    ex: dict[str, str], text: str, encoded: codec.Encoded
) -> None:
    payload = _hex(ex["listing-v2-payload"])
    assert encoded.payload == payload
    assert f"The payload ({len(payload)} bytes)" in text
    # Read with protobuf alone: the fields in the clear, and one commitment per group
    # holding the documented digests, in group order.
    msg = pb.Listing.FromString(payload)
    assert not msg.HasField("subject")
    assert (msg.decision_ref, msg.summary, msg.legal_basis) == ("", "", "")
    assert [(c.group, c.digest) for c in msg.commitments] == list(
        zip((1, 2, 3), _lines(ex["listing-v2-digests"]), strict=True)
    )
    assert payload.count(bytes.fromhex("820124")) == 3


def test_the_record_id_and_signature(ex: dict[str, str], encoded: codec.Encoded) -> None:
    payload = _hex(ex["listing-v2-payload"])
    key = SigningKey.from_raw(SEED)
    env = dsse.sign(LISTING_V2, payload, key)
    assert env.record_id == ex["listing-v2-record-id"]
    (signature,) = env.signatures
    assert signature.sig.hex() == ex["listing-v2-signature"]
    assert signature.keyid == ex["keyid"]
    # The same from the formulas of §2.2, with hashlib and cryptography alone.
    body = LISTING_V2.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(body), body, len(payload), payload)
    assert hashlib.sha256(pae).hexdigest() == ex["listing-v2-record-id"]
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(ex["public-key"]))
    public.verify(bytes.fromhex(ex["listing-v2-signature"]), pae)
    # Disclosures are no part of the record id.
    assert dsse.with_disclosures(env, encoded.disclosures).record_id == env.record_id


def test_the_envelope_json_view(ex: dict[str, str], encoded: codec.Encoded) -> None:
    key = SigningKey.from_raw(SEED)
    env = dsse.with_disclosures(dsse.sign(LISTING_V2, encoded.payload, key), encoded.disclosures)
    documented = json.loads(ex["listing-v2-envelope"])
    assert json.loads(json_format.MessageToJson(codec.envelope_to_pb(env))) == documented
    assert base64.b64decode(documented["payload"]) == _hex(ex["listing-v2-payload"])
    # Parsed back as a foreign client would send it, it verifies and reads as the listing.
    received = codec.envelope_from_pb(
        json_format.Parse(ex["listing-v2-envelope"], env_pb.Envelope())
    )
    assert received == env
    assert dsse.verify(received, [key.public_key()]) == key.public_key()


def test_reading_it_gives_the_v1_listing_back(
    ex: dict[str, str], text: str, encoded: codec.Encoded
) -> None:
    payload = _hex(ex["listing-v2-payload"])
    assert codec.decode_statement(LISTING_V2, payload, encoded.disclosures) == _v1_listing(text)
    # §3.1 step 5: parsing the concatenation of payload and values gives the same fields.
    values = [_hex(ex[f"listing-v2-{_NAMES[g]}-value"]) for g in sorted(SALTS)]
    merged = pb.Listing.FromString(payload + b"".join(values))
    merged.ClearField("commitments")
    expected = pb.Listing.FromString(codec.encode_record(_v1_listing(text), LISTING_V1).payload)
    assert merged == expected


def test_read_without_disclosures_it_is_a_redacted_listing(ex: dict[str, str], text: str) -> None:
    stmt = codec.decode_statement(LISTING_V2, _hex(ex["listing-v2-payload"]))
    clear = _v1_listing(text)
    assert isinstance(stmt, Listing) and stmt.redacted
    assert stmt.subject is None
    assert (stmt.decision_ref, stmt.summary, stmt.legal_basis) == ("", "", "")
    assert (stmt.issuer, stmt.list, stmt.conduct, stmt.region_code, stmt.listed_at) == (
        clear.issuer,
        clear.list,
        clear.conduct,
        clear.region_code,
        clear.listed_at,
    )
    assert stmt.deadline == clear.deadline


def test_the_key_derived_salts_as_documented(ex: dict[str, str], text: str) -> None:
    formula = (
        'salt(group) = SHA-256(Ed25519-Sign(key, "alliance.v1.disclosure" ‖ LF ‖ "salt" ‖ LF '
        "‖ group ‖ clear))"
    )
    assert formula in text
    clear = _v1_payload(text)
    assert f"`clear` is the {len(clear)}-byte `listing.v1` payload" in text
    documented = _lines(ex["listing-v2-keyed-salts"])
    # The formula with cryptography and hashlib alone...
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    prefix = b"alliance.v1.disclosure\nsalt\n"
    assert documented == [
        hashlib.sha256(private.sign(prefix + bytes([g]) + clear)).digest() for g in (1, 2, 3)
    ]
    # ...is what the gateway's keyed_salt and the client's seal use.
    key = SigningKey.from_raw(SEED)
    assert documented == [keyed_salt(key.sign)(g, clear) for g in sorted(Group)]
    env = codec.seal(_v1_listing(text), key)
    assert [d.salt for d in env.disclosures] == documented
    assert f"the record id\n`{env.record_id}`, whenever it is\nsigned" in text
    assert codec.decode_envelope(env) == _v1_listing(text)


# --- the field tables of §3 and §3.1 against the codec's ----------------------------


DASH = "\u2013"  # the document writes ranges and "none" with an en dash


def _numbers(cell: str) -> frozenset[int]:
    """A cell such as ``1, 3-6, 8`` (en dashes) as a set; a dash alone is the empty set.
    Remarks in parentheses are ignored."""
    out: set[int] = set()
    for part in re.sub(r"\(.*?\)", "", cell).replace("`", "").split(","):
        item = part.strip()
        if item in ("", DASH):
            continue
        low, _, high = item.partition(DASH)
        out.update(range(int(low), int(high or low) + 1))
    return frozenset(out)


def _table(text: str, header: str) -> list[list[str]]:
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.strip().startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


V2_COLUMNS = (LISTING_V2, STATUS_CHANGE_V2, SANCTION_CONFIRMATION_V2, GOVERNMENT_MEASURE_V2,
              ERASURE_V1)  # fmt: skip


def _carried(schema: codec.PayloadSchema) -> dict[str, frozenset[int]]:
    """The fields a payload of ``schema`` carries, per message reachable from its root
    through carried fields (the codec's tables also list messages no field leads to)."""
    out: dict[str, frozenset[int]] = {}
    todo = [schema.message.DESCRIPTOR]
    while todo:
        desc = todo.pop()
        if desc.full_name in out:
            continue
        out[desc.full_name] = schema.fields.get(desc.full_name, frozenset())
        todo += [
            f.message_type
            for f in desc.fields
            if f.number in out[desc.full_name] and f.message_type is not None
        ]
    return out


def test_the_revision_4_field_table_is_the_codecs(text: str) -> None:
    rows = _table(text, "| Message | `listing.v2` | `status-change.v2` |")
    assert len(rows) == 8
    documented: dict[str, dict[str, frozenset[int]]] = {t: {} for t in V2_COLUMNS}
    for message, *cells in rows:
        for payload_type, cell in zip(V2_COLUMNS, cells, strict=True):
            for name in re.findall(r"`([A-Za-z.]+)`", message):
                full = name if "." in name else f"alliance.v1.{name}"
                if _numbers(cell):
                    documented[payload_type][full] = _numbers(cell)
    for payload_type in V2_COLUMNS:
        assert documented[payload_type] == _carried(codec.PAYLOAD_SCHEMAS[payload_type])


def test_the_disclosure_value_table_is_the_codecs(text: str) -> None:
    rows = _table(text, "| Disclosure of | Its value carries |")
    statement_types = {
        "Listing": LISTING_V2,
        "StatusChange": STATUS_CHANGE_V2,
        "SanctionConfirmation": SANCTION_CONFIRMATION_V2,
        "GovernmentMeasure": GOVERNMENT_MEASURE_V2,
    }
    seen = set()
    for which, carries in rows:
        match = re.fullmatch(r"(\w+) `(\w+)`", which)
        assert match is not None, which
        statement, group = match.groups()
        schema = codec.PAYLOAD_SCHEMAS[statement_types[statement]]
        documented = {
            f"alliance.v1.{m}": _numbers(nums)
            for m, nums in re.findall(rf"`(\w+)` ([\d{DASH}, ]+?)(?:;|$)", carries)
        }
        actual = {k: v for k, v in schema.groups[Group[group]].fields.items() if v}
        assert documented == actual, which
        seen.add((statement, Group[group]))
    assert seen == {
        (s, g) for s, t in statement_types.items() for g in codec.PAYLOAD_SCHEMAS[t].groups
    }


def test_the_group_table_names_each_types_groups(text: str) -> None:
    header = "| Statement (payload type) | `SUBJECT` = 1 | `TEXT` = 2 | `STORES` = 3 |"
    assert [(g.name, g.value) for g in Group] == [("SUBJECT", 1), ("TEXT", 2), ("STORES", 3)]
    rows = _table(text, header)
    assert len(rows) == 4
    for statement, *cells in rows:
        match = re.search(r"\(`([\w.-]+)`\)", statement)
        assert match is not None, statement
        schema = codec.PAYLOAD_SCHEMAS[f"application/vnd.alliance.{match.group(1)}+protobuf"]
        committed = {g for g, cell in zip(Group, cells, strict=True) if cell != DASH}
        assert committed == set(schema.groups), statement
