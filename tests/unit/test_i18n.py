"""Message catalogs: complete for every locale, compiled from .po at load; Babel's
formats; times in Beijing time with the zone."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.errors import RecordError
from gateway.ops.i18n import LOCALES, CatalogFolder, Locale, normalize_locale
from gateway.ops.i18n_check import catalog_problems, extract_messages
from gateway.ops.report_names import REPORT_CATALOGS, report_locale

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "gateway" / "ops" / "locale"


def _po(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "report.po"


def test_every_catalog_has_every_marked_string() -> None:
    marked = extract_messages(ROOT, ROOT / "babel.cfg")
    # The code and the templates are both scanned.
    assert "I. Overall situation" in marked  # gateway/ops/report_view.py
    assert "DRAFT" in marked  # gateway/ops/templates/report.html.j2
    for locale in LOCALES:
        assert catalog_problems(_po(locale), locale, marked, source_locale=locale == "en") == []


def test_a_missing_or_broken_translation_is_found(tmp_path: Path) -> None:
    marked = extract_messages(ROOT, ROOT / "babel.cfg")
    po = tmp_path / "report.po"
    text = _po("zh_CN").read_text(encoding="utf-8")
    untranslated = text.replace('msgstr "一、整体情况"', 'msgstr ""')
    assert untranslated != text
    po.write_text(untranslated, encoding="utf-8")
    problems = catalog_problems(po, "zh_CN", marked, source_locale=False)
    assert problems == ["zh_CN: 'I. Overall situation' has no translation"]
    # A placeholder the translation dropped.
    broken = text.replace('msgstr "代码 %(code)s（GB/T 2260 数据未收录）"', 'msgstr "代码未收录"')
    assert broken != text
    po.write_text(broken, encoding="utf-8")
    problems = catalog_problems(po, "zh_CN", marked, source_locale=False)
    assert len(problems) == 1 and "code %(code)s" in problems[0]
    # A string marked in the code that the catalog lacks.
    problems = catalog_problems(_po("en"), "en", {*marked, "A new string"}, source_locale=True)
    assert problems == ["en: missing 'A new string' (run `make messages`)"]


def test_catalogs_compile_in_memory_from_po(tmp_path: Path) -> None:
    zh = REPORT_CATALOGS.translations("zh_CN")
    assert zh.gettext("I. Overall situation") == "一、整体情况"
    assert REPORT_CATALOGS.translations("en").gettext("I. Overall situation") == (
        "I. Overall situation"
    )
    assert not list(LOCALE_DIR.rglob("*.mo"))  # nothing generated, nothing to go stale
    # A fuzzy entry is left out, as msgfmt does.
    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    text = _po("zh_CN").read_text(encoding="utf-8")
    text = text.replace('msgid "I. Overall situation"', '#, fuzzy\nmsgid "I. Overall situation"')
    (folder / "report.po").write_text(text, encoding="utf-8")
    fuzzy = CatalogFolder(tmp_path, "report").translations("zh_CN")
    assert fuzzy.gettext("I. Overall situation") == "I. Overall situation"
    assert fuzzy.gettext("II. Results achieved") == "二、取得的实效"
    shutil.rmtree(tmp_path / "zh_CN")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("zh-CN", "zh_CN"),
        ("zh_CN.UTF-8", "zh_CN"),
        ("zh", "zh_CN"),
        ("en", "en"),
        ("en_US.UTF-8", "en"),
        ("en-GB", "en"),
        ("C", "en"),
        ("zh_TW", None),
        ("fr_FR", None),
        ("", None),
    ],
)
def test_normalize_locale(text: str, code: str | None) -> None:
    assert normalize_locale(text) == code


def test_report_locale_refuses_a_language_without_a_catalog() -> None:
    with pytest.raises(RecordError, match="no report catalog"):
        report_locale("fr")


def test_times_are_beijing_time_with_the_zone() -> None:
    zh, en = report_locale("zh-CN"), report_locale("en")
    at = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 November in Beijing
    assert zh.datetime(at) == "2026年11月1日 00:30:00 中国标准时间"
    assert en.datetime(at) == "Nov 1, 2026, 12:30:00\u202fAM China Standard Time"
    assert zh.date(at) == "2026年11月1日" and zh.short_date(at) == "2026/11/1"
    assert zh.date(date(2026, 11, 13)) == "2026年11月13日"
    assert zh.month(date(2026, 10, 1)) == "2026年10月" and en.month(date(2026, 10, 1)) == (
        "October 2026"
    )
    assert zh.number(12345) == "12,345"
    with pytest.raises(ValueError, match="naive"):
        zh.datetime(datetime(2026, 10, 1))


def test_locale_is_usable_with_any_translations() -> None:
    import gettext

    loc = Locale("en", gettext.NullTranslations())
    assert loc.gettext("x") == "x" and loc.ngettext("a", "b", 2) == "b"
    assert loc.html_lang == "en" and report_locale().html_lang == "zh-CN"
