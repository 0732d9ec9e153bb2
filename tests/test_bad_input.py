"""Issue #24: every bad input gets one clear error naming the parameter or the file, and nothing is silently wrong.

A table of bad inputs per entry point: the chapters' parameters (:func:`rarelib.params.check` and
:func:`rarelib.params.check_notebook`), the samplers, the analysis, results files, checkpoints and model folders
(hostile files included). Each case asserts the error type and that the message names what is wrong.
"""

import json
import math
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import zoo

from rarelib import direct, logspace, models, params, reweighting, storage, tps, workflow

PROMPT = "ab a"
GOOD_SIGNED = {"ari": {"negative": [-0.3], "positive": [0.2]}}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lm():
    return models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny gpt2 folder with its tokenizer (safetensors), written once for the module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zoo.save_model("gpt2", tmp_path_factory.mktemp("zoo") / "gpt2")


# ----------------------------------------------------------------------------- chapter parameters

PARAMETER_CASES = [
    ("profile", "fast"),
    ("profile", 1),
    ("profile", None),
    ("prompt", ""),
    ("prompt", 5),
    ("prompt", None),
    ("seed", -1),
    ("seed", 1.5),
    ("seed", "0"),
    ("seed", True),
    ("completion_length", 0),
    ("completion_length", -3),
    ("completion_length", 2.5),
    ("completion_length", "64"),
    ("completion_length", True),
    ("n_samples", 0),
    ("n_samples", 1),
    ("n_direct", -1),
    ("steps_per_bias", 0),
    ("n_steps", 1.5),
    ("n_chains", "8"),
    ("batch_size", 0),
    ("n_bootstrap", -2),
    ("swap_every", 0),
    ("n_zero", -1),
    ("n_zero", 0),
    ("n_bins", -3),
    ("n_bins", 0),
    ("n_corpus_stories", 0),
    ("n_corpus_stories", "many"),
    ("observable", "readability"),
    ("observable", 3),
    ("observables", ["ari", "nonsense"]),
    ("observables", "ari"),
    ("observables", []),
    ("observables", ["ari", "ari"]),
    ("record", ["nonsense"]),
    ("record", "logprob"),
    ("record", None),
    ("biases", 0.5),
    ("biases", []),
    ("biases", [0.1, math.nan]),
    ("biases", "ari"),
    ("biases", [0.1, "x"]),
    ("biases", {"ari": {"negative": [0.3], "positive": [0.2]}}),
    ("biases", {"ari": {"negative": [-0.3]}}),
    ("biases", {"nonsense": {"negative": [-0.3], "positive": [0.2]}}),
    ("biases", {"ari": [-0.3, 0.2]}),
    ("biases", {"ari": {"negative": [-0.1], "positive": [-0.2]}}),
    ("biases", {"ari": {"negative": [-math.inf], "positive": [0.2]}}),
    ("biases", {"ari": {"negative": [], "positive": [0.2]}}),
    ("ladders", {"ari": [-1.0, 1.0]}),
    ("ladders", {"ari": [0.0, -1.0]}),
    ("ladders", [-1.0, 0.0, 1.0]),
    ("ladders", {"ari": "x"}),
    ("ladders", {"ari": [0.0, 0.0]}),
    ("ladders", {"nonsense": [0.0]}),
    ("ladders", {}),
    ("ladders", {"ari": [-1e6, math.nan, 0.0]}),
    ("guides", {"ari": "sentences"}),
    ("guides", "temperature"),
    ("guides", {"nonsense": None}),
    ("guides", {}),
    ("guide", "fast"),
    ("burn_in", 1.0),
    ("burn_in", -0.1),
    ("burn_in", "x"),
    ("temperature", 0),
    ("temperature", "x"),
    ("temperature", math.inf),
    ("rhat_threshold", "x"),
    ("rhat_threshold", 1.0),
    ("rhat_threshold", 0.9),
    ("keep_tokens", "no"),
    ("keep_tokens", 1),
    ("keep_tokens", None),
    ("trace_bias", "x"),
    ("trace_bias", math.nan),
    ("exact_bias", math.inf),
]


@pytest.mark.parametrize("name, value", PARAMETER_CASES, ids=[f"{n}={v!r}" for n, v in PARAMETER_CASES])
def test_bad_parameter_value_names_the_parameter(name, value):
    with pytest.raises(ValueError) as error:
        params.check({name: value})
    message = str(error.value)
    assert message.startswith(name) or f"{name}[" in message or f"{name} " in message, message
    assert "\n" not in message


@pytest.mark.parametrize(
    "values, named",
    [
        (dict(n_zero=2000, n_direct=1000), "n_zero=2000 must not exceed n_direct=1000"),
        (
            dict(observables=["ari", "logprob"], biases=GOOD_SIGNED),
            r"biases has no entry for observables \['logprob'\]",
        ),
    ],
)
def test_parameters_that_disagree_are_named(values, named):
    with pytest.raises(ValueError, match=named):
        params.check(values)


def test_good_structured_parameters_pass():
    params.check(
        dict(
            observables=["ari"],
            biases=GOOD_SIGNED,
            ladders={"ari": [-1.0, 0.0, 0.5]},
            guides={"ari": None},
            record=["logprob", "ari"],
            keep_tokens=False,
            n_zero=10,
            n_direct=10,
            rhat_threshold=1.1,
            trace_bias=-1.0,
        )
    )


@pytest.mark.parametrize("notebook", sorted(path.stem for path in (REPO / "notebooks").glob("*.ipynb")))
def test_every_chapter_accepts_its_defaults_and_its_paper_profile(notebook):
    import yaml

    defaults = params.defaults(notebook)
    params.check_notebook(notebook, dict(defaults))
    path = params.profile_file(notebook, "paper")
    if path is not None:
        params.check_notebook(notebook, {**defaults, **yaml.safe_load(path.read_text()), "profile": "paper"})


@pytest.mark.parametrize(
    "notebook, extra, error, named",
    [
        (
            "02_direct_sampling",
            {"n_sample": 10},
            ValueError,
            "02_direct_sampling has no parameter 'n_sample'.*n_samples",
        ),
        ("05_mbar", {"ladder": {"ari": [0.0]}}, ValueError, "no parameter 'ladder'.*ladders"),
        ("04_tps", {"profile": "paper"}, ValueError, "profile='paper' was named but.*-f profiles/paper/04_tps.yaml"),
        ("04_tps", {"observables": ["ari", "nonsense"]}, ValueError, r"observables\[1\] must be one of"),
        ("04_tps", {"biases": 0.5}, ValueError, "biases must be a non-empty list .*or a dict of observable name"),
        ("05_mbar", {"guides": ["ari"]}, ValueError, "guides must be a non-empty dict"),
        ("05_mbar", {"ladders": {"ari": "x"}}, ValueError, r"ladders\['ari'\] must be a non-empty list"),
        ("05_mbar", {"keep_tokens": "no"}, ValueError, "keep_tokens must be True or False"),
        ("05_mbar", {"n_zero": 20000}, ValueError, "n_zero=20000 must not exceed n_direct"),
        ("no_such_chapter", {}, FileNotFoundError, "no chapter notebook"),
    ],
)
def test_chapter_refuses_unknown_names_unloaded_profiles_and_bad_values(notebook, extra, error, named):
    namespace = {} if error is FileNotFoundError else {**params.defaults(notebook), **extra}
    with pytest.raises(error, match=named):
        params.check_notebook(notebook, namespace)


def test_check_names_ignores_modules_functions_and_ipython_globals():
    namespace = {"n_samples": 4, "np": np, "check": params.check, "In": [""], "_i1": "", "__name__": "__main__"}
    params.check_names(namespace, ["n_samples"])


def test_papermill_refuses_a_misspelt_parameter_with_one_line(tmp_path):
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(REPO / "notebooks" / "02_direct_sampling.ipynb"),
        str(tmp_path / "out.ipynb"),
        "-k",
        "python3",
        "-p",
        "n_sample",
        "10",
        "-p",
        "n_samples",
        "64",
        "-p",
        "completion_length",
        "8",
        "--cwd",
        str(REPO / "notebooks"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith("ValueError: 02_direct_sampling has no parameter 'n_sample'")
    ]
    assert lines and "n_samples" in lines[0]


# ----------------------------------------------------------------------------- samplers

DIRECT_CASES = [
    (dict(n=0), "n must be a positive integer"),
    (dict(n=2.5), "n must be a positive integer"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(temperature=0.0), "temperature must be a finite number > 0"),
    (dict(temperature=math.nan), "temperature must be"),
    (dict(seed=-1), "seed must be a non-negative integer"),
    (dict(completion_length=0), "completion_length must be a positive integer"),
    (dict(completion_length=40), "completion_length=40 with a 4-token prompt exceeds.*use completion_length ≤ 12"),
    (dict(prompt="ab " * 20), "prompt has 60 tokens.*use a prompt shorter than 16 tokens"),
    (dict(observables=["nonsense"]), "observable must be one of"),
]


@pytest.mark.parametrize("overrides, named", DIRECT_CASES)
def test_direct_sample_names_the_bad_argument(lm, overrides, named):
    arguments = {**dict(prompt=PROMPT, n=4, completion_length=3, progress=False), **overrides}
    with pytest.raises(ValueError, match=named):
        direct.sample(lm, **arguments)


def test_direct_out_that_is_a_file_is_refused_before_sampling(lm, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="out=.*is a file, not a folder"):
        direct.sample(lm, PROMPT, 4, 3, progress=False, out=tmp_path / "file")


TPS_ARGUMENTS = dict(
    prompt=PROMPT, completion_length=3, observable="repeats", biases=[0.0, -0.5], n_steps=3, n_chains=2, progress=False
)
TEMPERING_CASES = [
    (dict(biases=[]), "biases must be a non-empty 1-D sequence"),
    (dict(biases=[0.0, math.nan]), "biases must be"),
    (dict(biases="ab"), "biases must be"),
    (dict(n_steps=0), "n_steps must be a positive integer"),
    (dict(n_chains=0), "n_chains must be a positive integer"),
    (dict(swap_every=0), "swap_every must be a positive integer"),
    (dict(move=tps.Move(cuts="random")), "cuts must be one of"),
    (dict(start="far"), "start must be one of"),
    (dict(move=tps.Move(window=0)), "window must be a positive integer"),
    (dict(move=tps.Move(guide=[0], scale=math.nan)), "the move's scale must be a finite number"),
    (dict(observable="nonsense"), "observable must be one of"),
    (dict(record=["nonsense"]), "observable must be one of"),
    (dict(checkpoint_every=0), "checkpoint_every must be a positive integer"),
    (dict(seed=-2), "seed must be a non-negative integer"),
    (dict(completion_length=20), "completion_length=20 with a 4-token prompt exceeds"),
]


@pytest.mark.parametrize("overrides, named", TEMPERING_CASES)
def test_run_tempering_names_the_bad_argument(lm, overrides, named):
    with pytest.raises(ValueError, match=named):
        tps.run_tempering(lm, **{**TPS_ARGUMENTS, **overrides})


@pytest.mark.parametrize(
    "overrides, named",
    [
        (dict(steps_per_bias=0), "steps_per_bias must be a positive integer"),
        (dict(biases=[[0.0]]), "biases must be a non-empty 1-D sequence"),
        (dict(n_chains=True), "n_chains must be a positive integer"),
    ],
)
def test_run_annealed_names_the_bad_argument(lm, overrides, named):
    arguments = {**TPS_ARGUMENTS, "steps_per_bias": 2, **overrides}
    del arguments["n_steps"]
    with pytest.raises(ValueError, match=named):
        tps.run_annealed(lm, **arguments)


def test_checkpoint_that_is_a_folder_is_refused_before_the_run(lm, tmp_path):
    steps = []
    with pytest.raises(ValueError, match="checkpoint=.*is a folder, not a file"):
        tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=tmp_path, callback=lambda *step: steps.append(step))
    assert steps == []


# ----------------------------------------------------------------------------- hostile checkpoint and array files


def _object_array_npz(path: Path) -> None:
    np.savez(path, config=np.array([{"a": 1}], dtype=object))


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(300))


def _truncated_npz(path: Path) -> None:
    np.savez(path, config=np.array("{}"), steps_done=np.zeros(1000))
    path.write_bytes(path.read_bytes()[:200])


def _without_config(path: Path) -> None:
    np.savez(path, steps_done=np.array(1))


def _config_not_json(path: Path) -> None:
    np.savez(path, config=np.array("not json"), **{name: np.zeros(2) for name in tps.CHECKPOINT_ARRAYS})


def _config_a_list(path: Path) -> None:
    np.savez(path, config=np.array("[1, 2]"), **{name: np.zeros(2) for name in tps.CHECKPOINT_ARRAYS})


HOSTILE_FILES = [
    (_object_array_npz, "holds Python objects"),
    (_random_bytes, "not a readable .npz file"),
    (_truncated_npz, "not a readable .npz file"),
    (_without_config, r"lacks the arrays \['config'"),
    (_config_not_json, "its config is not a JSON object"),
    (_config_a_list, "its config is not a JSON object"),
]


@pytest.mark.parametrize("write, named", HOSTILE_FILES, ids=[write.__name__ for write, _ in HOSTILE_FILES])
def test_hostile_checkpoint_is_named_and_never_unpickled(lm, tmp_path, write, named):
    path = tmp_path / "run.npz"
    write(path)
    with pytest.raises(ValueError, match=named) as error:
        tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=path)
    assert str(path) in str(error.value) and "allow_pickle" not in str(error.value)


@pytest.mark.parametrize("write, named", HOSTILE_FILES, ids=[write.__name__ for write, _ in HOSTILE_FILES])
def test_hostile_direct_batch_is_named(lm, tmp_path, write, named):
    write(tmp_path / "batch_000000.npz")
    with pytest.raises(ValueError, match=named) as error:
        direct.sample(lm, PROMPT, 4, 3, batch_size=2, progress=False, out=tmp_path)
    assert "allow_pickle" not in str(error.value)


def test_another_runs_checkpoint_names_the_differences(lm, tmp_path):
    path = tmp_path / "run.npz"
    tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=path)
    with pytest.raises(ValueError, match="different arguments: .*seed=0 there, 5 now"):
        tps.run_tempering(lm, **{**TPS_ARGUMENTS, "seed": 5}, checkpoint=path)
    direct.sample(lm, PROMPT, 4, 3, batch_size=4, progress=False, out=tmp_path / "direct")
    with pytest.raises(ValueError, match="lacks the arrays"):
        tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=tmp_path / "direct" / "batch_000000.npz")


def test_changed_weights_at_the_same_path_are_never_mixed(model_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    first = models.load(folder)
    arguments = dict(prompt="Once upon", completion_length=3, progress=False)
    tps.run_tempering(first, **{**TPS_ARGUMENTS, **arguments}, checkpoint=tmp_path / "run.npz")
    direct.sample(first, n=4, batch_size=2, out=tmp_path / "direct", **arguments)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zoo.save_model("gpt2", folder, with_tokenizer=False, seed=1)
    second = models.load(folder)
    assert second.name == first.name and models.fingerprint(second) != models.fingerprint(first)
    with pytest.raises(ValueError, match="written by another model"):
        tps.run_tempering(second, **{**TPS_ARGUMENTS, **arguments}, checkpoint=tmp_path / "run.npz")
    with pytest.raises(ValueError, match="written by another model"):
        direct.sample(second, n=4, batch_size=2, out=tmp_path / "direct", **arguments)


# ----------------------------------------------------------------------------- results files and the analysis


def _gaussian_run(rng, lambdas, observable="x"):
    lambdas = np.asarray(lambdas, dtype=float)
    phi = rng.normal(size=(4, 60, lambdas.size)) - lambdas
    return storage.make_run({"phi": phi}, lambdas, attrs={"observable": observable, "sampler": "parallel_tempering"})


def _analysis_file(path: Path) -> None:
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = reweighting.analyze(
            _gaussian_run(rng, [-0.5, 0.0]),
            np.linspace(-4, 4, 5),
            rng=rng,
            settings=reweighting.Settings(n_bootstrap=4),
        )
    analysis.save(path)


def _netcdf_without_phi(path: Path) -> None:
    import xarray as xr

    xr.Dataset({"x": ("a", np.zeros(3))}).to_netcdf(path, group="posterior")


STORAGE_CASES = [
    (lambda path: None, FileNotFoundError, "no samples file at"),
    (lambda path: path.write_bytes(b"\x89HDF garbage"), ValueError, "is not a readable netCDF samples file"),
    (_analysis_file, ValueError, "no 'posterior' group, so not a run"),
    (_netcdf_without_phi, ValueError, "posterior has no 'phi' variable"),
    (lambda path: path.mkdir(), FileNotFoundError, "no samples file at"),
]


@pytest.mark.parametrize("write, error, named", STORAGE_CASES)
def test_storage_load_names_the_file(tmp_path, write, error, named):
    path = tmp_path / "run.nc"
    write(path)
    with pytest.raises(error, match=named) as raised:
        storage.load(path)
    assert str(path) in str(raised.value)


def test_analysis_load_of_a_run_names_the_file(tmp_path):
    rng = np.random.default_rng(1)
    path = storage.save(_gaussian_run(rng, [0.0]), tmp_path / "run.nc")
    with pytest.raises(ValueError, match=str(path)):
        reweighting.Analysis.load(path)


def _direct_samples(lm):
    return direct.sample(lm, PROMPT, 8, 3, progress=False, observables=["repeats"])


ANALYZE_CASES = [
    (lambda run, lm: [run, _direct_samples(lm)], TypeError, r"runs\[1\] is a DirectSamples.*direct.to_inference_data"),
    (lambda run, lm: [run, {"phi": [1.0]}], TypeError, r"runs\[1\] is a dict"),
    (lambda run, lm: [], ValueError, "runs is empty"),
    (
        lambda run, lm: [run, _gaussian_run(np.random.default_rng(2), [0.0], observable="y")],
        ValueError,
        "runs record different observables",
    ),
]


@pytest.mark.parametrize("make_runs, error, named", ANALYZE_CASES)
def test_analyze_refuses_what_is_not_a_run(lm, make_runs, error, named):
    run = _gaussian_run(np.random.default_rng(3), [-0.5, 0.0])
    with pytest.raises(error, match=named):
        reweighting.analyze(make_runs(run, lm), np.linspace(-4, 4, 5), rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "bins, named",
    [
        ([1.0], "bins must be a 1-D array of at least 2 bin edges"),
        ([0.0, 0.0, 1.0], "bins must be finite and strictly increasing"),
        ([100.0, 200.0], "bins span .* choose bins that cover the data"),
    ],
)
def test_analyze_names_bad_bins(bins, named):
    with pytest.raises(ValueError, match=named):
        reweighting.analyze(_gaussian_run(np.random.default_rng(3), [-0.5, 0.0]), bins, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    "settings, named",
    [
        (dict(rhat_threshold=1.0), "rhat_threshold"),
        (dict(n_bootstrap=1), "n_bootstrap"),
        (dict(burn_in=1.0), "burn_in"),
        (dict(level=1.5), "level"),
        (dict(rhat_method="x"), "rhat_method"),
        (dict(min_overlap=1.0), "min_overlap"),
    ],
)
def test_analysis_settings_name_the_bad_one(settings, named):
    with pytest.raises(ValueError, match=named):
        reweighting.Settings(**settings)


@pytest.mark.parametrize("ladder", [[-1e6, 0.0, 1e6]])
def test_states_that_do_not_overlap_never_give_a_reach(ladder):
    # Issue #24, item 1: a ladder of far rungs reported a reach of 10^-549674; the rungs not linked to λ = 0 by
    # overlapping neighbours are dropped, and what is left reaches no further than its own samples.
    rng = np.random.default_rng(4)
    run = _gaussian_run(rng, ladder)
    with pytest.warns(reweighting.ReweightingWarning, match="beyond an overlap gap"):
        analysis = reweighting.analyze(
            run, np.linspace(-6, 6, 13), rng=rng, settings=reweighting.Settings(n_bootstrap=10, rhat_method="identity")
        )
    np.testing.assert_array_equal(analysis.states, [0.0])
    for tail in (analysis.upper_tail, analysis.lower_tail):
        assert logspace.reach(tail) >= -math.log10(analysis.samples_per_state.sum()) - 1e-9


# ----------------------------------------------------------------------------- model folders


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _set_config(folder: Path, **fields) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **fields}))


MODEL_CASES = [
    (
        "truncated safetensors",
        lambda f: _truncate(f / "model.safetensors", 4000),
        ValueError,
        r"model.safetensors is broken \(not a complete safetensors file",
    ),
    (
        "safetensors header only",
        lambda f: _truncate(f / "model.safetensors", 20),
        ValueError,
        "model.safetensors is broken",
    ),
    (
        "garbage tokenizer.json",
        lambda f: (f / "tokenizer.json").write_text('{"version": "1.0"}'),
        ValueError,
        "tokenizer.json is broken",
    ),
    (
        "tokenizer.json not UTF-8",
        lambda f: (f / "tokenizer.json").write_bytes(b"\xff\xfe\x00"),
        ValueError,
        r"tokenizer.json is broken \(not UTF-8 text\)",
    ),
    (
        "tokenizer.json not JSON",
        lambda f: (f / "tokenizer.json").write_text("hello"),
        ValueError,
        r"tokenizer.json is broken \(not valid JSON",
    ),
    (
        "tokenizer_config.json not UTF-8",
        lambda f: (f / "tokenizer_config.json").write_bytes(b"\xff"),
        ValueError,
        r"tokenizer_config.json is broken \(not UTF-8",
    ),
    (
        "config.json not UTF-8",
        lambda f: (f / "config.json").write_bytes(b"\xff\xfe"),
        ValueError,
        r"config.json is broken \(not UTF-8",
    ),
    (
        "config.json a list",
        lambda f: (f / "config.json").write_text("[]"),
        ValueError,
        "config.json is broken .*not an object",
    ),
    (
        "vocabulary of the weights",
        lambda f: _set_config(f, vocab_size=500),
        ValueError,
        "could not load model .*config.json, \\*.safetensors",
    ),
    (
        "vocabulary of the tokenizer",
        lambda f: zoo.save_model("gpt2", f, with_tokenizer=False, vocab_size=100),
        ValueError,
        "has token ids up to 299, but .*config.json gives vocab_size 100",
    ),
    (
        "weights only",
        lambda f: [(f / name).unlink() for name in ("tokenizer.json", "tokenizer_config.json")],
        models.ModelNotFoundError,
        "has no tokenizer files",
    ),
    (
        "no weights",
        lambda f: (f / "model.safetensors").unlink(),
        models.ModelNotFoundError,
        r"has no \*.safetensors weights",
    ),
    ("no config", lambda f: (f / "config.json").unlink(), models.ModelNotFoundError, "has no config.json"),
]


@pytest.mark.parametrize("edit, error, named", [case[1:] for case in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_broken_model_folder_names_the_file(model_folder, tmp_path, edit, error, named):
    folder = shutil.copytree(model_folder, tmp_path / "model")
    for extra in folder.glob("special_tokens_map.json"):
        extra.unlink()
    edit(folder)
    with pytest.raises(error, match=named) as raised, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models.load(folder)
    assert str(folder) in str(raised.value)


# ----------------------------------------------------------------------------- interrupts and locks


def test_tempering_is_extended_from_a_finished_checkpoint_bit_identically(lm, tmp_path):
    path = tmp_path / "run.npz"
    tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=path)
    longer = {**TPS_ARGUMENTS, "n_steps": 7}
    extended = tps.run_tempering(lm, **longer, checkpoint=path)
    fresh = tps.run_tempering(lm, **longer)
    for group in ("posterior", "sample_stats"):
        for name, values in fresh[group].items():
            np.testing.assert_array_equal(extended[group][name], values)
    with pytest.raises(ValueError, match="n_steps=7 there, 3 now"):
        tps.run_tempering(lm, **TPS_ARGUMENTS, checkpoint=path)


def test_waiting_for_a_lock_says_so_and_times_out(tmp_path, capsys):
    with workflow.exclusive(tmp_path / "run"):
        with pytest.raises(TimeoutError, match=re.escape(str(tmp_path / "run.lock"))):
            with workflow.exclusive(tmp_path / "run", timeout_s=0.3):
                pass
    assert "waiting for" in capsys.readouterr().err
    with workflow.exclusive(tmp_path / "run", timeout_s=0.3):
        pass


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_bad_lock_timeout_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("RARELIB_LOCK_TIMEOUT_S", value)
    with pytest.raises(ValueError, match="RARELIB_LOCK_TIMEOUT_S must be a number of seconds > 0"):
        workflow.lock_timeout()


def test_cached_runs_checkpoint_often():
    assert workflow.checkpoint_every(200) == 10 and workflow.checkpoint_every(40000) == 800
