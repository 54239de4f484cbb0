"""One row to one statement (clients.importing), the words it accepts, and its messages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from clients import vocabulary
from clients.import_messages import (
    LANGUAGES,
    Column,
    Message,
    placeholders,
    table,
    user_language,
)
from clients.importing import RowContext, RowProblems, row_to_statement
from gateway.core.identifiers import person_hmac
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    Listing,
    ListKind,
    SanctionAction,
    SanctionConfirmation,
    SanctionMeasure,
    StatusChange,
)

AUTHORITY = "spiffe://zj.alliance.test/authority/zj-amr"
SHOP = "spiffe://zj.alliance.test/platform/shop-a"
MONITOR = "spiffe://zj.alliance.test/monitor/ndrc"
KEY = b"\x11" * 32
RESIDENT = "11010519491231002X"
LISTING_ID = "ab" * 32
NOW = datetime(2026, 12, 6, 4, tzinfo=UTC)  # 12:00 in Beijing
CTX = RowContext(AUTHORITY, "330000", lambda: KEY)
ROW: dict[str, object] = {
    "uscc": "91330100716105852F",
    "name": "杭州某某贸易有限公司",
    "list": "黑名单",
    "conduct": "刷单炒信",
    "decision_ref": "浙市监〔2026〕42号",
    "listed_at": "2026/12/1",
    "region": "浙江省",
}


def convert(row: dict[str, object], ctx: RowContext = CTX, historical: bool = False) -> Any:
    return row_to_statement(row, ctx, historical=historical, imported_at=NOW)


def problems(row: dict[str, object], **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(RowProblems) as err:
        convert(row, **kw)
    return [(p.column, p.message.key) for p in err.value.problems]


def test_a_chinese_row_becomes_a_listing() -> None:
    listing = convert(ROW)
    assert isinstance(listing, Listing)
    assert listing.list is ListKind.BLACKLIST and listing.conduct is ConductType.FAKE_TRANSACTIONS
    assert listing.region_code == "330000" and listing.decision_ref == "浙市监〔2026〕42号"
    assert listing.listed_at == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert listing.subject is not None and listing.issuer == AUTHORITY
    assert listing.subject.name == "杭州某某贸易有限公司"
    english = {**ROW, "list": "blacklist", "conduct": "fake-transactions", "region": "330000"}
    assert convert(english) == listing
    assert convert({**ROW, "region": ""}).region_code == "330000"  # the profile's


@pytest.mark.parametrize(
    ("cls", "word", "member"),
    [
        (ListKind, "重点关注名单", ListKind.KEY_SCRUTINY),
        (ListKind, "“黑名单”", ListKind.BLACKLIST),
        (ListKind, "KEY_SCRUTINY", ListKind.KEY_SCRUTINY),
        (ConductType, "失信被执行人", ConductType.JUDGMENT_DEFAULTER),
        (ConductType, "失信被执行人（经营电子商务业务）", ConductType.JUDGMENT_DEFAULTER),
        (ConductType, "制假售假", ConductType.COUNTERFEIT),
        (ConductType, "侵犯知识产权", ConductType.IP_INFRINGEMENT),
        (ConductType, "网络购物合同纠纷", ConductType.SHOPPING_CONTRACT_DISPUTE),
        (ConductType, "空包裹代发邮寄", ConductType.EMPTY_PARCEL),
        (
            ConductType,
            "非法采集、滥用、泄漏和倒卖个人信息",
            ConductType.PERSONAL_INFORMATION_ABUSE,
        ),
        (ConductType, "虚假宣传", ConductType.FALSE_ADVERTISING_PENALTY),
        (ConductType, "合同违约", ConductType.CONTRACT_BREACH_PENALTY),
        (ConductType, "Fake-Transactions", ConductType.FAKE_TRANSACTIONS),
        (LifecycleStep, "已移出", LifecycleStep.REMOVED),
        (SanctionMeasure, "关闭店铺", SanctionMeasure.CLOSE_STORE),
        (SanctionAction, "解除", SanctionAction.LIFTED),
    ],
)
def test_value_words(cls: Any, word: str, member: Any) -> None:
    assert vocabulary.parse_name(cls, word) is member


def test_unknown_words_are_not_guessed() -> None:
    assert vocabulary.parse_name(ConductType, "刷单") is None
    assert vocabulary.parse_name(ListKind, "红名单") is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("330100", "330100"),
        ("浙江省", "330000"),
        ("浙江", "330000"),
        ("Zhejiang", "330000"),
        ("新疆维吾尔自治区", "650000"),
        ("新疆生产建设兵团", "660000"),
        ("\uff13\uff13\uff10\uff11\uff10\uff10", "330100"),  # full-width digits
        ("杭州市", None),
        ("33", None),
    ],
)
def test_regions(text: str, code: str | None) -> None:
    assert vocabulary.region_code(text) == code


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026/12/1", "2026-12-01"),
        ("2026.12.01", "2026-12-01"),
        ("2026年12月1日", "2026-12-01"),
        ("2026-1-2", "2026-01-02"),
        ("2026-12-01T09:30:00+08:00", "2026-12-01T09:30:00+08:00"),
    ],
)
def test_date_forms(text: str, day: str) -> None:
    assert vocabulary.iso_day(text) == day


def test_spreadsheet_cells() -> None:
    listing = convert({**ROW, "listed_at": datetime(2026, 12, 1), "region": 330100})
    assert listing.listed_at == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert listing.region_code == "330100"
    timed = convert({**ROW, "listed_at": datetime(2026, 12, 1, 9, 30)})  # Beijing time
    assert timed.listed_at == datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    assert convert({**ROW, "listed_at": date(2026, 12, 1)}).listed_at == listing.listed_at
    assert convert({**ROW, "decision_ref": 42.0}).decision_ref == "42"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "91330100716105852f")
    assert convert({**ROW, "uscc": full_width}).subject.uscc == ROW["uscc"]
    assert problems({**ROW, "uscc": 9.133010071610586e16}) == [("uscc", "number_id")]
    assert problems({**ROW, "decision_ref": True}) == [("decision_ref", "not_text")]
    assert problems({**ROW, "listed_at": time(9)}) == [("listed_at", "not_text")]


def test_a_person_is_hashed_and_never_named_in_a_message() -> None:
    row = {**ROW, "uscc": "", "name": "", "resident_id": RESIDENT.lower()}
    listing = convert(row)
    assert listing.subject.person_hmac == person_hmac(RESIDENT, KEY)
    bad = RESIDENT[:-1] + "1"
    with pytest.raises(RowProblems) as err:
        convert({**row, "resident_id": bad})
    (problem,) = err.value.problems
    assert problem.message.key == "resident_invalid"
    for language in LANGUAGES:
        assert bad not in problem.message.text(language)
        assert bad[:17] not in problem.message.text(language)
    assert problems({**row, "resident_id": "1101051949"}) == [("resident_id", "resident_length")]
    assert problems({**row, "resident_id": 110105194912310021}) == [("resident_id", "number_id")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"uscc": "9133010071610585"}, [("uscc", "uscc_length")]),
        ({"uscc": "91330100716105852O"}, [("uscc", "uscc_chars")]),
        ({"uscc": "91110108551385082R"}, [("uscc", "uscc_check")]),
        ({"uscc": ""}, [("uscc", "one_subject")]),
        ({"resident_id": RESIDENT}, [("resident_id", "one_subject")]),
        ({"uscc": "", "resident_id": RESIDENT}, [("name", "name_for_person")]),
        ({"list": "灰名单"}, [("list", "unknown_value")]),
        ({"conduct": "刷单"}, [("conduct", "unknown_value")]),
        ({"conduct": "虚假宣传"}, [("conduct", "wrong_list")]),
        ({"decision_ref": " "}, [("decision_ref", "required")]),
        ({"listed_at": ""}, [("listed_at", "required")]),
        ({"listed_at": "2026-13-01"}, [("listed_at", "bad_date")]),
        ({"listed_at": "2026年2月30日"}, [("listed_at", "bad_date")]),
        ({"listed_at": "上周"}, [("listed_at", "bad_date")]),
        ({"listed_at": "2026-12-01T09:00"}, [("listed_at", "no_offset")]),
        ({"listed_at": "2026-12-07"}, [("listed_at", "in_future")]),
        ({"listed_at": "2026-10-01"}, [("listed_at", "too_old")]),
        ({"deadline": "2026-11-01"}, [("deadline", "invalid")]),  # the core: before listed_at
        ({"region": "杭州"}, [("region", "bad_region")]),
        ({"region": "990000"}, [("region", "bad_region")]),
        ({"stores": "shop-a"}, [("stores", "bad_store")]),
        ({"conduct_other": "why"}, [("conduct_other", "invalid")]),  # the core: only with OTHER
        ({"step": "removed"}, [("step", "not_a_field")]),
        ({"type": "escalation"}, [("type", "unknown_value")]),
        (
            {"uscc": "x", "conduct": "?", "listed_at": "?"},
            [("uscc", "uscc_length"), ("conduct", "unknown_value"), ("listed_at", "bad_date")],
        ),
    ],
)
def test_each_problem_of_a_listing_row(
    change: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert problems({**ROW, **change}) == expected


def test_the_backdating_window_and_historical_imports() -> None:
    old = {**ROW, "listed_at": "2019-05-01"}
    assert problems(old) == [("listed_at", "too_old")]
    assert convert(old, historical=True).listed_at.year == 2019
    edge = NOW - timedelta(days=30)
    assert convert({**ROW, "listed_at": edge.isoformat()}).listed_at == edge
    wider = RowContext(AUTHORITY, "330000", lambda: KEY, window=timedelta(days=3650))
    assert convert(old, ctx=wider).listed_at.year == 2019
    # Historical or not, the future stays out.
    assert problems({**ROW, "listed_at": "2027-01-01"}, historical=True) == [
        ("listed_at", "in_future")
    ]
    with pytest.raises(RowProblems) as err:
        convert(old)
    assert err.value.problems[0].message.text("zh-CN") == (
        "列入日期2019-05-01早于30天的回溯期限：较早的名单须作为历史名单导入（--historical）"
    )


def test_status_changes_and_sanctions() -> None:
    step = convert(
        {
            "type": "状态变更",
            "listing_id": LISTING_ID,
            "step": "已移出",
            "effective_at": "2026年12月5日",
            "decision_ref": "D-9",
            "reason": "法院撤销",
            "decided_by": "杭州市中级人民法院",
        }
    )
    assert isinstance(step, StatusChange) and step.step is LifecycleStep.REMOVED
    shop = RowContext(SHOP, "330000", lambda: KEY)
    sanction: dict[str, object] = {
        "type": "sanction",
        "listing_id": LISTING_ID,
        "measure": "关闭店铺",
    }
    confirmation = convert({**sanction, "effective_at": "2026-12-05"}, ctx=shop)
    assert isinstance(confirmation, SanctionConfirmation)
    assert confirmation.action is SanctionAction.APPLIED
    assert problems(sanction, ctx=shop) == [("effective_at", "required")]
    assert problems({**sanction, "effective_at": "2026-12-05", "action": "撤销"}, ctx=shop) == [
        ("action", "unknown_value")
    ]
    # An authority may not confirm sanctions; a monitor signs no listing.
    assert problems({**sanction, "effective_at": "2026-12-05"}) == [("", "not_allowed")]
    monitor = RowContext(MONITOR, "330000", lambda: KEY)
    assert problems(ROW, ctx=monitor) == [("", "not_allowed")]


# --- messages ------------------------------------------------------------------------


def test_the_message_tables_match() -> None:
    english, chinese = table("en"), table("zh-CN")
    assert set(english) == set(chinese)
    for key, template in english.items():
        assert placeholders(template) == placeholders(chinese[key]), key


def test_messages_render_enums_and_columns_in_the_language() -> None:
    message = Message(
        "wrong_list",
        {
            "conduct": ConductType.FALSE_ADVERTISING_PENALTY,
            "expected": ListKind.KEY_SCRUTINY,
            "list": ListKind.BLACKLIST,
        },
    )
    assert message.text("en") == (
        "false-advertising-penalty is a conduct of list key-scrutiny, not of list blacklist"
    )
    # The official names (gateway/core/names.toml), as the report and the CLI show them.
    assert message.text("zh-CN") == "“因虚假宣传被行政处罚”属于重点关注名单，不属于黑名单"
    subject = Message("one_subject", {"uscc": Column("uscc"), "resident_id": Column("resident_id")})
    assert subject.text("zh-CN") == "统一社会信用代码与身份证号须填且只填一项"


@pytest.mark.parametrize(
    ("env", "language"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "zh_TW.UTF-8"}, "zh-CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.GB18030"}, "zh-CN"),
        ({}, "en"),
    ],
)
def test_the_users_language(env: dict[str, str], language: str) -> None:
    assert user_language(env) == language
