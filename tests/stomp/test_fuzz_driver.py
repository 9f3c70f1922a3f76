"""`make fuzz`'s driver (benchmarks/fuzz_stomp.py): it runs every property of test_fuzz.py
plus the raw target, and it catches what it exists to catch: an exception and a hang."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fuzz_stomp import Target, fuzz, main, targets


def test_every_target_runs_and_the_codec_holds(tmp_path: Path) -> None:
    names = [t.name for t in targets()]
    assert "raw" in names
    assert {"test_random_bytes", "test_session_never_raises"} <= set(names)
    stats = fuzz(3.0, seed=7, findings_dir=tmp_path, report=lambda line: None)
    assert all(s.executions > 0 for s in stats.values()), stats
    assert [f for s in stats.values() for f in s.findings] == []


def _fragile(data: bytes) -> None:
    if b"\x00" in data:
        raise IndexError("the parser fell over")


def _hangs(data: bytes) -> None:
    if b"\n" in data:
        while True:
            pass


def test_an_exception_and_a_hang_are_findings(tmp_path: Path) -> None:
    lines: list[str] = []
    chosen = [Target("fragile", _fragile, [b"SEND\n\n"]), Target("hangs", _hangs, [b"x"])]
    stats = fuzz(
        2.0, chosen=chosen, seed=3, hang_seconds=0.2, findings_dir=tmp_path, report=lines.append
    )
    fragile, hangs = stats["fragile"].findings, stats["hangs"].findings
    assert len(fragile) == 1 and fragile[0].reproduced and "IndexError" in fragile[0].error
    assert len(hangs) == 1 and hangs[0].reproduced and "HangError" in hangs[0].error
    assert fragile[0].path is not None and fragile[0].path.read_bytes() == fragile[0].data
    assert any(line.startswith("FINDING in fragile") for line in lines)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--seconds", "0"])
