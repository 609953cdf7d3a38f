"""End-to-end checks of the executor through tests/e2e/executor_probe.c.

The probe is compiled here against the static library of the build directory that holds
$CLAWBACK_BIN (so it runs the same code as the binary).
"""

import json
import os
import pathlib
import shlex
import sqlite3
import subprocess

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("CLAWBACK_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
PROBE_SOURCE = SOURCE_DIR / "tests" / "e2e" / "executor_probe.c"
PKG_MODULES = ["libcurl", "jansson", "sqlite3", "libpcre2-8", "inih", "libssl", "libcrypto",
               "libsystemd", "libxml-2.0"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    binary = os.environ.get("CLAWBACK_BIN")
    if not binary:
        pytest.skip("CLAWBACK_BIN is not set (run through ctest)")
    library = pathlib.Path(binary).parent / "libclawback_core.a"
    if not library.exists():
        pytest.skip(f"{library} not found")
    out = tmp_path_factory.mktemp("probe") / "executor_probe"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", *PKG_MODULES],
                           check=True, capture_output=True, text=True).stdout
    subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", f"-I{SOURCE_DIR / 'src'}",
                    "-o", str(out), str(PROBE_SOURCE), str(library), *shlex.split(flags),
                    "-lwslay", "-lpthread", "-lm"], check=True)
    return out


def run_probe(probe, *args):
    result = subprocess.run([str(probe), *map(str, args)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_log_backend_drains_burst(probe, tmp_path):
    store = tmp_path / "clawback.db"
    run_probe(probe, "seed", store, 2000, "alice@corp.example")
    run_probe(probe, "seed", store, 50, "bob@corp.example")

    stats = json.loads(run_probe(probe, "drain", store, "log").splitlines()[-1])

    assert stats["claimed"] == 2050
    assert stats["done"] == 2050
    with sqlite3.connect(store) as db:
        states = dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    assert states == {"done": 2050}


def test_drain_after_kill_recovers(probe, tmp_path):
    store = tmp_path / "clawback.db"
    run_probe(probe, "seed", store, 10, "alice@corp.example")
    # Jobs left in running look like a run killed mid-way.
    with sqlite3.connect(store) as db:
        db.execute("UPDATE jobs SET state = 'running' WHERE id <= 5")

    stats = json.loads(run_probe(probe, "drain", store, "log").splitlines()[-1])

    assert stats["done"] == 10
    with sqlite3.connect(store) as db:
        acted = db.execute("SELECT count(*) FROM jobs WHERE may_have_acted = 1").fetchone()[0]
    assert acted == 5
