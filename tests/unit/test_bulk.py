"""Bulk files (CSV, JSON Lines) and the text forms of the CLI, without a gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clients import bulk
from clients import statements as build
from clients.import_messages import ImportFileError
from clients.importing import RowContext
from gateway import codec
from gateway.core.crypto import SigningKey
from gateway.core.disclosure import Group
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
    StoreRef,
)
from gateway.errors import RecordError

ISSUER = "spiffe://zj.alliance.test/authority/zj-amr"
SHOP = "spiffe://zj.alliance.test/platform/shop-a"
KEY = b"\x11" * 32
RESIDENT = "11010519491231002X"
LISTING_ID = "ab" * 32


NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)  # the imports below run "now"
CTX = RowContext(SHOP, "330000", lambda: KEY)  # a platform may sign all three kinds


def rows(path: Path, fmt: bulk.Format | None = None, **options: Any) -> list[bulk.Row]:
    return list(bulk.read_rows(path, CTX, bulk.ImportOptions(fmt=fmt, **options), imported_at=NOW))


def errors(row: bulk.Row) -> list[str]:
    return [f"{p.column}: {p.reason}" if p.column else p.reason for p in row.problems]


def test_csv_rows_of_every_type(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "\ufefftype,uscc,resident_id,name,stores,list,conduct,conduct_other,region,"
        "decision_ref,listed_at,deadline,listing_id,step,effective_at,reason,decided_by,"
        "measure,action\n"
        f",91330100716105852F,,A Co.,{SHOP}:s1 {SHOP}:s2,blacklist,counterfeit,,330100,"
        "D-1,2026-10-01,2026-12-01,,,,,,,\n"
        f'listing,,{RESIDENT},,,key-scrutiny,other,"fake reviews, paid",,'
        "D-2,2026-10-01T10:00:00+08:00,,,,,,,,\n"
        f'status-change,,,,,,,,,D-3,,,{LISTING_ID},removed,2026-10-03,"annulled\nby court",'
        "Court,,\n"
        f"sanction,,,,,,,,,,,,{LISTING_ID},,2026-10-02,,,close-store,lifted\n",
        encoding="utf-8",
    )
    parsed = rows(path)
    assert [r.line for r in parsed] == [2, 3, 4, 6]  # the quoted line break spans 4-5
    assert all(not r.problems for r in parsed), [errors(r) for r in parsed]
    first, person, step, sanction = (r.statement for r in parsed)
    assert isinstance(first, Listing) and first.subject is not None
    assert first.subject.uscc == "91330100716105852F" and first.subject.name == "A Co."
    assert first.subject.stores == (StoreRef(SHOP, "s1"), StoreRef(SHOP, "s2"))
    assert first.region_code == "330100" and first.list is ListKind.BLACKLIST
    assert first.listed_at == datetime(2026, 9, 30, 16, tzinfo=UTC)  # midnight in Beijing
    assert first.correction_deadline == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert isinstance(person, Listing) and person.subject is not None
    assert person.subject.person_hmac == person_hmac(RESIDENT, KEY)
    assert person.region_code == "330000" and person.conduct is ConductType.OTHER
    assert person.conduct_other == "fake reviews, paid"
    assert isinstance(step, StatusChange)
    assert step.step is LifecycleStep.REMOVED and step.reason == "annulled\nby court"
    assert isinstance(sanction, SanctionConfirmation)
    assert (
        sanction.action is SanctionAction.LIFTED and sanction.measure is SanctionMeasure.CLOSE_STORE
    )
    assert bulk.count_rows(path, "csv") == 4
    person_only = tmp_path / "person.csv"  # the sanction's "measure" column: not a listing's
    person_only.write_text(
        f"resident_id,list,conduct,decision_ref,listed_at\n{RESIDENT},blacklist,counterfeit,D,2026-10-01\n"
    )
    (row,) = rows(person_only)
    assert RESIDENT not in repr(row)


def test_the_same_file_yields_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(
        '{"uscc": "91330100716105852F", "list": "blacklist", "conduct": "counterfeit", '
        '"decision_ref": "D-1", "listed_at": "2026-10-01"}\n'
    )
    (a,), (b,) = rows(path), rows(path)
    assert a.statement is not None and b.statement is not None
    # Sealed by one member key: the same payload, salts and disclosures (one record id).
    key = SigningKey.generate()
    sealed = codec.seal(a.statement, key)
    assert sealed.disclosures
    assert sealed == codec.seal(b.statement, key)


def _json(**fields: object) -> str:
    return json.dumps(fields)


_LISTING = {
    "uscc": "91330100716105852F",
    "list": "blacklist",
    "conduct": "counterfeit",
    "decision_ref": "D",
    "listed_at": "2026-10-01",
}
_SANCTION = {
    "type": "sanction",
    "listing_id": LISTING_ID,
    "measure": "close-store",
    "effective_at": "2026-10-02",
}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            _json(**{**_LISTING, "uscc": "91110108551385082R"}),
            "uscc: '91110108551385082R' is not a valid Unified Social Credit Code",
        ),
        (_json(**{**_LISTING, "listed_at": ""}), "listed_at: required"),
        (
            _json(**{**_LISTING, "conduct": "false-advertising-penalty"}),
            "conduct: false-advertising-penalty is a conduct of list key-scrutiny",
        ),
        (
            _json(**{**_LISTING, "uscc": "", "resident_id": RESIDENT, "name": "Zhang"}),
            "name: a name is only for enterprises",
        ),
        (
            _json(uscc="91330100716105852F", resident_id=RESIDENT),
            "resident_id: give exactly one of uscc and resident_id",
        ),
        (_json(**_SANCTION, step="removed"), "step: not a field of a sanction row"),
        (
            _json(**{**_SANCTION, "effective_at": "2026-10-02T10:00"}),
            "effective_at: '2026-10-02T10:00' is a time without a UTC offset",
        ),
        (
            _json(**{**_SANCTION, "listing_id": "xyz"}),
            "listing_id: sanction_confirmation.listing_id",
        ),
        (_json(type="escalation"), "type: 'escalation' is not one of: listing, status-change"),
        (_json(**{**_LISTING, "uscc": 91330100716105852}), "uscc: the cell holds a number"),
        (_json(colour="red"), "colour: unknown field"),
        ('["a list"]', "a line must hold one JSON object"),
        ("{oops", "not valid JSON"),
    ],
)
def test_a_bad_line_is_reported_with_its_number(tmp_path: Path, line: str, error: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n\n" + line + "\n")
    (row,) = rows(path)
    assert row.line == 3 and row.statement is None
    assert any(e.startswith(error) for e in errors(row)), errors(row)


def test_csv_structure_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("uscc,colour\n")
    with pytest.raises(ImportFileError, match="line 1: unknown column 'colour'") as err:
        rows(path)
    assert "统一社会信用代码" not in err.value.advice and "uscc" in err.value.advice
    assert err.value.text("zh-CN")[0] == "第1行：无法识别的列“colour”"
    path.write_text("colour\nred\n\nblue\n")  # one unknown column: not a title, an error
    with pytest.raises(ImportFileError, match="line 1: unknown column 'colour'"):
        rows(path)
    path.write_text("uscc,统一社会信用代码\n")
    with pytest.raises(
        ImportFileError, match="columns 'uscc' and '统一社会信用代码' both mean uscc"
    ):
        rows(path)
    path.write_text("uscc,list\n91330100716105852F\n\n")
    (row,) = rows(path)
    assert (row.line, errors(row)) == (2, ["1 cells, but the header has 2 columns"])
    path.write_text("")
    assert rows(path) == []
    path.write_text('uscc,list\n"91330100716105852F,blacklist\n')
    (row,) = rows(path)
    assert row.line == 2 and errors(row)[0].startswith("the CSV breaks off here")


def test_formats_are_detected_or_given(tmp_path: Path) -> None:
    assert bulk.detect_format(Path("a.CSV")) == "csv"
    assert bulk.detect_format(Path("a.ndjson")) == "jsonl"
    assert bulk.detect_format(Path("a.txt"), "jsonl") == "jsonl"
    assert bulk.detect_format(Path("a.XLSX")) == "xlsx"
    with pytest.raises(RecordError, match=r"cannot tell the format of a\.txt") as err:
        bulk.detect_format(Path("a.txt"))
    assert "--format" in err.value.advice
    with pytest.raises(ImportFileError, match=r"a\.xls cannot be read as an XLSX") as err:
        bulk.detect_format(Path("a.xls"))
    assert ".xlsx" in err.value.advice


def test_text_forms() -> None:
    assert build.enum_text(SanctionMeasure.CLOSE_STORE) == "close-store"
    assert build.parse_enum(ListKind, "key-scrutiny", field="list") is ListKind.KEY_SCRUTINY
    assert build.parse_enum(ListKind, "KEY_SCRUTINY", field="list") is ListKind.KEY_SCRUTINY
    with pytest.raises(RecordError, match="list: 'grey' is not one of blacklist, key-scrutiny"):
        build.parse_enum(ListKind, "grey", field="list")
    assert build.parse_store(f"{SHOP}:store:7") == StoreRef(SHOP, "store:7")
    with pytest.raises(RecordError, match="PLATFORM_MEMBER_ID:STORE_ID"):
        build.parse_store(SHOP)
    with pytest.raises(RecordError, match="must be a platform member id"):
        build.parse_store(f"{ISSUER}:s1")
    assert build.parse_time("2026-10-01T08:00:00Z", field="t") == datetime(
        2026, 10, 1, 8, tzinfo=UTC
    )
    with pytest.raises(RecordError, match="not an ISO 8601"):
        build.parse_time("tomorrow", field="t")


def test_builders_validate_and_never_carry_the_resident_id() -> None:
    subject = build.person_subject(RESIDENT.lower(), KEY)
    assert subject.person_hmac == person_hmac(RESIDENT, KEY) and subject.uscc is None
    with pytest.raises(RecordError, match="resident_id"):
        build.person_subject("110105194912310021", KEY)
    listing = build.new_listing(
        ISSUER,
        build.company_subject("91330100716105852F"),
        list_kind=ListKind.BLACKLIST,
        conduct=ConductType.COUNTERFEIT,
        decision_ref="D-1",
        region_code="330100",
    )
    assert listing.listed_at.tzinfo is not None
    person = codec.encode_record(
        build.new_listing(
            ISSUER,
            subject,
            list_kind=ListKind.BLACKLIST,
            conduct=ConductType.COUNTERFEIT,
            decision_ref="D-1",
            region_code="330100",
        )
    )
    # Neither the signed payload nor a disclosure holds the resident id (the subject
    # disclosure holds its HMAC).
    (subject_value,) = [d.value for d in person.disclosures if d.group == Group.SUBJECT]
    assert subject.person_hmac is not None and subject.person_hmac in subject_value
    for carried in (person.payload, *[d.value for d in person.disclosures]):
        assert RESIDENT.encode() not in carried
    with pytest.raises(RecordError, match="decided_by"):
        build.status_change(
            ISSUER, LISTING_ID, LifecycleStep.REMOVED, decision_ref="D", reason="court"
        )
    confirmation = build.sanction(SHOP, LISTING_ID, SanctionMeasure.PUBLIC_EXPOSURE)
    assert confirmation.action is SanctionAction.APPLIED
