"""The container's entrypoint (docker/entrypoint.sh, run with bash here: Docker cannot run on this
machine) and the files around it: each role dispatches to the real command with its env-driven
settings, every bad start is one line with exit 2, and the Dockerfile / compose file agree with
the Makefile, the entrypoint and deploy/dagster.yaml's variable names."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.serving.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
PG_VARS = {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}
DAGSTER_YAML = """\
storage:
  postgres:
    postgres_db:
      hostname: {env: DAGSTER_PG_HOST}
      port:
        env: DAGSTER_PG_PORT
      username: {env: DAGSTER_PG_USER}
      password: {env: "DAGSTER_PG_PASSWORD"}
      db_name: {env: DAGSTER_PG_DB}
"""


def entrypoint(*argv, env=None, **popen):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLUSULTRA_", "DAGSTER_"))}
    base["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])
    base.update(env or {})
    return subprocess.Popen(["bash", str(ENTRYPOINT), *argv], env=base, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def fails(*argv, env=None) -> str:
    proc = entrypoint(*argv, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def roles() -> list[str]:
    return re.search(r'^ROLES="([^"]+)"', ENTRYPOINT.read_text(), re.M).group(1).split()


def test_unknown_or_missing_roles_are_one_line(tmp_path):
    listed = " ".join(roles())
    assert fails() == f"entrypoint: error: no role given; expected one of: {listed}"
    assert fails("shell") == f"entrypoint: error: unknown role 'shell'; expected one of: {listed}"


@pytest.mark.parametrize("role", ["code-server", "webserver", "daemon"])
def test_dagster_roles_need_dagster_yaml_and_its_variables(role, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    assert fails(role, env={"DAGSTER_HOME": str(home)}) == (
        f"entrypoint: error: {home}/dagster.yaml not found: mount deploy/dagster.yaml there (DAGSTER_HOME={home})")
    configs = [DAGSTER_YAML]
    deploy = ROOT / "deploy" / "dagster.yaml"
    if deploy.is_file():  # the deployment's own file (section 3 of issue 9), once it is in the tree
        configs.append(deploy.read_text())
    for text in configs:
        (home / "dagster.yaml").write_text(text)
        err = fails(role, env={"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": "db"})
        named = set(re.search(r"reads (.+), not set in the environment$", err).group(1).split())
        assert named == PG_VARS - {"DAGSTER_PG_HOST"}, err


def test_serve_refuses_a_network_bind_without_a_token(tiny_checkpoint):
    err = fails("serve", "--checkpoint", str(tiny_checkpoint))  # the image binds 0.0.0.0 by default
    assert err.startswith("plusultra serve: error: --host 0.0.0.0 is not a loopback address: set PLUSULTRA_SERVE_TOKEN")


def test_serve_role_runs_the_agent_from_env_settings(tiny_checkpoint, small_synth_db_path, tmp_path):
    port = free_port()
    proc = entrypoint("serve", "--checkpoint", str(tiny_checkpoint), "--db", str(small_synth_db_path),
                      "--log-level", "warning",
                      env={"PLUSULTRA_SERVE_HOST": "127.0.0.1", "PLUSULTRA_SERVE_PORT": str(port),
                           "PLUSULTRA_SERVE_TOKEN": "tok", "PLUSULTRA_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"},
                      cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        assert health.json()["model"]["members"] == [str(tiny_checkpoint)]
        assert health.json()["model"]["source"] == "checkpoint"
        r = httpx.post(f"http://127.0.0.1:{port}/predict", json={"date": "2002-03-01"},
                       headers={"Authorization": "Bearer tok"}, timeout=60)
        assert r.status_code == 200 and r.json()["rows"] == 6
        assert httpx.get(f"http://127.0.0.1:{port}/config", timeout=5).status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/config", headers={"Authorization": "Bearer tok"},
                         timeout=5).json()["auth"] is True
    finally:
        proc.send_signal(signal.SIGTERM)  # what `docker stop` sends: the exec'd server gets it
        out, err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: killed by SIGTERM, no traceback
    assert proc.returncode in (0, -signal.SIGTERM) and "Traceback" not in err, (proc.returncode, err)
    assert out.startswith(f"plusultra serve: checkpoint {tiny_checkpoint} (cutoff None, lineage ")
    assert f"on http://127.0.0.1:{port} (docs at /docs, auth on)" in out


def test_passthrough_runs_the_named_command():
    proc = entrypoint("plusultra", "--version")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.startswith("plusultra 0.1.0 (python ")


def test_dockerfile_installs_like_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    pin = re.search(r"^TORCH_SPEC := (\S+)$", makefile, re.M).group(1)
    assert re.search(rf"^ARG TORCH_SPEC={re.escape(pin)}$", dockerfile, re.M), "torch pin differs from the Makefile"
    assert re.search(r"^ARG BASE_IMAGE=python:3\.1[1-9]", dockerfile, re.M)
    # torch first, then the project (whose wide torch range then installs nothing more)
    assert dockerfile.index('"${TORCH_SPEC}"') < dockerfile.index('pip install -e ".[${EXTRAS}]"')
    assert re.search(r"^ARG EXTRAS=demo,postgres$", dockerfile, re.M)  # Dagster's Postgres storage in the image
    assert 'ENTRYPOINT ["/app/docker/entrypoint.sh"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".plusultra" in ignored


def test_compose_wires_postgres_dagster_and_the_agent():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "user-code", "webserver", "daemon", "agent"}
    ours = {name: s for name, s in services.items() if name != "postgres"}
    assert {name: s["command"][0] for name, s in ours.items()} == {
        "user-code": "code-server", "webserver": "webserver", "daemon": "daemon", "agent": "serve"}
    assert all(s["command"][0] in roles() for s in ours.values())
    for name, s in ours.items():
        env = s["environment"]
        assert PG_VARS <= set(env) and env["DAGSTER_PG_HOST"] == "postgres", name
        assert f"./deploy/dagster.yaml:{env['DAGSTER_HOME']}/dagster.yaml:ro" in s["volumes"], name
        assert any(v.startswith("plusultra-data:/data") for v in s["volumes"]), name
        assert all(p.startswith("127.0.0.1:") for p in s.get("ports", [])), name  # published on loopback only
    assert "PLUSULTRA_SERVE_TOKEN" in services["agent"]["environment"]
    workspace = yaml.safe_load((ROOT / "docker" / "workspace.yaml").read_text())
    grpc = workspace["load_from"][0]["grpc_server"]
    assert grpc["host"] == "user-code" and grpc["port"] == 4000 and grpc["location_name"] == "plusultra"
