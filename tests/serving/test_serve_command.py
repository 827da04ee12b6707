"""``plusultra serve`` as a real process: it binds, answers, and stops on SIGINT; bad starts are
one stderr line (exit 2) before anything binds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from plusultra_pipeline.cli import main
from tests.serving.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSULTRA_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def test_serve_runs_until_interrupted(tiny_checkpoint, small_synth_db_path, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "plusultra_pipeline.cli", "serve", "--checkpoint",
                             str(tiny_checkpoint), "--db", str(small_synth_db_path), "--port", str(port),
                             "--log-level", "warning"], cwd=tmp_path, env=_env(OMP_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        assert health["model"]["source"] == "checkpoint" and health["model"]["members"] == [str(tiny_checkpoint)]
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"date": "2002-03-01"}, timeout=60)
        assert r.status_code == 200 and r.json()["rows"] == 6
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith(f"plusultra serve: checkpoint {tiny_checkpoint} (cutoff None, lineage ")
    assert f"on http://127.0.0.1:{port}" in out and "Traceback" not in err


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
