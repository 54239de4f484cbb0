"""Identifiers that records carry: credit codes, resident IDs, regions and member ids.

Each validator returns the value it accepts (normalised where the standard allows a
variant spelling) and raises ``RecordError`` naming the field, so a caller can build a
model from its result without a second look. The algorithms and their sources are in
``docs/PROTOCOL.md`` and the reference domain notes.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
import hashlib
import hmac
import itertools
import operator
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gateway.errors import RecordError

__all__ = [
    "REPORTING_UNITS",
    "XPCC_REGION_CODE",
    "MemberId",
    "Role",
    "find_mobile_numbers",
    "find_resident_ids",
    "implausible_hmac",
    "person_hmac",
    "reporting_unit",
    "validate_region_code",
    "validate_resident_id",
    "validate_trust_domain",
    "validate_uscc",
]

_DIGITS = "0123456789"


class Role(enum.IntEnum):
    """Member roles, numbered as ``alliance.v1.Role``.

    Defined here because a role is part of a member's identity (the SPIFFE path);
    ``gateway.core.statements`` re-exports it with the other wire enums.
    """

    PLATFORM = 1
    AUTHORITY = 2
    GATEWAY = 3
    MONITOR = 4


# --- Unified Social Credit Code (GB 32100-2015) -------------------------------------

# 31 symbols: I, O, S, V and Z are never used, so they cannot be misread.
_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_CHARSET)}
# 3**i mod 31 for i = 0..16.
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714 organization code (positions 9-17 of a USCC), weights over its 8-char body.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# The organization check character of a value 11 - total % 11 (1..11): 10 is X, 11 is 0.
_ORG_CHECK = "0123456789X0"
# Byte tables for bytes.translate: each ASCII byte of the charset to its USCC value
# (0..30), or to its GB 11714 value (digits 0-9, letters A=10 .. Z=35); every byte
# outside the charset to 0xFF, which no valid code contains.
_NOT_USCC = 0xFF
_USCC_BYTE_VALUE = bytes(_USCC_VALUE.get(chr(b), _NOT_USCC) for b in range(256))
_ORG_BYTE_VALUE = bytes(int(chr(b), 36) if chr(b) in _USCC_VALUE else _NOT_USCC for b in range(256))


def _uscc_check(code17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(code17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


def _org_code_check(body8: str) -> str:
    # GB 11714 values: digits 0-9, letters A=10 .. Z=35 (base-36 digit values).
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    return _ORG_CHECK[11 - total % 11]


def _uscc_holds(code: str) -> bool:
    """True when ``code`` is a valid USCC, computed over bytes in C loops.

    Batch lookups validate thousands of codes a call, so the common case is made
    cheap; ``False`` sends the caller to the checks that name what is wrong, which
    decide alone whether a code is refused.
    """
    if len(code) != 18 or not code.isascii():
        return False
    raw = code.encode("ascii")
    values = raw.translate(_USCC_BYTE_VALUE)
    if _NOT_USCC in values:
        return False
    # map() stops with the shorter input: the weights cover the first 17 characters.
    if _USCC_CHARSET[-sum(map(operator.mul, values, _USCC_WEIGHTS)) % 31] != code[17]:
        return False
    org = raw[8:16].translate(_ORG_BYTE_VALUE)
    return _ORG_CHECK[11 - sum(map(operator.mul, org, _ORG_WEIGHTS)) % 11] == code[16]


def validate_uscc(code: str, *, field: str = "uscc") -> str:
    """Accept an 18-character Unified Social Credit Code whose two check characters hold.

    Both the code's own mod-31 check (position 18) and the embedded organization code's
    mod-11 check (position 17) are verified, so a single mistyped character is caught.
    Lower case is refused rather than folded: the code is a lookup key and must be
    spelled one way on the wire.
    """
    if not isinstance(code, str):
        raise RecordError(f"{field}: must be a string")
    if _uscc_holds(code):
        return code
    if len(code) != 18:
        raise RecordError(f"{field}: must be 18 characters, got {len(code)}")
    if any(c.islower() for c in code):
        raise RecordError(f"{field}: must be upper case")
    for pos, c in enumerate(code, start=1):
        if c not in _USCC_VALUE:
            raise RecordError(
                f"{field}: character {c!r} at position {pos} is not in the USCC "
                f"character set {_USCC_CHARSET}"
            )
    expected = _uscc_check(code[:17])
    if code[17] != expected:
        raise RecordError(f"{field}: check character is {code[17]}, expected {expected}")
    expected_org = _org_code_check(code[8:16])
    if code[16] != expected_org:
        raise RecordError(
            f"{field}: organization code check character (position 17) is {code[16]}, "
            f"expected {expected_org}"
        )
    return code  # the named checks decide; test_identifiers holds the two in agreement


# --- Resident identity card number (GB 11643-1999) ----------------------------------

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK = "10X98765432"


def validate_resident_id(number: str, *, field: str = "resident_id") -> str:
    """Accept an 18-character resident ID number; return it with an upper-case ``X``.

    A lower-case ``x`` check character is common in data entry and unambiguous, so it
    is normalised here, before the number is hashed.
    """
    if not isinstance(number, str):
        raise RecordError(f"{field}: must be a string")
    if len(number) != 18:
        raise RecordError(f"{field}: must be 18 characters, got {len(number)}")
    if not all(c in _DIGITS for c in number[:17]):
        raise RecordError(f"{field}: the first 17 characters must be ASCII digits")
    normalised = number[:17] + number[17].upper()
    if normalised[17] not in _DIGITS + "X":
        raise RecordError(f"{field}: the check character must be a digit or X")
    total = sum(int(c) * w for c, w in zip(normalised[:17], _RID_WEIGHTS, strict=True))
    expected = _RID_CHECK[total % 11]
    if normalised[17] != expected:
        raise RecordError(f"{field}: check character is {normalised[17]}, expected {expected}")
    birth = normalised[6:14]
    try:
        _dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        raise RecordError(f"{field}: birth date {birth} is not a real date") from None
    return normalised


_MIN_ALLIANCE_KEY_BYTES = 32


def person_hmac(resident_id: str, alliance_key: bytes) -> bytes:
    """Return the 32-byte pseudonym of a natural person shared between members.

    The plain number stays with the member that holds it; only this HMAC, keyed by
    the alliance-wide secret, crosses organisations (PIPL art. 23, 51).
    """
    normalised = validate_resident_id(resident_id)
    if not isinstance(alliance_key, bytes):
        raise RecordError("alliance_key: must be bytes")
    if len(alliance_key) < _MIN_ALLIANCE_KEY_BYTES:
        raise RecordError(
            f"alliance_key: must be at least {_MIN_ALLIANCE_KEY_BYTES} bytes, "
            f"got {len(alliance_key)}"
        )
    return hmac.new(alliance_key, normalised.encode("ascii"), hashlib.sha256).digest()


# --- Personal data where it must not be -------------------------------------------
#
# Records are append-only and replicated to every region, so a gateway refuses text
# that carries a person's identifiers (docs/PROTOCOL.md §3, "Content rules"). Text is
# scanned after NFKC normalisation, so full-width digits (U+FF10..U+FF19) are found too. A
# match must not touch an ASCII letter or digit on either side: an 11-digit run inside
# a credit code such as 91330100716105852F is not a phone number. CJK characters and
# punctuation are no such boundary: "手机13800138000" is a phone number.

_NOT_AFTER_ALNUM = r"(?<![0-9A-Za-z])"
_NOT_BEFORE_ALNUM = r"(?![0-9A-Za-z])"
_RESIDENT_ID_CANDIDATE = re.compile(_NOT_AFTER_ALNUM + r"[0-9]{17}[0-9Xx]" + _NOT_BEFORE_ALNUM)
# A mainland mobile number: 1[3-9] and 9 more digits, written solid or grouped 3-4-4
# with one space or hyphen, optionally after the country code (+86, 0086 or 86).
_MOBILE = re.compile(
    _NOT_AFTER_ALNUM
    + r"(?:(?:\+|00)?86[ -]?)?(1[3-9][0-9])([ -]?)([0-9]{4})\2([0-9]{4})"
    + _NOT_BEFORE_ALNUM
)


def _normalised(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def find_resident_ids(text: str) -> Iterator[str]:
    """Valid 18-character resident ID numbers written in ``text`` (check and date hold)."""
    for match in _RESIDENT_ID_CANDIDATE.finditer(_normalised(text)):
        try:
            yield validate_resident_id(match.group())
        except RecordError:
            continue


def find_mobile_numbers(text: str) -> Iterator[str]:
    """Mainland mobile numbers written in ``text``, as 11 digits."""
    for match in _MOBILE.finditer(_normalised(text)):
        yield match.group(1) + match.group(3) + match.group(4)


# person_hmac must look like what it claims to be: HMAC-SHA-256 output, which is
# uniform. These patterns are what a raw or padded resident ID, a text string or a
# zero-filled buffer look like; a uniformly random 32-byte value shows one of them
# with probability below 2e-14 (computed in docs/PROTOCOL.md and its test).
HMAC_MAX_REPEAT = 8  # a run of this many equal bytes
HMAC_MAX_ID_CHARS = 12  # a run of this many bytes from "0123456789Xx"
_ID_BYTES = frozenset(b"0123456789Xx")


def implausible_hmac(value: bytes) -> str | None:
    """Why ``value`` is plainly not HMAC-SHA-256 output, or None when it may be."""
    run = longest = 1
    for previous, current in itertools.pairwise(value):
        run = run + 1 if current == previous else 1
        longest = max(longest, run)
    if longest >= HMAC_MAX_REPEAT:
        return f"it holds a run of {longest} equal bytes (padding?)"
    if value and all(0x20 <= b <= 0x7E for b in value):
        return "every byte is printable ASCII (text, not a hash)"
    run = longest = 0
    for b in value:
        run = run + 1 if b in _ID_BYTES else 0
        longest = max(longest, run)
    if longest >= HMAC_MAX_ID_CHARS:
        return f"it holds {longest} ASCII digits in a row (a resident ID number?)"
    return None


# --- Regions and reporting units -----------------------------------------------------

# Region code of the Xinjiang Production and Construction Corps. GB/T 2260 has no
# provincial code for it; 660000 is a convention of government systems, adopted here so
# that the Corps reports as its own unit, as the governing notice addresses it.
XPCC_REGION_CODE = "660000"

REPORTING_UNITS: Mapping[str, str] = MappingProxyType(
    {
        "11": "Beijing",
        "12": "Tianjin",
        "13": "Hebei",
        "14": "Shanxi",
        "15": "Inner Mongolia",
        "21": "Liaoning",
        "22": "Jilin",
        "23": "Heilongjiang",
        "31": "Shanghai",
        "32": "Jiangsu",
        "33": "Zhejiang",
        "34": "Anhui",
        "35": "Fujian",
        "36": "Jiangxi",
        "37": "Shandong",
        "41": "Henan",
        "42": "Hubei",
        "43": "Hunan",
        "44": "Guangdong",
        "45": "Guangxi",
        "46": "Hainan",
        "50": "Chongqing",
        "51": "Sichuan",
        "52": "Guizhou",
        "53": "Yunnan",
        "54": "Tibet",
        "61": "Shaanxi",
        "62": "Gansu",
        "63": "Qinghai",
        "64": "Ningxia",
        "65": "Xinjiang",
        "66": "Xinjiang Production and Construction Corps",
    }
)


def validate_region_code(code: str, *, field: str = "region_code") -> str:
    """Accept a 6-digit region code inside one of the 32 reporting units.

    Only the provincial prefix is checked: county codes change every year, and an old
    code must not make a record invalid.
    """
    if not isinstance(code, str):
        raise RecordError(f"{field}: must be a string")
    if len(code) != 6 or not all(c in _DIGITS for c in code):
        raise RecordError(f"{field}: must be 6 ASCII digits, got {code!r}")
    if code[:2] not in REPORTING_UNITS:
        raise RecordError(
            f"{field}: prefix {code[:2]} is not a provincial-level unit of GB/T 2260 "
            f"(or 66 for the XPCC)"
        )
    return code


def reporting_unit(region_code: str) -> str:
    """Return the 2-digit reporting unit (a ``REPORTING_UNITS`` key) of a region code."""
    return validate_region_code(region_code)[:2]


# --- Member ids (SPIFFE) -------------------------------------------------------------

_SPIFFE_SCHEME = "spiffe://"
_TRUST_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")
_NAME_CHARS = _TRUST_DOMAIN_CHARS
_MAX_TRUST_DOMAIN = 255
_MAX_NAME = 128
_ROLE_BY_SEGMENT = {role.name.lower(): role for role in Role}
_SEGMENT_BY_ROLE = {role: segment for segment, role in _ROLE_BY_SEGMENT.items()}


@dataclass(frozen=True, slots=True)
class MemberId:
    """A member of an alliance, as named by the URI SAN of its certificate.

    The string form is canonical (everything lower case, no optional parts), so two
    member ids are the same member exactly when their strings are equal.
    """

    trust_domain: str
    role: Role
    name: str

    def __post_init__(self) -> None:
        _check_trust_domain(self.trust_domain, "member_id")
        if not isinstance(self.role, Role):
            raise RecordError("member_id: role must be a Role")
        _check_name(self.name, "member_id")

    @classmethod
    def parse(cls, value: str, *, field: str = "member_id") -> MemberId:
        """Parse ``spiffe://<trust-domain>/<role>/<name>``.

        A few members sign almost every record, so ids that parsed are kept (bounded:
        ids are client input); a bad id is parsed again to word the error for ``field``.
        """
        if isinstance(value, str):
            try:
                return _parse_member_id(value)
            except RecordError:
                pass
        return cls._parse(value, field)

    @classmethod
    def _parse(cls, value: str, field: str) -> MemberId:
        if not isinstance(value, str):
            raise RecordError(f"{field}: must be a string")
        if not value.startswith(_SPIFFE_SCHEME):
            raise RecordError(f"{field}: must start with {_SPIFFE_SCHEME}, got {value!r}")
        parts = value[len(_SPIFFE_SCHEME) :].split("/")
        if len(parts) != 3:
            raise RecordError(
                f"{field}: must be {_SPIFFE_SCHEME}<trust-domain>/<role>/<name>, got {value!r}"
            )
        trust_domain, segment, name = parts
        _check_trust_domain(trust_domain, field)
        role = _ROLE_BY_SEGMENT.get(segment)
        if role is None:
            raise RecordError(
                f"{field}: role {segment!r} is not one of {', '.join(_ROLE_BY_SEGMENT)}"
            )
        _check_name(name, field)
        return cls(trust_domain, role, name)

    def __str__(self) -> str:
        # The segment from a table: Enum.name is a descriptor call, and authorization
        # compares a record's issuer with its signer's string form once a record.
        return f"{_SPIFFE_SCHEME}{self.trust_domain}/{_SEGMENT_BY_ROLE[self.role]}/{self.name}"


@functools.lru_cache(maxsize=1024)
def _parse_member_id(value: str) -> MemberId:
    return MemberId._parse(value, "member_id")


def validate_trust_domain(value: str, *, field: str = "trust_domain") -> str:
    """Accept a SPIFFE trust domain as member ids use it (1-255 of a-z 0-9 . - _)."""
    _check_trust_domain(value, field)
    return value


def _check_trust_domain(value: str, field: str) -> None:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field}: trust domain must not be empty")
    if len(value) > _MAX_TRUST_DOMAIN:
        raise RecordError(f"{field}: trust domain is longer than {_MAX_TRUST_DOMAIN} characters")
    if not set(value) <= _TRUST_DOMAIN_CHARS:
        raise RecordError(
            f"{field}: trust domain {value!r} may contain only lower-case letters, "
            f"digits, '.', '-' and '_'"
        )


def _check_name(value: str, field: str) -> None:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field}: name must not be empty")
    if len(value) > _MAX_NAME:
        raise RecordError(f"{field}: name is longer than {_MAX_NAME} characters")
    if not set(value) <= _NAME_CHARS:
        raise RecordError(
            f"{field}: name {value!r} may contain only lower-case letters, digits, '.', '-' and '_'"
        )
    if value in {".", ".."}:
        # SPIFFE forbids dot segments: they would change meaning when a URI is resolved.
        raise RecordError(f"{field}: name must not be '.' or '..'")
