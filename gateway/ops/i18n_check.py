"""Catalog completeness: which marked strings a catalog lacks or leaves untranslated.

``tests/unit/test_i18n.py`` runs it on every catalog; it is a module of its own so the
check is the same for the server's report catalog and, later, the client's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

__all__ = ["catalog_problems", "extract_messages"]


def extract_messages(root: Path, config: Path) -> set[str]:
    """Every msgid marked under ``root`` by the Babel mapping ``config`` (babel.cfg)."""
    with config.open(encoding="utf-8") as f:
        method_map, options_map = parse_mapping_cfg(f, filename=str(config))  # type: ignore[no-untyped-call]
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(root), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog_problems(
    po_file: Path, locale: str, expected: Iterable[str], *, source_locale: bool
) -> list[str]:
    """What is wrong with one catalog: a marked string it lacks, an entry no longer
    marked, a fuzzy entry, an empty translation (unless it is the source locale, whose
    msgids are the text), or a translation whose placeholders differ from the msgid."""
    with po_file.open("rb") as f:
        catalog: Catalog = read_po(f, locale=locale)
    problems: list[str] = []
    present = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    for msgid in sorted(set(expected) - set(present)):
        problems.append(f"{locale}: missing {msgid!r} (run `make messages`)")
    for msgid in sorted(set(present) - set(expected)):
        problems.append(f"{locale}: {msgid!r} is no longer used (run `make messages`)")
    for msgid, message in sorted(present.items()):
        if message.fuzzy:
            problems.append(f"{locale}: {msgid!r} is fuzzy")
        # A plural entry has a tuple of forms: each must be there, with the placeholders.
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if not source_locale and not all(forms):
            problems.append(f"{locale}: {msgid!r} has no translation")
        for form in forms:
            if form and _placeholders(form) != _placeholders(msgid):
                problems.append(
                    f"{locale}: {msgid!r}: the translation's placeholders "
                    f"{sorted(_placeholders(form))} differ from the msgid's"
                )
    for message, errors in catalog.check():
        for error in errors:
            problems.append(f"{locale}: {message.id!r}: {error}")
    return problems


# ``%(name)s`` (Python formatting) and ``{name}`` (filled by the code, e.g. page counters).
_PLACEHOLDER = re.compile(r"%\((\w+)\)[a-z]|\{(\w+)\}")


def _placeholders(text: object) -> set[str]:
    """Every named placeholder: a translation must keep them all (Babel's own check
    allows dropping one, which would silently drop a number from a report)."""
    if not isinstance(text, str):
        return set()
    return {a or b for a, b in _PLACEHOLDER.findall(text)}
