"""The sequencer's batch hand-off (``Sequencer.submit_batch``): a client's batch is
appended in one transaction however large, answered by one future in batch order, and
all or nothing when the append fails; single records handed in beside it keep their own
answers. A real ledger on the test database; the only addition is a count of its
appends."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from gwtest import Alliance, Member, listing

from gateway.errors import StorageError
from gateway.ops.app import Core
from gateway.service.ledger import Accepted, Appended
from gateway.service.sequencer import Sequencer


@pytest.fixture
def alliance(tmp_path: Path) -> Alliance:
    a = Alliance(tmp_path / "zj", "zj.alliance.test")
    a.member("authority", "zj-amr", region="330000")
    return a


@pytest.fixture
def core(alliance: Alliance, database_url: str) -> Iterator[Core]:
    core = Core(alliance.config(database_url))
    try:
        yield core
    finally:
        core.close()


class _Counted:
    """The ledger's own append, remembering how many records each call carried."""

    def __init__(self, core: Core) -> None:
        self.calls: list[int] = []
        self._append = core.ledger.append

    def __call__(self, batch: Sequence[Accepted], **kw: Any) -> list[Appended]:
        self.calls.append(len(batch))
        return self._append(batch, **kw)


def _accepted(core: Core, member: Member, ref: str, n: int) -> list[Accepted]:
    out = []
    for i in range(n):
        statement = listing(member, decision_ref=f"{ref}-{i}")
        env = member.sign(statement)
        out.append(
            Accepted(env, env.record_id, member.member_id, statement, core.config.log_origin)
        )
    return out


def test_a_batch_is_one_append_in_order_whatever_its_size(
    alliance: Alliance, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    amr = alliance.members["zj-amr"]
    counted = _Counted(core)
    monkeypatch.setattr(core.ledger, "append", counted)
    sequencer = Sequencer(core.ledger, max_batch=4, max_wait_ms=1.0)
    sequencer.start()
    try:
        size = core.store.log_size()
        batch = _accepted(core, amr, "BIG", 10)
        batch.append(batch[3])  # the same record again: answered as a duplicate
        results = sequencer.submit_batch(batch).result(timeout=30)
        assert [r.record_id for r in results] == [a.record_id for a in batch]
        assert [r.log_index for r in results[:10]] == list(range(size, size + 10))
        assert (results[10].log_index, results[10].duplicate) == (size + 3, True)
        assert counted.calls == [11]  # more than max_batch, still one transaction
        single = _accepted(core, amr, "ONE", 1)[0]
        assert sequencer.submit(single).result(timeout=30).log_index == size + 10
        assert sequencer.submit_batch([]).result(timeout=1) == []
    finally:
        sequencer.stop()
    assert core.store.log_size() == size + 11


def test_a_failed_batch_stores_none_of_its_records(alliance: Alliance, core: Core) -> None:
    amr = alliance.members["zj-amr"]
    sequencer = Sequencer(core.ledger, max_batch=8, max_wait_ms=1.0)
    sequencer.start()
    try:
        size = core.store.log_size()
        good = _accepted(core, amr, "PART", 3)
        broken = Accepted(None, "0" * 64, amr.member_id, good[0].statement, "o")  # type: ignore[arg-type]
        with pytest.raises(StorageError, match="append failed"):
            sequencer.submit_batch([*good, broken]).result(timeout=30)
        assert core.store.log_size() == size
        results = sequencer.submit_batch(good).result(timeout=30)
        assert [(r.log_index, r.duplicate) for r in results] == [
            (size + i, False) for i in range(3)
        ]
    finally:
        sequencer.stop()
    with pytest.raises(StorageError, match="shutting down"):
        sequencer.submit_batch(good).result(timeout=1)
