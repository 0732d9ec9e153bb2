"""The ``rarelib`` command: bad arguments end in one clear line, an estimate runs end to end on a tiny Llama
and shows again from its file, and Ctrl-C leaves a checkpoint that the same command resumes to the very
answer of an uninterrupted run."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zoo

from rarelib import cli, estimation
from rarelib.observables import OBSERVABLES

# The tiny Llama's log-probability of 8 tokens lies near 8·log(1/300) ≈ −45.6 (its pilot spans about −46.3 to
# −45.1), so −45 is in the upper tail. Pilot and ladder draw about 3100 tokens, the first round about 1000:
# a budget of 4500 pays for them and a short second round, a few seconds of sampling in all.
BUDGET = 4500
# The budget is not a hard cap: a budget that cannot pay for the first round is refused, but a later round is
# sized from the previous one's tokens per step, so the last round may draw a little more than was left.
BUDGET_OVERSHOOT = 0.1
SMALL_RUN = [
    "--prompt",
    "Once upon a time",
    "--observable",
    "logprob",
    "--threshold",
    "-45",
    "--length",
    "8",
    "--budget",
    str(BUDGET),
    "--chains",
    "4",
    "--pilot-samples",
    "200",
    "--ladder-steps",
    "10",
    "--first-steps",
    "10",
    "--quiet",
]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # as in-process tests run (conftest); results depend on it
TIMEOUT_S = 600  # generous: the machines that run the tests are shared


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory) -> Path:
    return zoo.save_model("llama", tmp_path_factory.mktemp("models") / "tiny-llama", max_position_embeddings=256)


def small_estimate(model: Path, out: Path) -> list[str]:
    """The arguments of a ``rarelib estimate`` of a few seconds on ``model``, written to ``out``."""
    return ["estimate", "--model", str(model), *SMALL_RUN, "--out", str(out)]


# --------------------------------------------------------------------------- bad arguments


def argparse_error(argv: list[str], capsys) -> str:
    """The last stderr line of ``main(argv)``, which must exit through argparse with status 2 and print nothing."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err.strip().splitlines()[-1]


VALID = ["estimate", "--prompt", "Once", "--observable", "logprob", "--out", "r.nc"]


def replaced(option: str, value: str) -> list[str]:
    """VALID with ``option``'s value replaced (or the option added)."""
    argv = list(VALID)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    return argv


@pytest.mark.parametrize(
    "argv, message",
    [
        (replaced("--observable", "fog"), "argument --observable: invalid choice: 'fog'"),
        (replaced("--budget", "-5"), "argument --budget: must be a positive number, e.g. 1e7; got '-5'"),
        (replaced("--budget", "lots"), "argument --budget: must be a positive number, e.g. 1e7; got 'lots'"),
        (replaced("--chains", "0"), "argument --chains: must be a positive whole number, e.g. 64; got '0'"),
        (replaced("--seed", "-1"), "argument --seed: must be a whole number ≥ 0, e.g. 0; got '-1'"),
        (replaced("--threshold", "nan"), "argument --threshold: must be a finite number, e.g. 12 or -3.5; got 'nan'"),
        (replaced("--dtype", "int8"), "argument --dtype: invalid choice: 'int8'"),
        (replaced("--side", "both"), "argument --side: invalid choice: 'both'"),
        (replaced("--out", "r.csv"), "argument --out: must be the path of a netCDF file ending in .nc"),
        (VALID[:-2], "the following arguments are required: --out"),
        (["frobnicate"], "argument {estimate,show}: invalid choice: 'frobnicate'"),
    ],
)
def test_a_bad_argument_is_one_line_naming_it_and_what_it_allows(argv, message, capsys):
    line = argparse_error(argv, capsys)
    assert line.startswith("rarelib"), line
    assert message in line


def test_a_bad_choice_lists_the_allowed_values(capsys):
    line = argparse_error(replaced("--observable", "fog"), capsys)
    assert all(name in line for name in OBSERVABLES), line


def library_error(argv: list[str], capsys) -> str:
    """stderr of ``main(argv)``, which must return 2 with one line and print nothing on stdout."""
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("rarelib: error: ")
    return captured.err


def test_a_missing_model_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-model"
    err = library_error(replaced("--model", str(missing)), capsys)
    assert f"model {str(missing)!r}: no such folder" in err
    assert not (tmp_path / "r.parts").exists()


def test_an_output_path_that_is_a_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.nc").mkdir()
    err = library_error(VALID, capsys)
    assert "--out='r.nc' is a folder, not a file" in err
    assert not (tmp_path / "r.parts").exists()


def test_show_of_a_missing_file_is_one_line(tmp_path, capsys):
    err = library_error(["show", str(tmp_path / "nothing.nc")], capsys)
    assert f"no estimate at {tmp_path / 'nothing.nc'}" in err


def test_show_of_a_file_that_is_not_netcdf_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.nc").write_text("not a netCDF file\n")
    err = library_error(["show", str(tmp_path / "notes.nc")], capsys)
    assert "is not an estimate written by Estimate.save" in err


def test_arguments_map_onto_estimate_and_the_checkpoint_sits_beside_the_output():
    args = cli.build_parser().parse_args(
        ["estimate", "--prompt", "Hi", "--observable", "ari", "--threshold", "12", "--threshold", "13"]
        + ["--budget", "1e6", "--length", "16", "--chains", "8", "--out", "runs/ari.nc"]
    )
    arguments = cli.estimate_arguments(args)
    assert set(arguments) <= set(cli.ESTIMATE_DEFAULTS) | {"model", "prompt", "observable"}
    assert arguments["thresholds"] == [12.0, 13.0]
    assert (arguments["budget_tokens"], arguments["completion_length"], arguments["n_chains"]) == (1e6, 16, 8)
    assert arguments["model"] == "default" and arguments["progress"] is True
    assert arguments["checkpoint"] == Path("runs/ari.parts")
    assert arguments["seed"] == cli.ESTIMATE_DEFAULTS["seed"]
    bare = cli.build_parser().parse_args(["estimate", "--prompt", "Hi", "--observable", "ari", "--out", "a.nc"])
    assert cli.estimate_arguments(bare)["thresholds"] is None  # the whole tail curve


# --------------------------------------------------------------------------- end to end


def test_estimate_then_show_on_a_tiny_llama(llama_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(small_estimate(llama_folder, Path("r.nc"))) == 0
    printed = capsys.readouterr().out
    result = estimation.load(tmp_path / "r.nc")
    assert printed == result.summary() + "\n"
    assert printed.startswith("P(logprob ≥ a) after 'Once upon a time'") and "stopped: " in printed
    assert result.budget_tokens == BUDGET
    assert result.tokens <= (1 + BUDGET_OVERSHOOT) * BUDGET
    assert f"{result.tokens:.3g} tokens of {BUDGET:.3g}" in printed
    assert result.thresholds.tolist() == [-45.0]
    assert (tmp_path / "r.parts" / "ladder.npz").is_file()

    assert cli.main(["show", "r.nc", "--plot", "tail.png"]) == 0
    assert capsys.readouterr().out == printed
    assert (tmp_path / "tail.png").read_bytes().startswith(b"\x89PNG")


def test_the_console_script_is_installed():
    script = shutil.which("rarelib", path=str(Path(sys.executable).parent))
    assert script is not None, f"no rarelib script beside {sys.executable}; pip install -e ."
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert shown.returncode == 0, shown.stderr
    assert "{estimate,show}" in shown.stdout


# --------------------------------------------------------------------------- Ctrl-C and resume


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_checkpoint(process: subprocess.Popen, folder: Path, timeout_s: float = TIMEOUT_S) -> Path:
    """The first tempering checkpoint (``*.npz`` under ``folder``'s ``ladder/`` or ``rounds/``) that ``process``
    writes; fails if it ends or the time runs out first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        written = sorted(folder.glob("ladder/*.npz")) + sorted(folder.glob("rounds/*.npz"))
        if written:
            return written[0]
        if process.poll() is not None:
            pytest.fail(f"the command ended ({process.returncode}) before a checkpoint: {process.stderr.read()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"no checkpoint in {folder} after {timeout_s} s")


def assert_same_estimate(first: estimation.Estimate, second: estimation.Estimate) -> None:
    np.testing.assert_array_equal(first.thresholds, second.thresholds)
    np.testing.assert_array_equal(first.tail.log, second.tail.log)
    np.testing.assert_array_equal(first.tail.log_interval, second.tail.log_interval)
    np.testing.assert_array_equal(first.ladder, second.ladder)
    assert first.history == second.history
    assert first.summary() == second.summary()


def test_ctrl_c_leaves_a_checkpoint_that_the_same_command_resumes(llama_folder, tmp_path):
    """Interrupted once its first tempering checkpoint is written, then run again: the answer of a run that
    was never interrupted (run beside it, at the same time, in another folder)."""
    command = [sys.executable, "-m", "rarelib", *small_estimate(llama_folder, Path("r.nc"))]
    interrupted, uninterrupted = tmp_path / "interrupted", tmp_path / "uninterrupted"
    interrupted.mkdir()
    uninterrupted.mkdir()

    def start(folder: Path) -> subprocess.Popen:
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        # a shell without job control starts background jobs with SIGINT ignored, and children inherit that (so
        # Python would never raise KeyboardInterrupt): the command gets the default disposition, as in a terminal
        return subprocess.Popen(command, cwd=folder, text=True, env=ONE_THREAD, preexec_fn=default_sigint, **pipes)

    with start(uninterrupted) as reference, start(interrupted) as process:
        wait_for_checkpoint(process, interrupted / "r.parts")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 130, err
        assert out == ""
        assert err.strip().splitlines()[-1] == (
            "rarelib: interrupted; everything computed so far is in r.parts; run the same command again to resume"
        )
        assert not (interrupted / "r.nc").exists()

        resumed = subprocess.run(
            command, cwd=interrupted, capture_output=True, text=True, env=ONE_THREAD, timeout=TIMEOUT_S
        )
        assert resumed.returncode == 0, resumed.stderr
        reference_out, reference_err = reference.communicate(timeout=TIMEOUT_S)
        assert reference.returncode == 0, reference_err

    assert resumed.stdout == reference_out
    assert_same_estimate(estimation.load(interrupted / "r.nc"), estimation.load(uninterrupted / "r.nc"))
