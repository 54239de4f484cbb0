"""The member CLI's catalogs: complete in both languages, compiled from .po at load;
the language from --lang or the environment; official names; Beijing time."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clients import i18n, reasons
from clients.i18n import LOCALES, parse_lang, user_locale
from gateway.core.statements import ConductType, LifecycleStep, ListKind, SanctionMeasure
from gateway.errors import RecordError
from gateway.ops.i18n_check import catalog_problems, extract_messages

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "babel-client.cfg"


def _po(locale: str) -> Path:
    return ROOT / "clients" / "locale" / locale / "LC_MESSAGES" / "alliance.po"


def test_every_client_catalog_has_every_marked_string() -> None:
    marked = extract_messages(ROOT, CONFIG)
    # The CLI, the compliance views, the import messages and the reason codes are scanned.
    assert "SUBJECT" in marked  # clients/cli.py
    assert "due (Beijing time)" in marked  # clients/compliance_cli.py
    assert "'{value}' is not a date: write 2026-10-01, 2026/10/1 or 2026年10月1日 " in "".join(
        marked
    ) or any(m.startswith("'{value}' is not a date") for m in marked)  # import_messages.py
    assert "the gateway knows no listing with this id" in marked  # clients/reasons.py
    # Nothing of the server's catalog leaks in, and nothing of the client's is missed.
    assert "I. Overall situation" not in marked
    for locale in LOCALES:
        assert catalog_problems(_po(locale), locale, marked, source_locale=locale == "en") == []


def test_a_client_string_without_a_translation_is_found(tmp_path: Path) -> None:
    marked = extract_messages(ROOT, CONFIG)
    text = _po("zh_CN").read_text(encoding="utf-8")
    untranslated = text.replace('msgstr "逾期未履行"', 'msgstr ""')
    assert untranslated != text
    po = tmp_path / "alliance.po"
    po.write_text(untranslated, encoding="utf-8")
    assert catalog_problems(po, "zh_CN", marked, source_locale=False) == [
        "zh_CN: 'outstanding' has no translation"
    ]
    # A string marked in the code that the catalog lacks.
    problems = catalog_problems(_po("zh_CN"), "zh_CN", {*marked, "NEW"}, source_locale=False)
    assert problems == ["zh_CN: missing 'NEW' (run `make messages`)"]


def test_every_reason_code_has_both_texts_in_chinese() -> None:
    zh = i18n.translations("zh_CN")
    for code, (message, advice) in reasons.REASONS.items():
        assert zh.gettext(message) != message, code
        assert zh.gettext(advice) != advice, code


@pytest.mark.parametrize(
    ("flag", "env", "code"),
    [
        (None, {"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        (None, {"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.GB18030"}, "zh_CN"),
        (None, {"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, "en"),
        (None, {"LANG": "fr_FR.UTF-8"}, "en"),  # not Chinese: English
        (None, {}, "en"),
        ("zh-CN", {"LANG": "C.UTF-8"}, "zh_CN"),
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
    ],
)
def test_the_language(flag: str | None, env: dict[str, str], code: str) -> None:
    assert user_locale(flag, env) == code


def test_a_flag_without_a_catalog_is_refused() -> None:
    assert parse_lang("zh_TW") is None
    with pytest.raises(RecordError, match="--lang: no catalog for 'fr'"):
        user_locale("fr", {})


def test_official_names_and_beijing_time() -> None:
    at = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 November in Beijing
    assert i18n.moment(at) == "2026-11-01 00:30 +08:00"
    i18n.use("zh_CN")
    assert i18n.name(ListKind.KEY_SCRUTINY) == "重点关注名单"
    assert i18n.name(ConductType.FAKE_TRANSACTIONS) == "刷单炒信"
    assert i18n.name(SanctionMeasure.CLOSE_STORE) == "关闭店铺"
    assert i18n.name(LifecycleStep.REMOVED) == i18n.name(LifecycleStep.REMOVED, "zh_CN")
    assert i18n.unit_name("330100") == "330100 浙江省"
    i18n.use("en")
    assert i18n.name(ListKind.KEY_SCRUTINY) == "key-scrutiny"  # the word the CLI accepts
    assert i18n.unit_name("330100") == "330100 Zhejiang"


def test_tables_pad_by_screen_width() -> None:
    out = io.StringIO()
    i18n.table([("名单", "X"), ("ab", "Y")], out)
    assert out.getvalue() == "名单  X\nab    Y\n"
