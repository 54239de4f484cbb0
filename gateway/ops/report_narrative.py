"""The working group's narrative for the written report (书面材料): a TOML file.

``经验做法`` (experience) and ``存在的问题`` (problems) cannot be computed from records;
the working group writes them, with optional additions to the two generated sections,
in a file made from ``report_data/narrative-template.toml``. The report refuses a file
for another month or scope, a required section left empty or still holding the
template's placeholder, and anything that is not plain text.

Text is split into paragraphs at blank lines; a line starting with ``- `` is a list
item. Templates autoescape it, so markup in the file is shown, never interpreted.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gateway.errors import RecordError

__all__ = ["MAX_NARRATIVE_BYTES", "Block", "Narrative", "load_narrative", "narrative_template"]

MAX_NARRATIVE_BYTES = 256 * 1024
# The template's placeholders start so: a file still holding one is not written yet.
_PLACEHOLDER = "（在此填写"
_REQUIRED = ("experience", "problems")
_OPTIONAL = ("overview", "results")
_KEYS = frozenset({"month", "scope", "prepared_by", "contact", *_REQUIRED, *_OPTIONAL})


@dataclass(frozen=True)
class Block:
    """A paragraph (``items`` empty) or a list (``text`` empty)."""

    text: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Narrative:
    prepared_by: str
    contact: str
    overview: tuple[Block, ...]
    results: tuple[Block, ...]
    experience: tuple[Block, ...]
    problems: tuple[Block, ...]


def narrative_template(month: str, scope: str) -> str:
    """The template a working group starts from, for ``month`` and ``scope``."""
    text = (
        resources.files("gateway.ops")
        .joinpath("report_data", "narrative-template.toml")
        .read_text("utf-8")
    )
    return text.replace("{month}", month).replace("{scope}", scope)


def _blocks(text: str) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        paragraph: list[str] = []
        items: list[str] = []
        for line in lines:
            if line.startswith("- "):
                if paragraph:
                    blocks.append(Block(text="".join(paragraph)))
                    paragraph = []
                items.append(line[2:].strip())
            elif items and not paragraph:
                items[-1] += line  # a list item continued on the next line
            else:
                paragraph.append(line)
        if paragraph:
            blocks.append(Block(text="".join(paragraph)))
        if items:
            blocks.append(Block(items=tuple(items)))
    return tuple(blocks)


def load_narrative(path: Path, *, month: str, scope: str) -> Narrative:
    """Read and check the narrative file for ``month`` and ``scope`` (``all`` or a unit)."""
    hint = "start from `alliance-gateway report --narrative-template` (docs/OPERATIONS.md §9)"
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(f"--narrative: cannot read {path}: {e.strerror}", advice=hint) from None
    if len(raw) > MAX_NARRATIVE_BYTES:
        raise RecordError(
            f"--narrative: {path} is larger than {MAX_NARRATIVE_BYTES // 1024} KiB", advice=hint
        )
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RecordError(f"--narrative: {path} is not UTF-8 TOML: {e}", advice=hint) from None
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise RecordError(f"--narrative: unknown keys {', '.join(unknown)}", advice=hint)
    for key, value in data.items():
        if not isinstance(value, str):
            raise RecordError(f"--narrative: {key} must be a string", advice=hint)
    if data.get("month") != month:
        raise RecordError(
            f"--narrative: the file is for month {data.get('month')!r}, the report for {month}",
            advice="use the narrative written for this month",
        )
    if data.get("scope") != scope:
        raise RecordError(
            f"--narrative: the file is for scope {data.get('scope')!r}, the report for {scope}",
            advice="use the narrative written for this reporting unit (or 'all')",
        )
    for key in ("prepared_by", *_REQUIRED):
        text = data.get(key, "").strip()
        if not text or _PLACEHOLDER in text:
            raise RecordError(
                f"--narrative: {key} is empty or still the template's placeholder",
                advice="write it, or run the report with --draft until it is written",
            )
    return Narrative(
        prepared_by=data["prepared_by"].strip(),
        contact=data.get("contact", "").strip(),
        overview=_blocks(data.get("overview", "")),
        results=_blocks(data.get("results", "")),
        experience=_blocks(data["experience"]),
        problems=_blocks(data["problems"]),
    )
