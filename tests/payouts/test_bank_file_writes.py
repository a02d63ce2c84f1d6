"""Bank files are written atomically by whoever writes them, even several writers of the same file at once
(two payout runs re-sending one batch, whose text is the same): each writes its own temporary file and
renames it into place, so no writer finds its temporary file taken by another, no reader sees half a file,
and the file stays readable by its owner only."""

from __future__ import annotations

import stat
import threading

from dispatch.money.payout_adapters import _write_private


def test_writers_of_one_bank_file_at_once_never_trip_over_each_others_temporary_file(tmp_path):
    path = tmp_path / "ach-20261123-abcdef12.ach"
    text = "101 094101768 1234567892611230000A094101 CHASE BANK\n" * 200
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        try:
            barrier.wait(timeout=10)
            for _ in range(40):
                _write_private(path, text, encoding="ascii")
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert path.read_text(encoding="ascii") == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind
