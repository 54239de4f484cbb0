"""The words of an imported list: column headers and values, in English and Chinese.

Alliances keep their lists in spreadsheets with Chinese headers and Chinese names for
lists and conduct types. This module is the one place that says which words mean what;
it is data, so a new alias is one line here (and in the documentation tables of
README.md and docs/OPERATIONS.md, which list the same words).

Headers (``COLUMNS``)
    Each field (the English name, always accepted) with its Chinese headers, e.g.
    ``uscc`` 统一社会信用代码, ``name`` 主体名称, ``list`` 列入名单, ``conduct`` 失信行为,
    ``decision_ref`` 决定文书号, ``listed_at`` 列入日期, ``region`` 所属地区,
    ``resident_id`` 身份证号, ``stores`` 店铺, ``summary`` 列入原因/摘要,
    ``legal_basis`` 法律依据. A column headed 序号 (row number) is ignored.
Values (``NAMES``)
    For every enum a row may name (list, conduct, step, measure, action): the Chinese
    names people write besides the official one. The official name
    (``gateway/core/names.toml``, the one messages use) and the English text
    (``key-scrutiny``, ``fake-transactions``) are always accepted too.
Regions (``PROVINCES``)
    A 6-digit code, or a provincial-level unit by name (浙江省, 浙江, Zhejiang), which
    stands for its code ``330000``; the Xinjiang Production and Construction Corps
    (新疆生产建设兵团, 兵团) is ``660000``.
Dates
    ISO 8601 (``2026-10-01``, or a time with an offset), and the forms spreadsheets
    use: ``2026/10/1``, ``2026.10.1``, ``2026年10月1日``.

Matching is forgiving where people differ only in typing: Unicode NFKC (full-width
letters, digits and brackets become ASCII), no white space, no ``*`` marking a required
column, no quotation marks around a value, English case ignored.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeVar

from clients.statements import enum_text
from gateway.core.identifiers import REPORTING_UNITS, XPCC_REGION_CODE
from gateway.core.names import official_name
from gateway.core.statements import (
    ConductType,
    LifecycleStep,
    ListKind,
    SanctionAction,
    SanctionMeasure,
)

__all__ = [
    "COLUMNS",
    "IGNORED",
    "IGNORED_COLUMNS",
    "NAMES",
    "PROVINCES",
    "column_for",
    "display_name",
    "iso_day",
    "normalise",
    "parse_name",
    "region_code",
]

_E = TypeVar("_E", bound=enum.Enum)

# Field -> the Chinese headers that mean it (the field's own name always does).
COLUMNS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "type": ("类型", "记录类型"),
        "uscc": ("统一社会信用代码", "社会信用代码", "信用代码"),
        "resident_id": ("身份证号", "身份证号码", "公民身份号码"),
        "name": ("主体名称", "企业名称", "名称"),
        "stores": ("店铺", "店铺信息"),
        "list": ("列入名单", "名单类型", "名单"),
        "conduct": ("失信行为", "失信行为类型"),
        "conduct_other": ("其他失信行为", "失信行为说明"),
        "region": ("所属地区", "地区", "行政区划代码"),
        "decision_ref": ("决定文书号", "文书号", "决定书文号"),
        "listed_at": ("列入日期", "列入时间"),
        "deadline": ("整改期限", "整改截止日期"),
        "summary": ("列入原因/摘要", "列入原因", "摘要"),
        "legal_basis": ("法律依据", "依据"),
        "listing_id": ("名单记录编号", "列入记录编号"),
        "step": ("环节", "处理环节"),
        "effective_at": ("生效日期", "生效时间"),
        "reason": ("原因", "理由"),
        "decided_by": ("决定机关",),
        "measure": ("惩戒措施",),
        "measure_other": ("其他惩戒措施",),
        "action": ("操作",),
        "store_id": ("店铺编号",),
        "note": ("备注",),
    }
)
IGNORED_COLUMNS: Final = ("序号",)
IGNORED: Final = ""  # what column_for returns for an ignored column

# Enum -> member -> its Chinese names; the first is the one messages use. (Keyed by
# class first: the enums are IntEnums, so members of two classes can compare equal.)
NAMES: Final[Mapping[type[enum.Enum], Mapping[enum.Enum, tuple[str, ...]]]] = MappingProxyType(
    {
        ListKind: {
            ListKind.BLACKLIST: ("黑名单", "电子商务领域黑名单"),
            ListKind.KEY_SCRUTINY: ("重点关注名单", "电子商务领域重点关注名单", "重点关注"),
        },
        ConductType: {
            ConductType.JUDGMENT_DEFAULTER: ("失信被执行人", "失信被执行人(经营电子商务业务)"),
            ConductType.COUNTERFEIT: ("制假售假",),
            ConductType.IP_INFRINGEMENT: ("侵犯知识产权",),
            ConductType.FAKE_TRANSACTIONS: ("刷单炒信",),
            ConductType.SHOPPING_CONTRACT_DISPUTE: ("网络购物合同纠纷",),
            ConductType.EMPTY_PARCEL: ("空包裹代发邮寄", "空包代发"),
            ConductType.PERSONAL_INFORMATION_ABUSE: (
                "非法采集、滥用、泄漏和倒卖个人信息",
                "非法采集、滥用、泄露和倒卖个人信息",
            ),
            ConductType.FALSE_ADVERTISING_PENALTY: ("虚假宣传",),
            ConductType.CONTRACT_BREACH_PENALTY: ("合同违约",),
            ConductType.OTHER_ADMINISTRATIVE_PENALTY: ("其他行政处罚",),
            ConductType.OTHER: ("其他",),
        },
        LifecycleStep: {
            LifecycleStep.NOTICE_SERVED: ("已送达整改通知", "送达整改通知"),
            LifecycleStep.COMMITMENT_SIGNED: ("已签署信用承诺", "签署信用承诺"),
            LifecycleStep.CORRECTED: ("已整改", "整改完成"),
            LifecycleStep.REMOVED: ("已移出", "移出名单"),
            LifecycleStep.ESCALATED: ("已升级惩戒", "升级惩戒"),
        },
        SanctionMeasure: {
            SanctionMeasure.RESTRICT_NEW_ACCOUNTS: ("限制新设账户",),
            SanctionMeasure.BLOCK_OR_DELETE_ACCOUNTS: ("冻结或注销账户",),
            SanctionMeasure.RESTRICT_PUBLISHING: ("限制发布商品和服务",),
            SanctionMeasure.RESTRICT_PROMOTIONS: ("限制营销推广",),
            SanctionMeasure.DEDUCT_CREDIT_POINTS: ("扣减信用积分",),
            SanctionMeasure.LOWER_CREDIT_RATING: ("降低信用等级",),
            SanctionMeasure.RESTRICT_ACCOUNT_PERMISSIONS: ("限制账户权限",),
            SanctionMeasure.PUBLIC_EXPOSURE: ("公开曝光",),
            SanctionMeasure.RESTRICT_PLATFORM_ENTRY: ("限制入驻平台", "限制会员"),
            SanctionMeasure.RESTRICT_LOGISTICS: ("限制物流业务",),
            SanctionMeasure.RESTRICT_ONLINE_ADVERTISING: ("限制网络广告",),
            SanctionMeasure.CLOSE_STORE: ("关闭店铺", "关店"),
            SanctionMeasure.OTHER: ("其他",),
        },
        SanctionAction: {
            SanctionAction.APPLIED: ("实施", "已实施"),
            SanctionAction.LIFTED: ("解除", "已解除"),
        },
    }
)

# Two-digit reporting unit -> its Chinese names (official, then short).
PROVINCES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "11": ("北京市", "北京"),
        "12": ("天津市", "天津"),
        "13": ("河北省", "河北"),
        "14": ("山西省", "山西"),
        "15": ("内蒙古自治区", "内蒙古"),
        "21": ("辽宁省", "辽宁"),
        "22": ("吉林省", "吉林"),
        "23": ("黑龙江省", "黑龙江"),
        "31": ("上海市", "上海"),
        "32": ("江苏省", "江苏"),
        "33": ("浙江省", "浙江"),
        "34": ("安徽省", "安徽"),
        "35": ("福建省", "福建"),
        "36": ("江西省", "江西"),
        "37": ("山东省", "山东"),
        "41": ("河南省", "河南"),
        "42": ("湖北省", "湖北"),
        "43": ("湖南省", "湖南"),
        "44": ("广东省", "广东"),
        "45": ("广西壮族自治区", "广西"),
        "46": ("海南省", "海南"),
        "50": ("重庆市", "重庆"),
        "51": ("四川省", "四川"),
        "52": ("贵州省", "贵州"),
        "53": ("云南省", "云南"),
        "54": ("西藏自治区", "西藏"),
        "61": ("陕西省", "陕西"),
        "62": ("甘肃省", "甘肃"),
        "63": ("青海省", "青海"),
        "64": ("宁夏回族自治区", "宁夏"),
        "65": ("新疆维吾尔自治区", "新疆"),
        "66": ("新疆生产建设兵团", "兵团"),
    }
)

_QUOTES: Final = "\"'“”‘’「」『』"
_SPACE: Final = re.compile(r"\s+")
_DAY: Final = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")


def normalise(text: str) -> str:
    """The form two spellings of the same word share (see the module docstring)."""
    folded = unicodedata.normalize("NFKC", text).strip().strip(_QUOTES).strip("*")
    return _SPACE.sub("", folded).casefold()


def _table(pairs: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, words in pairs.items():
        for word in words:
            known = out.setdefault(normalise(word), key)
            assert known == key, f"{word!r} means both {known} and {key}"
    return out


_COLUMN_BY_WORD: Final[Mapping[str, str]] = MappingProxyType(
    _table(
        {**{field: (field, *words) for field, words in COLUMNS.items()}, IGNORED: IGNORED_COLUMNS}
    )
)


def column_for(header: str) -> str | None:
    """The field a header names, ``IGNORED`` for a column to skip, None if unknown."""
    return _COLUMN_BY_WORD.get(normalise(header))


def _names(cls: type[_E]) -> Mapping[str, _E]:
    out: dict[str, _E] = {}
    chinese = NAMES[cls]
    for member in cls:
        official = official_name(member, "zh")
        for word in (enum_text(member), member.name, official, *chinese.get(member, ())):
            known = out.setdefault(normalise(word), member)
            assert known is member, f"{word!r} means both {known} and {member}"
    return out


_NAMES_BY_CLASS: Final[Mapping[type[enum.Enum], Mapping[str, enum.Enum]]] = MappingProxyType(
    {cls: _names(cls) for cls in NAMES}
)


def parse_name(cls: type[_E], text: str) -> _E | None:
    """``刷单炒信``, ``fake-transactions`` or ``FAKE_TRANSACTIONS`` -> the member; else None."""
    member = _NAMES_BY_CLASS[cls].get(normalise(text))
    assert member is None or isinstance(member, cls)
    return member


def display_name(member: enum.Enum, language: str) -> str:
    """How a message names ``member``: its official Chinese name
    (``gateway/core/names.toml``, as the CLI and the report show it), or its English
    text."""
    return official_name(member, "zh") if language.startswith("zh") else enum_text(member)


_PROVINCE_BY_WORD: Final[Mapping[str, str]] = MappingProxyType(
    _table({unit: (*names, REPORTING_UNITS[unit]) for unit, names in PROVINCES.items()})
)


def region_code(text: str) -> str | None:
    """A 6-digit code as written, or the code of a provincial-level unit named; else None.

    A 6-digit code is returned unchecked: the core checks it and says what is wrong.
    """
    value = unicodedata.normalize("NFKC", text).strip()
    if len(value) == 6 and value.isascii() and value.isdigit():
        return value
    unit = _PROVINCE_BY_WORD.get(normalise(value))
    if unit is None:
        return None
    return XPCC_REGION_CODE if unit == "66" else unit + "0000"


def iso_day(text: str) -> str:
    """``2026/10/1`` or ``2026年10月1日`` -> ``2026-10-01``; anything else unchanged."""
    value = unicodedata.normalize("NFKC", text).strip()
    match = _DAY.fullmatch(value)
    if match is None:
        return value
    year, month, day = match.groups()
    return f"{year}-{int(month):02d}-{int(day):02d}"
