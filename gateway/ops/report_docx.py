"""The written report as an editable Word document (python-docx), from the same view
as the HTML/PDF: the same sections, paragraphs and tables (the bar charts, whose
figures are in the tables, are left out). A4, CJK fonts named for East Asian text
(黑体 headings, 仿宋 body, 宋体 tables, as official documents set them; Word
substitutes what a machine lacks), page numbers in the footer."""

from __future__ import annotations

import io

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from gateway.ops.report_narrative import Block
from gateway.ops.report_view import ReportView, Section, Table

__all__ = ["render_docx"]

_HEADING_FONT = "黑体"
_BODY_FONT = "仿宋"
_TABLE_FONT = "宋体"
_RED = RGBColor(0xA4, 0x00, 0x00)


def _font(run: Run, east_asian: str, size: float, *, bold: bool = False) -> None:
    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = east_asian
    fonts = run._element.get_or_add_rPr().get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), east_asian)


def _text(
    doc: DocxDocument,
    text: str,
    *,
    font: str = _BODY_FONT,
    size: float = 12,
    bold: bool = False,
    indent: bool = True,
    align: WD_ALIGN_PARAGRAPH | None = None,
) -> Paragraph:
    p = doc.add_paragraph()
    if indent:
        p.paragraph_format.first_line_indent = Pt(size * 2)
    if align is not None:
        p.alignment = align
    _font(p.add_run(text), font, size, bold=bold)
    return p


def _blocks(doc: DocxDocument, blocks: tuple[Block, ...]) -> None:
    for b in blocks:
        if b.items:
            for item in b.items:
                p = doc.add_paragraph(style="List Bullet")
                _font(p.add_run(item), _BODY_FONT, 12)
        else:
            _text(doc, b.text)


def _shade(cell_element: object, fill: str) -> None:
    shading = OxmlElement("w:shd")
    shading.set(qn("w:val"), "clear")
    shading.set(qn("w:color"), "auto")
    shading.set(qn("w:fill"), fill)
    cell_element.get_or_add_tcPr().append(shading)  # type: ignore[attr-defined]


def _table(doc: DocxDocument, t: Table, size: float) -> None:
    _text(doc, t.caption, font=_HEADING_FONT, size=10.5, indent=False)
    if not t.rows:
        _text(doc, t.empty, size=10.5, indent=False)
        return
    rows = [*t.rows, *([t.total] if t.total else [])]
    table = doc.add_table(rows=1 + len(rows), cols=len(t.columns))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    # Each row's cells fetched once: python-docx finds a row and its cells by walking
    # the XML, so indexing them per cell is quadratic in a long ledger.
    table_rows = list(table.rows)
    for cell, column in zip(table_rows[0].cells, t.columns, strict=True):
        _shade(cell._tc, "EEEEEE")
        _font(cell.paragraphs[0].add_run(column.label), _HEADING_FONT, size, bold=True)
    for r, (row_obj, row) in enumerate(zip(table_rows[1:], rows, strict=True), 1):
        for i, (cell, value) in enumerate(zip(row_obj.cells, row, strict=True)):
            paragraph = cell.paragraphs[0]
            if t.columns[i].numeric:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            for n, line in enumerate(value.split("\n")):
                run = paragraph.add_run()
                if n:
                    run.add_break()
                run.add_text(line)
                _font(run, _TABLE_FONT, size, bold=t.total is not None and r == len(rows))
    doc.add_paragraph()


def _section(doc: DocxDocument, s: Section, *, table_size: float = 9) -> None:
    _text(doc, s.title, font=_HEADING_FONT, size=16, indent=False)
    _blocks(doc, s.blocks)
    for t in s.tables:
        _table(doc, t, table_size)
    if s.notes:
        _text(doc, s.notes_title, font=_HEADING_FONT, size=12, indent=False)
        _blocks(doc, s.notes)


def _page_number_footer(doc: DocxDocument) -> None:
    """A centred PAGE field in the footer (Word fills in the number)."""
    p = doc.sections[0].footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = p.add_run()
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind is not None:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)
        else:
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._r.append(instr)


def render_docx(view: ReportView) -> bytes:
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
    section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
    _page_number_footer(doc)
    doc.core_properties.title = f"{view.title} — {view.subtitle}"
    doc.core_properties.language = view.lang
    if view.draft:
        p = _text(doc, view.draft_note, font=_HEADING_FONT, bold=True, indent=False)
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        for run in p.runs:
            run.font.color.rgb = _RED
    _text(
        doc,
        view.title,
        font=_HEADING_FONT,
        size=20,
        bold=True,
        indent=False,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )
    _text(
        doc,
        view.subtitle,
        font=_HEADING_FONT,
        size=14,
        indent=False,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )
    meta = doc.add_table(rows=len(view.meta), cols=2)
    meta.alignment = WD_TABLE_ALIGNMENT.CENTER
    for row, (label, value) in zip(meta.rows, view.meta, strict=True):
        _font(row.cells[0].paragraphs[0].add_run(label), _HEADING_FONT, 10.5)
        row.cells[0].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
        _font(row.cells[1].paragraphs[0].add_run(value), _BODY_FONT, 10.5)
    for s in view.sections:
        _section(doc, s)
    _section(doc, view.verification)
    # The ledger on landscape pages, as in the PDF (the footer carries over).
    annex = doc.add_section(WD_SECTION.NEW_PAGE)
    annex.orientation = WD_ORIENT.LANDSCAPE
    annex.page_width, annex.page_height = Cm(29.7), Cm(21.0)
    annex.top_margin, annex.bottom_margin = Cm(2.0), Cm(2.0)
    annex.left_margin, annex.right_margin = Cm(2.0), Cm(2.0)
    _section(doc, view.annex, table_size=8)
    _text(doc, view.footer, size=9, indent=False, align=WD_ALIGN_PARAGRAPH.CENTER)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
