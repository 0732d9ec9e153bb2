"""Chapters run to the end on a model that is not the embedded one.

A reader who passes ``model=`` through papermill gets a whole chapter: the checks about the
default model's own behaviour apply only to it, the laws that hold for any model are still
asserted. The foreign model is the zoo's tiny random-weight Llama (grouped-query attention, a BOS
token, a byte-level BPE tokenizer of its own), saved with ``save_pretrained`` and loaded by path,
as a user's model would be.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import zoo

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Parameters that shrink each chapter to seconds; the rest keep their defaults.
SHRUNK = {
    "02_direct_sampling": {"n_samples": 256, "completion_length": 24},
    "04_tps": {
        "completion_length": 16,
        "steps_per_bias": 30,
        "n_chains": 4,
        "trace_steps": 20,
        "tempering_steps": 30,
        "tempering_chains": 4,
    },
    "05_mbar": {
        "completion_length": 16,
        "n_steps": 60,
        "n_chains": 4,
        "n_zero": 256,
        "n_direct": 2048,
        "n_bootstrap": 20,
        "n_corpus_stories": 100,
    },
    "14_your_question": {
        "completion_length": 16,
        "n_chains": 2,
        "pilot_samples": 128,
        "budget_tokens": 100000,
        "n_direct": 512,
    },
}


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory) -> Path:
    return zoo.save_model("llama", tmp_path_factory.mktemp("models") / "tiny-llama", max_position_embeddings=256)


@pytest.mark.parametrize("chapter", sorted(SHRUNK))
def test_chapter_finishes_on_a_tiny_llama(chapter, llama_folder, tmp_path):
    parameters = {"model": str(llama_folder), **SHRUNK[chapter]}
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(NOTEBOOKS / f"{chapter}.ipynb"),
        str(tmp_path / "out.ipynb"),
        "-k",
        "python3",
        "--cwd",
        str(NOTEBOOKS),
        "--no-progress-bar",
    ]
    for name, value in parameters.items():
        command += ["-p", name, str(value)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
