"""The library prints nothing that depends on the machine's state: a fresh user cache gives the same output.

Once-a-day or first-import messages (ArviZ's refactor warning stamps a file in the user cache;
pymbar prints a banner) reach a notebook's output only on a fresh machine, where the book's
``-W`` build then fails. These tests run the library in a new process with an empty ``HOME`` and
``XDG_CACHE_HOME``, as on a fresh machine.
"""

import subprocess
import sys

import pytest

USE_DIAGNOSTICS_AND_MBAR = """
import numpy as np
from rarelib import diagnostics, reweighting, storage
rng = np.random.default_rng(0)
diagnostics.rhat_per_bias(rng.normal(size=(4, 50, 2)))
diagnostics.ess_per_bias(rng.normal(size=(4, 50, 2)))
storage.arviz()
print("done")
"""


def run_fresh(code: str, tmp_path) -> subprocess.CompletedProcess:
    environment = {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)


def test_plain_arviz_import_warns_on_a_fresh_cache(tmp_path):
    # The premise of the next test: without rarelib's guard, a fresh cache makes ArviZ print its warning.
    result = run_fresh("import arviz", tmp_path)
    assert "FutureWarning" in result.stderr


@pytest.mark.parametrize("first_import_today", [True, False])
def test_rarelib_prints_nothing_on_a_fresh_cache(tmp_path, first_import_today):
    if not first_import_today:
        run_fresh("import arviz", tmp_path)  # the stamp file exists: the second day-state
    result = run_fresh(USE_DIAGNOSTICS_AND_MBAR, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n" and result.stderr == ""
