"""Shared fixtures: real market databases built once per test session, and a copy helper.

``demo_db_path``        the real-data demo database (arch + pmdarima, ~0.5 s to build).
``small_synth_db_path`` a synthetic database, 6 symbols x 600 business days, seed 7.
``copy_db``             ``copy_db(path) -> Path``: a private copy in the test's ``tmp_path`` for
                        tests that mutate a database (the session files must stay pristine).
``tiny_checkpoint``     a tiny supervised checkpoint (policy head, OHLCV features) trained on
                        ``small_synth_db_path``, once per session.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

SMALL_SYNTH = {"n_symbols": 6, "n_days": 600, "seed": 7}

# the DuckDB extension-verification record goes to a per-run folder, not the user's ~/.cache
os.environ.setdefault("PLUSULTRA_CACHE_DIR", tempfile.mkdtemp(prefix="plusultra-test-cache-"))


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory) -> Path:
    from plusultra_core.data.demo_db import build_demo_database

    path = tmp_path_factory.mktemp("demo_db") / "demo.sqlite"
    build_demo_database(path)
    return path


@pytest.fixture(scope="session")
def small_synth_db_path(tmp_path_factory) -> Path:
    from plusultra_core.data.synth_db import build_synthetic_database

    path = tmp_path_factory.mktemp("synth_db") / "synth.sqlite"
    build_synthetic_database(path, **SMALL_SYNTH)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, small_synth_db_path) -> Path:
    from tests.core.inference.conftest import train_tiny

    return train_tiny(tmp_path_factory.mktemp("ckpt_policy"), small_synth_db_path).path


@pytest.fixture
def copy_db(tmp_path):
    """Return a function copying a database into this test's tmp dir (writable, unique name)."""
    counter = iter(range(1_000_000))

    def _copy(path) -> Path:
        path = Path(path)
        target = tmp_path / f"{path.stem}-copy{next(counter)}{path.suffix}"
        shutil.copyfile(path, target)
        return target

    return _copy


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: tiny models on a shared 2-core machine (two xdist workers) run an
    order of magnitude slower when each also spins intra-op threads. Only touches torch when the
    test module already imported it."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
