"""``plusultra serve``'s bad starts are one stderr line (exit 2) before anything binds. The command
running as a real process is tested through the container entrypoint
(tests/container/test_entrypoint.py), which execs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from plusultra_pipeline.cli import main


def test_bad_starts_are_one_line(tiny_checkpoint, small_synth_db_path, tmp_path, capsys, monkeypatch):
    def fails(*argv) -> str:
        code = main(["serve", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        return err

    monkeypatch.delenv("PLUSULTRA_SERVE_TOKEN", raising=False)
    assert fails("--checkpoint", str(tiny_checkpoint), "--host", "0.0.0.0") == (
        "plusultra serve: error: --host 0.0.0.0 is not a loopback address: set PLUSULTRA_SERVE_TOKEN to a "
        "bearer token (clients send 'Authorization: Bearer <token>') or bind 127.0.0.1")
    assert "no complete supervised checkpoint for seeds [0]" in fails("--store", str(tmp_path), "--seeds", "0",
                                                                     "--db", str(small_synth_db_path))
    assert "--seeds 'a,b'" in fails("--store", str(tmp_path), "--seeds", "a,b")
    assert "no such database file" in fails("--checkpoint", str(tiny_checkpoint), "--db", str(tmp_path / "no.db"))
    corrupt = tmp_path / "bad.pt"
    corrupt.write_bytes(b"junk")
    Path(str(corrupt) + ".json").write_text(Path(str(tiny_checkpoint) + ".json").read_text())
    assert "do not match sidecar" in fails("--checkpoint", str(corrupt), "--db", str(small_synth_db_path))
    with pytest.raises(SystemExit) as usage:  # argparse: the same one line, exit 2
        main(["serve", "--checkpoint", "a.pt", "--store", "s"])
    err = capsys.readouterr().err.strip()
    assert usage.value.code == 2 and len(err.splitlines()) == 1 and "not allowed with argument" in err
    monkeypatch.setenv("PLUSULTRA_SERVE_TOKEN", " ")
    assert "PLUSULTRA_SERVE_TOKEN is set but empty" in fails("--checkpoint", str(tiny_checkpoint))
