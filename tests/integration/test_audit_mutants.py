"""The monitor's edges found by mutation testing of ``clients/audit.py``
(docs/TESTING.md, run 5): each test names the lie or the accident it stops.

The logs are ``FakeLog``/``ProvingLog`` (test_audit_tooling, test_replay_rejections):
entries and checkpoints the test controls, signed with the log's real key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import pytest
from gwtest import USCC
from test_audit_tooling import (
    AUTHORITY,
    GATEWAY,
    ORIGIN,
    ZJ,
    AlteringLog,
    FakeLog,
    _erasure_env,
    _listing_env,
    _member_record,
    _record,
    _without_disclosures,
)
from test_replay_rejections import PEER, PEER_SHOP, _peer_record

from clients import LogEntry
from clients import audit as monitor
from gateway.core.crypto import SigningKey
from gateway.core.notes import (
    Checkpoint,
    CosignatureSigner,
    parse_signed_note,
    sign_note,
    verify_cosignature,
)
from gateway.core.statements import Role
from gateway.errors import LogIntegrityError, RecordError

PEER2 = "spiffe://sh.alliance.test/gateway/sh"
PEER_B = "spiffe://gd.alliance.test/gateway/gd-b"
PEER2_SHOP = "spiffe://sh.alliance.test/platform/shop-s"
KEPT_ADVICE = "report it to the regulator: the gateway keeps personal data it erased"


@pytest.fixture
def log() -> tuple[FakeLog, SigningKey]:
    """Our gateway's and an authority's member records, then one listing (3 entries)."""
    gateway_key, amr_key = SigningKey.generate(), SigningKey.generate()
    fake = FakeLog(gateway_key, ORIGIN)
    fake.append(_member_record(gateway_key, GATEWAY, Role.GATEWAY, gateway_key))
    fake.append(_member_record(gateway_key, AUTHORITY, Role.AUTHORITY, amr_key))
    fake.append(_listing_env(amr_key, USCC[0]))
    return fake, amr_key


def _replay(
    source: monitor.LogSource, base: FakeLog, size: int | None = None
) -> monitor.ReplayOutcome:
    size = len(base.log) if size is None else size
    return monitor.replay(
        source, Checkpoint(ORIGIN, size, base.root(size)), base.signer.verifier(), trust_domain=ZJ
    )


# --- verify: evidence, origin, the stored checkpoint ---------------------------------------


class _FixedClock(datetime):
    """``datetime.now``: 2026-01-02 03:04:05.000006 UTC; without a zone, the local time
    of a machine at UTC+8 (what a stamp taken without ``UTC`` would read)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _FixedClock:
        at = cls(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        if tz is None:
            return at.astimezone(timezone(timedelta(hours=8))).replace(tzinfo=None)
        return at.astimezone(tz)


STAMP = "20260102T030405.000006Z"


def test_evidence_is_named_by_case_and_kept_owner_only(
    log: tuple[FakeLog, SigningKey],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollback, a fork and an inconsistent checkpoint each leave a folder that names
    what happened and holds both signed notes, readable by the monitor only: the
    evidence a regulator is handed must say which note the monitor held and which the
    gateway served, and when (UTC)."""
    fake, amr_key = log
    monkeypatch.setattr(monitor, "datetime", _FixedClock)
    old_umask = os.umask(0o022)
    try:
        verifier = fake.signer.verifier()
        state = monitor.AuditState(tmp_path / "state")
        fake.serve(3)
        stored = fake.served
        monitor.verify(fake, verifier, state)
        evidence = tmp_path / "state" / "evidence"

        fake.serve(3, root=b"\x07" * 32)
        with pytest.raises(LogIntegrityError) as fork:
            monitor.verify(fake, verifier, state)
        folder = evidence / f"{STAMP}-fork-3"
        assert str(fork.value) == (
            f"fork: two different signed roots for tree size 3; both notes saved in {folder}"
        )
        assert fork.value.advice == (
            "report the evidence to the regulator: the log signed two histories"
        )
        assert (folder / "stored.note").read_text() == stored
        assert (folder / "served.note").read_text() == fake.served

        fake.serve(2)
        with pytest.raises(LogIntegrityError) as rollback:
            monitor.verify(fake, verifier, state)
        folder = evidence / f"{STAMP}-rollback-3-to-2"
        assert str(rollback.value) == (
            "rollback: the log served checkpoint 2 after this monitor verified checkpoint 3; "
            f"both notes saved in {folder}"
        )
        assert rollback.value.advice == (
            "report the evidence to the regulator; do not trust this gateway's answers"
        )
        assert (folder / "stored.note").read_text() == stored
        assert (folder / "served.note").read_text() == fake.served

        fake.append(_listing_env(amr_key, USCC[1]))
        fake.serve(4, root=b"\x08" * 32)
        with pytest.raises(LogIntegrityError) as inconsistent:
            monitor.verify(fake, verifier, state)
        folder = evidence / f"{STAMP}-inconsistent-3-4"
        assert str(inconsistent.value).startswith(
            "checkpoint 4 is not consistent with checkpoint 3: "
        )
        assert str(inconsistent.value).endswith(f"; both notes saved in {folder}")
        assert inconsistent.value.advice == (
            "report the evidence to the regulator: the log rewrote its history"
        )
        assert (folder / "stored.note").read_text() == stored
        assert (folder / "served.note").read_text() == fake.served

        assert sorted(p.name for p in evidence.iterdir()) == [
            f"{STAMP}-fork-3",
            f"{STAMP}-inconsistent-3-4",
            f"{STAMP}-rollback-3-to-2",
        ]
        for path in [evidence, *evidence.iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    finally:
        os.umask(old_umask)


def test_a_checkpoint_after_size_one_must_be_consistent_with_it(
    log: tuple[FakeLog, SigningKey], tmp_path: Path
) -> None:
    """The one-entry tree is the first the consistency proof covers: a log that rewrote
    its first entry cannot pass checkpoint 2 off as an extension of checkpoint 1."""
    fake, _ = log
    verifier = fake.signer.verifier()
    state = monitor.AuditState(tmp_path / "state")
    fake.serve(1)
    monitor.verify(fake, verifier, state)
    fake.serve(2, root=b"\x08" * 32)
    with pytest.raises(LogIntegrityError, match="checkpoint 2 is not consistent with checkpoint 1"):
        monitor.verify(fake, verifier, state)
    fake.serve(2)
    assert monitor.verify(fake, verifier, state).previous == Checkpoint(ORIGIN, 1, fake.root(1))


def test_a_checkpoint_of_another_log_signed_by_the_same_key_is_refused(
    log: tuple[FakeLog, SigningKey], tmp_path: Path
) -> None:
    """The key name and the signature are the log's, but the checkpoint is of another
    log (an operator that reuses its key for a test log): its tree is not this one's."""
    fake, _ = log
    body = Checkpoint("zj.alliance.test/staging-log/v1", 3, fake.root(3)).body()
    fake.served = sign_note(body, [fake.signer])
    with pytest.raises(LogIntegrityError) as refused:
        monitor.verify(fake, fake.signer.verifier(), monitor.AuditState(tmp_path / "state"))
    assert str(refused.value) == (
        "latest checkpoint: checkpoint origin 'zj.alliance.test/staging-log/v1' is not the "
        f"expected {ORIGIN!r}"
    )
    assert not (tmp_path / "state" / "checkpoint.note").exists()


def test_a_stored_checkpoint_altered_on_disk_is_named(
    log: tuple[FakeLog, SigningKey], tmp_path: Path
) -> None:
    """The monitor's own file is verified again: one altered on disk (to make a forged
    history look like an extension) is refused, and the file is named."""
    fake, _ = log
    state = monitor.AuditState(tmp_path / "state")
    fake.serve(2)
    monitor.verify(fake, fake.signer.verifier(), state)
    note = state.checkpoint_path.read_text()
    state.checkpoint_path.write_text(note.replace("\n2\n", "\n1\n", 1))
    fake.serve(3)
    with pytest.raises(LogIntegrityError) as refused:
        monitor.verify(fake, fake.signer.verifier(), state)
    assert str(refused.value).startswith(f"stored checkpoint {state.checkpoint_path}: ")


# --- the state directory -------------------------------------------------------------------


def test_the_state_directory_is_created_owner_only_with_its_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created 0700 from the start (the later chmod disabled here, umask 0): another user
    of the machine never gets a window to plant a checkpoint; missing parents are made."""
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    old_umask = os.umask(0)
    try:
        state = monitor.AuditState(tmp_path / "home" / "monitor" / "state")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(state.dir.stat().st_mode) == 0o700


def test_the_checkpoint_is_replaced_atomically_in_its_own_folder(
    log: tuple[FakeLog, SigningKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new note is written to a hidden file beside the old one and renamed over it:
    a rename within one folder (one file system) is atomic, so a crash leaves the old
    checkpoint or the new one, never half of one."""
    fake, _ = log
    state = monitor.AuditState(tmp_path / "state")
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: Path) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    fake.serve(2)
    state.store(fake.served)
    [(src, dst)] = renames
    assert dst == state.checkpoint_path
    assert src.parent == state.dir
    assert src.name.startswith(".checkpoint.note.")
    assert state.checkpoint_path.read_text() == fake.served


def test_a_failed_write_leaves_no_temporary_file_and_raises_its_own_error(
    log: tuple[FakeLog, SigningKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = log
    state = monitor.AuditState(tmp_path / "state")

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    fake.serve(2)
    with pytest.raises(OSError, match="No space left on device"):
        state.store(fake.served)
    assert list(state.dir.iterdir()) == []


# --- prove, cosign ---------------------------------------------------------------------------


def test_prove_of_a_record_after_the_checkpoint_says_to_retry(
    log: tuple[FakeLog, SigningKey],
) -> None:
    fake, _ = log
    record_id = fake.log[2].record_id
    with pytest.raises(RecordError) as wait:
        monitor.prove(fake, Checkpoint(ORIGIN, 2, fake.root(2)), record_id)
    assert str(wait.value) == (
        f"record {record_id} is at log index 2, after the verified checkpoint of size 2"
    )
    assert wait.value.advice == "the next checkpoint will cover it: retry in a few seconds"


class CosigningLog(FakeLog):
    def __init__(self, base: FakeLog) -> None:
        self.__dict__.update(base.__dict__)
        self.cosignatures: list[tuple[str, str]] = []

    def add_cosignature(self, checkpoint_body: str, signature_line: str) -> None:
        self.cosignatures.append((checkpoint_body, signature_line))


def test_a_cosignature_carries_the_time_it_was_asked_for(
    log: tuple[FakeLog, SigningKey], tmp_path: Path
) -> None:
    """The timestamp is part of what the member signs: a cosignature dated at another
    time than the one the monitor chose says something else."""
    fake, _ = log
    cosigning = CosigningLog(fake)
    cosigning.serve(3)
    verified = monitor.verify(cosigning, fake.signer.verifier(), monitor.AuditState(tmp_path))
    signer = CosignatureSigner("ndrc.alliance.test/monitor", SigningKey.generate())
    line = monitor.cosign(cosigning, verified, signer, timestamp=1_767_225_600)
    body = parse_signed_note(cosigning.served)[0]
    assert cosigning.cosignatures == [(body, line)]
    assert verify_cosignature(line, body, signer.verifier()) == 1_767_225_600


# --- replay ----------------------------------------------------------------------------------


def test_replay_reports_its_progress_entry_by_entry(log: tuple[FakeLog, SigningKey]) -> None:
    fake, _ = log
    seen: list[int] = []
    monitor.replay(
        fake,
        Checkpoint(ORIGIN, 3, fake.root(3)),
        fake.signer.verifier(),
        trust_domain=ZJ,
        on_progress=seen.append,
    )
    assert seen == [1, 2, 3]


def test_an_altered_entry_is_named_whole(log: tuple[FakeLog, SigningKey]) -> None:
    fake, _ = log
    record_id = fake.log[2].record_id
    with pytest.raises(LogIntegrityError) as altered:
        _replay(AlteringLog(fake, 2), fake)
    assert str(altered.value) == (
        f"entry 2: record id {record_id} is not the SHA-256 of the entry's bytes "
        "(the stored record was altered)"
    )


def test_first_use_refuses_a_gateway_introduced_by_another_gateway(
    log: tuple[FakeLog, SigningKey],
) -> None:
    """A record of a peer gateway must be issued by that gateway itself: a second
    gateway of its region cannot introduce it, with a key of its own choosing, on first
    use (the record's own rules already require a gateway issuer, so the role check
    behind this one never decides alone)."""
    fake, _ = log
    key = SigningKey.generate()
    fake.append(_peer_record(key, PEER_B, PEER, Role.GATEWAY, (key,)))
    with pytest.raises(LogIntegrityError, match="entry 3: no known key verifies member record"):
        _replay(fake, fake)


def test_two_peer_gateways_are_each_trusted_on_first_use(log: tuple[FakeLog, SigningKey]) -> None:
    """Each first-use record is learned under its own record id: the second peer's keys
    verify its members as the first peer's do."""
    fake, _ = log
    gd_key, sh_key = SigningKey.generate(), SigningKey.generate()
    fake.append(_peer_record(gd_key, PEER, PEER, Role.GATEWAY, (gd_key,)))
    fake.append(_peer_record(sh_key, PEER2, PEER2, Role.GATEWAY, (sh_key,)))
    fake.append(_record(sh_key, PEER2, PEER2_SHOP, Role.PLATFORM, SigningKey.generate()))
    fake.append(_record(gd_key, PEER, PEER_SHOP, Role.PLATFORM, SigningKey.generate()))
    outcome = _replay(fake, fake)
    assert outcome.trusted_on_first_use == [PEER, PEER2]
    assert {PEER, PEER2} <= outcome.signers and outcome.members == 6


# --- erasure -----------------------------------------------------------------------------------


class TwoFaced(FakeLog):
    """Serves the entries with their disclosures, but answers ``get`` without them: the
    stream a monitor replays and the answer to a single look-up disagree."""

    def __init__(self, base: FakeLog) -> None:
        self.__dict__.update(base.__dict__)

    def get(self, record_id: str) -> LogEntry:
        entry = super().get(record_id)
        return replace(entry, envelope=_without_disclosures(entry.envelope))


def test_disclosures_served_after_their_erasure_are_caught_in_the_stream(
    log: tuple[FakeLog, SigningKey],
) -> None:
    """A gateway that still streams an erased record's personal data but hides it from
    single look-ups is caught on the entry itself, not only by a later look-up."""
    fake, amr_key = log
    listed = _listing_env(amr_key, USCC[1])
    erasure = _erasure_env(amr_key, [listed.record_id])
    fake.append(erasure)  # 3
    fake.append(listed)  # 4, with its disclosures
    with pytest.raises(LogIntegrityError) as kept:
        _replay(TwoFaced(fake), fake)
    assert str(kept.value) == (
        f"entry 4: record {listed.record_id} is named by erasure {erasure.record_id}, but "
        "the gateway still serves its disclosures"
    )
    assert kept.value.advice == KEPT_ADVICE


@pytest.mark.parametrize("held", [True, False], ids=["erased", "never-held"])
def test_every_named_record_is_checked_after_one_it_need_not_check(
    log: tuple[FakeLog, SigningKey], held: bool
) -> None:
    """An erasure names first a record that is fine (erased, or one this log never
    held) and second a kept one: the first does not excuse the second."""
    fake, amr_key = log
    first = "ab" * 32
    if held:
        erased = _listing_env(amr_key, USCC[1])
        fake.append(_without_disclosures(erased))  # 3
        first = erased.record_id
    kept, kept_at = _listing_env(amr_key, USCC[2]), len(fake.log)
    fake.append(kept)
    erasure = _erasure_env(amr_key, [first, kept.record_id])
    fake.append(erasure)
    with pytest.raises(LogIntegrityError) as refused:
        _replay(fake, fake)
    assert str(refused.value) == (
        f"entry {kept_at}: record {kept.record_id} is named by erasure "
        f"{erasure.record_id}, but the gateway still serves its disclosures"
    )
    assert refused.value.advice == KEPT_ADVICE


def test_a_named_record_after_the_checkpoint_is_left_to_the_next_one(
    log: tuple[FakeLog, SigningKey],
) -> None:
    """A replica may receive an erasure and the record it names in one batch; the record
    lands just after the checkpoint, its disclosures not yet deleted. The checkpoint that
    covers it will be judged when it comes; this one is honest."""
    fake, amr_key = log
    listed = _listing_env(amr_key, USCC[1])
    fake.append(_erasure_env(amr_key, [listed.record_id]))  # 3
    fake.append(listed)  # 4, beyond the checkpoint of size 4
    outcome = _replay(fake, fake, size=4)
    assert outcome.tree_size == 4 and outcome.erased == []
