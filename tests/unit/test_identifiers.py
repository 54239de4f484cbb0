"""Credit codes, resident IDs, regions and member ids (domain-notes.md §1-3)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import identifiers
from gateway.core.identifiers import (
    REPORTING_UNITS,
    XPCC_REGION_CODE,
    MemberId,
    Role,
    person_hmac,
    reporting_unit,
    validate_region_code,
    validate_resident_id,
    validate_uscc,
)
from gateway.core.statements import Role as StatementsRole
from gateway.errors import RecordError

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

VALID_USCC = [
    "91330100716105852F",
    "91440300708461136T",
    "91110000802100433B",
    "91110108551385082Q",
    "91110000600037341L",
    "913502000728319549",
    "12100000425006133D",
    "91350200MA31E12PXF",
]


def _with_check(code17: str) -> str:
    """Append a correct mod-31 check character (an independent restatement)."""
    weights = [pow(3, i, 31) for i in range(17)]
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(code17, weights, strict=True))
    return code17 + USCC_CHARSET[(31 - total % 31) % 31]


# --- USCC ----------------------------------------------------------------------------


@pytest.mark.parametrize("code", VALID_USCC)
def test_valid_uscc_pass_both_checks(code: str) -> None:
    assert validate_uscc(code) == code


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91110108551385082R", r"^uscc: check character is R, expected Q$"),
        ("9144030071526726X7", r"^uscc: check character is 7, expected G$"),
        ("91110108MA01FQ8B0B", r"^uscc: check character is B, expected 7$"),
    ],
)
def test_invalid_uscc_vectors(code: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        validate_uscc(code)


def test_uscc_organization_code_check_is_verified() -> None:
    # Valid mod-31 check, but position 17 should be 2 (pos-17 check alone fails).
    code = _with_check("91330100716105853")
    with pytest.raises(RecordError, match=r"uscc: organization code check .* is 3, expected 2"):
        validate_uscc(code)
    # 91110108MA01FQ8B0B fails both checks: with its mod-31 check repaired, pos 17 fails.
    fixed = _with_check("91110108MA01FQ8B0")
    with pytest.raises(RecordError, match=r"position 17\) is 0, expected 1"):
        validate_uscc(fixed)


def test_uscc_org_check_maps_10_to_x_and_11_to_0() -> None:
    assert validate_uscc("91350200MA31E12PXF")[16] == "X"
    # Body whose sum is 0 mod 11 -> 11 -> "0".
    code = _with_check("9133010000000000" + "0")
    assert validate_uscc(code)[16] == "0"


def test_uscc_weights_are_powers_of_three() -> None:
    from gateway.core import identifiers

    assert list(identifiers._USCC_WEIGHTS) == [pow(3, i, 31) for i in range(17)]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("9133010071610585", r"^uscc: must be 18 characters, got 16$"),
        ("91330100716105852F0", r"^uscc: must be 18 characters, got 19$"),
        ("91330100716105852f", r"^uscc: must be upper case$"),
        ("91330100716I05852F", r"^uscc: character 'I' at position 12 is not in"),
        ("91330100716105852O", r"^uscc: character 'O' at position 18"),
        ("9133010071610585 F", r"^uscc: character ' ' at position 17"),
    ],
)
def test_uscc_shape_errors(code: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        validate_uscc(code)


def test_uscc_error_names_given_field() -> None:
    with pytest.raises(RecordError, match=r"^subject\.uscc: check character"):
        validate_uscc("91110108551385082R", field="subject.uscc")


def test_uscc_rejects_non_string() -> None:
    with pytest.raises(RecordError, match=r"^uscc: must be a string$"):
        validate_uscc(12345)  # type: ignore[arg-type]


@given(st.sampled_from(VALID_USCC), st.integers(0, 17), st.sampled_from(USCC_CHARSET))
def test_any_single_substitution_is_caught(code: str, pos: int, char: str) -> None:
    mutated = code[:pos] + char + code[pos + 1 :]
    if mutated == code:
        return
    with pytest.raises(RecordError, match=r"^uscc: "):
        validate_uscc(mutated)


def _org_check(body8: str) -> str:
    """GB 11714: weights over the organization code body, check 11 - total mod 11."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    check = 11 - sum(int(c, 36) * w for c, w in zip(body8, weights, strict=True)) % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def _reference_uscc(code: str) -> bool:
    """GB 32100 restated from the standard's text, one character at a time."""
    if len(code) != 18 or any(c not in USCC_CHARSET for c in code):
        return False
    return code[16] == _org_check(code[8:16]) and _with_check(code[:17]) == code


def _valid_uscc(body: str) -> str:
    """A valid code whose first 16 characters are ``body`` (both checks appended)."""
    return _with_check(body + _org_check(body[8:16]))


_NEAR_USCC_CHARS = USCC_CHARSET + "IOSVZabcxy \x00\u00e9\uff11"


@given(
    st.one_of(
        st.text(USCC_CHARSET, min_size=16, max_size=16).map(_valid_uscc),
        st.sampled_from(VALID_USCC),
    ),
    st.lists(st.tuples(st.integers(0, 18), st.text(_NEAR_USCC_CHARS, max_size=2)), max_size=3),
)
def test_uscc_accepted_exactly_when_the_standard_holds(
    code: str, edits: list[tuple[int, str]]
) -> None:
    # The batch lookup validates codes with a fast path over bytes; whatever it does,
    # a code is accepted exactly when the standard's checks hold, and a valid code takes
    # the fast path.
    for pos, text in edits:
        code = code[:pos] + text + code[pos + 1 :]
    if _reference_uscc(code):
        assert validate_uscc(code) == code
        assert identifiers._uscc_holds(code)
    else:
        with pytest.raises(RecordError, match=r"^uscc: "):
            validate_uscc(code)


# --- resident ID ---------------------------------------------------------------------

VALID_RESIDENT_IDS = [
    "11010519491231002X",
    "440524188001010014",
    "360426199101010071",
    "513101198201130014",
]


@pytest.mark.parametrize("number", VALID_RESIDENT_IDS)
def test_valid_resident_ids(number: str) -> None:
    assert validate_resident_id(number) == number


def test_lower_case_x_is_normalised() -> None:
    assert validate_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("110105194912310021", r"^resident_id: check character is 1, expected X$"),
        ("11010519491231002", r"^resident_id: must be 18 characters, got 17$"),
        ("1101051949123100AX", r"^resident_id: the first 17 characters must be ASCII digits$"),
        ("11010519491231002Y", r"^resident_id: the check character must be a digit or X$"),
        (
            "\u0661\u0661010519491231002X",
            r"^resident_id: the first 17 characters must be ASCII digits$",
        ),
    ],
)
def test_resident_id_errors(number: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        validate_resident_id(number)


def _rid_with_check(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return (
        body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]
    )


@pytest.mark.parametrize("birth", ["19490230", "19491301", "20230229", "00000101"])
def test_resident_id_birth_date_must_be_real(birth: str) -> None:
    number = _rid_with_check("110105" + birth + "002")
    with pytest.raises(RecordError, match=rf"^resident_id: birth date {birth} is not a real date$"):
        validate_resident_id(number)


def test_resident_id_leap_day_is_real() -> None:
    number = _rid_with_check("110105" + "20000229" + "002")
    assert validate_resident_id(number) == number


# --- person HMAC ---------------------------------------------------------------------

KEY = bytes(range(32))


def test_person_hmac_is_hmac_sha256_over_ascii_number() -> None:
    expected = hmac.new(KEY, b"11010519491231002X", hashlib.sha256).digest()
    assert person_hmac("11010519491231002X", KEY) == expected
    assert len(expected) == 32


def test_person_hmac_upper_cases_check_character() -> None:
    assert person_hmac("11010519491231002x", KEY) == person_hmac("11010519491231002X", KEY)


def test_person_hmac_validates_number_first() -> None:
    with pytest.raises(RecordError, match=r"^resident_id: check character"):
        person_hmac("110105194912310021", KEY)


def test_person_hmac_key_must_be_32_bytes() -> None:
    with pytest.raises(RecordError, match=r"^alliance_key: must be at least 32 bytes, got 31$"):
        person_hmac("11010519491231002X", KEY[:31])


def test_person_hmac_key_must_be_bytes() -> None:
    with pytest.raises(RecordError, match=r"^alliance_key: must be bytes$"):
        person_hmac("11010519491231002X", "k" * 32)  # type: ignore[arg-type]


# --- regions -------------------------------------------------------------------------


def test_reporting_units_are_31_provinces_plus_xpcc() -> None:
    provinces = {
        *["11", "12", "13", "14", "15", "21", "22", "23"],
        *(str(n) for n in range(31, 38)),
        *(str(n) for n in range(41, 47)),
        *(str(n) for n in range(50, 55)),
        *(str(n) for n in range(61, 66)),
    }
    assert len(provinces) == 31
    assert set(REPORTING_UNITS) == provinces | {"66"}
    assert XPCC_REGION_CODE == "660000"
    assert REPORTING_UNITS["33"] == "Zhejiang"
    assert all(REPORTING_UNITS.values())


@pytest.mark.parametrize("code", ["330100", "110000", "659001", "660000", "540000"])
def test_valid_region_codes(code: str) -> None:
    assert validate_region_code(code) == code


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("33010", r"^region_code: must be 6 ASCII digits"),
        ("3301000", r"^region_code: must be 6 ASCII digits"),
        ("33010A", r"^region_code: must be 6 ASCII digits"),
        ("\uff1330100", r"^region_code: must be 6 ASCII digits"),
        ("710000", r"^region_code: prefix 71 is not a provincial-level unit"),
        ("000000", r"^region_code: prefix 00 is not"),
    ],
)
def test_region_code_errors(code: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        validate_region_code(code)


def test_reporting_unit() -> None:
    assert reporting_unit("330106") == "33"
    # XPCC cities are Xinjiang county codes; the Corps reports only under 660000.
    assert reporting_unit("659001") == "65"
    assert reporting_unit("660000") == "66"
    with pytest.raises(RecordError, match=r"^region_code: "):
        reporting_unit("990000")


# --- member ids ----------------------------------------------------------------------


def test_member_id_round_trip() -> None:
    s = "spiffe://zj.alliance.cn/platform/taobao-1"
    m = MemberId.parse(s)
    assert m.trust_domain == "zj.alliance.cn"
    assert m.role is Role.PLATFORM
    assert m.role is StatementsRole.PLATFORM
    assert m.name == "taobao-1"
    assert str(m) == s
    assert MemberId.parse(str(m)) == m


@pytest.mark.parametrize("role", list(Role))
def test_every_role_parses(role: Role) -> None:
    m = MemberId.parse(f"spiffe://gd_alliance/{role.name.lower()}/x")
    assert m.role is role


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://zj/platform/a", r"^member_id: must start with spiffe://"),
        ("spiffe://zj/platform", r"^member_id: must be spiffe://<trust-domain>/<role>/<name>"),
        ("spiffe://zj/platform/a/b", r"^member_id: must be spiffe://"),
        ("spiffe:///platform/a", r"^member_id: trust domain must not be empty$"),
        ("spiffe://ZJ/platform/a", r"^member_id: trust domain 'ZJ' may contain only"),
        ("spiffe://zj:443/platform/a", r"^member_id: trust domain 'zj:443' may contain only"),
        ("spiffe://zj/seller/a", r"^member_id: role 'seller' is not one of platform, authority"),
        ("spiffe://zj/Platform/a", r"^member_id: role 'Platform' is not one of"),
        ("spiffe://zj/platform/", r"^member_id: name must not be empty$"),
        ("spiffe://zj/platform/A", r"^member_id: name 'A' may contain only"),
        ("spiffe://zj/platform/a?x=1", r"^member_id: name 'a\?x=1' may contain only"),
        ("spiffe://zj/platform/..", r"^member_id: name must not be '\.' or '\.\.'$"),
        ("spiffe://zj/platform/" + "a" * 129, r"^member_id: name is longer than 128"),
        ("spiffe://" + "a" * 256 + "/platform/a", r"^member_id: trust domain is longer than 255"),
    ],
)
def test_member_id_errors(value: str, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        MemberId.parse(value)


def test_member_id_error_names_given_field() -> None:
    with pytest.raises(RecordError, match=r"^listing\.issuer: must start with spiffe://"):
        MemberId.parse("zj/platform/a", field="listing.issuer")


def test_member_id_name_of_128_is_accepted() -> None:
    assert MemberId.parse("spiffe://zj/platform/" + "a" * 128).name == "a" * 128


def test_member_id_constructor_validates() -> None:
    with pytest.raises(RecordError, match=r"^member_id: name 'B' may contain only"):
        MemberId("zj", Role.PLATFORM, "B")
    with pytest.raises(RecordError, match=r"^member_id: role must be a Role$"):
        MemberId("zj", 1, "b")  # type: ignore[arg-type]
