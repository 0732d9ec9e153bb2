"""The Dask runner on a real LocalCluster (2 single-threaded worker processes): the same answer in-process and on
the cluster, a killed worker's task resumed from its checkpoint, bad input refused before anything runs, run
folders guarded by their manifest, cluster specs and the SLURM job script."""

import dataclasses
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from rarelib import distributed, models, reweighting, storage

PLAN = dict(
    prompt="ab a",
    completion_length=5,
    observable="repeats",
    biases=(0.0, -0.5, -1.0),
    n_steps=20,
    n_chains=2,
    n_sets=2,
    n_direct=120,
    direct_per_task=60,
    seed=5,
    record=("logprob", "repeats"),
    checkpoint_every=5,
    batch_size=30,
)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny random GPT-2 over 'ab .', saved where every worker can load it by path."""
    folder = tmp_path_factory.mktemp("model")
    lm = models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)
    lm.model.save_pretrained(folder, safe_serialization=True)
    lm.tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def client():
    """make_client("local:2"): a LocalCluster of 2 single-threaded worker processes, closed with the client."""
    with distributed.make_client("local:2") as dask_client:
        yield dask_client


def plan(model_folder, **changes) -> distributed.Plan:
    return distributed.Plan(**{"model": model_folder, **PLAN, **changes})


def assert_same_runs(first: list, second: list) -> None:
    """Every array of every run equal, bit for bit."""
    assert len(first) == len(second)
    for one, other in zip(first, second):
        for group in ("posterior", "sample_stats"):
            if group in one.groups():
                for name, values in one[group].data_vars.items():
                    np.testing.assert_array_equal(values.values, other[group][name].values, err_msg=f"{group}.{name}")


def tail(runs: list) -> np.ndarray:
    """log P(φ ≥ a) for a = 0..3 from one MBAR analysis with a fixed bootstrap generator."""
    settings = reweighting.Settings(n_bootstrap=4)
    analysis = reweighting.analyze(
        runs, rng=np.random.default_rng(0), thresholds=[0, 1, 2, 3], settings=settings, warn=False
    )
    return np.concatenate([analysis.upper_tail.log, analysis.upper_tail.log_interval.ravel()])


# --------------------------------------------------------------------------- same answer anywhere


def test_cluster_gives_the_bit_identical_result_of_an_in_process_run(model_folder, client, tmp_path):
    here = distributed.run(plan(model_folder), tmp_path / "here")
    there = distributed.run(plan(model_folder), tmp_path / "there", client=client)
    assert [path.name for path in here] == [path.name for path in there]
    assert [p.name for p in here] == ["tempering_0000.nc", "tempering_0001.nc", "direct_0000", "direct_0001"]
    runs_here, runs_there = distributed.load_runs(tmp_path / "here"), distributed.load_runs(tmp_path / "there")
    assert_same_runs(runs_here, runs_there)
    assert runs_there[0].posterior["phi"].shape == (2, 20, 3) and runs_there[2].posterior["phi"].shape == (1, 60, 1)
    assert not np.array_equal(runs_there[0].posterior["phi"].values, runs_there[1].posterior["phi"].values)
    np.testing.assert_array_equal(tail(runs_here), tail(runs_there))
    pids = {json.loads(line)["pid"] for path in (tmp_path / "there").glob("*.attempts.jsonl") for line in open(path)}
    assert os.getpid() not in pids and len(pids) >= 1  # the tasks ran in the worker processes


def test_task_seeds_are_spawned_from_the_plan_seed():
    seeds = [distributed.task_seed(5, kind, index) for kind in ("tempering", "direct") for index in range(3)]
    assert len(set(seeds)) == 6 and all(0 <= seed < 2**63 for seed in seeds)
    assert seeds == [distributed.task_seed(5, kind, index) for kind in ("tempering", "direct") for index in range(3)]
    assert distributed.task_seed(6, "tempering", 0) not in seeds


# --------------------------------------------------------------------------- faults


def test_killed_worker_task_resumes_from_its_checkpoint_with_the_same_result(model_folder, client, tmp_path):
    long_run = plan(model_folder, n_sets=1, n_direct=0, n_steps=100, checkpoint_every=2)
    folder = tmp_path / "killed"
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(paths=distributed.run(long_run, folder, client=client)))
    thread.start()
    checkpoint, result = distributed.task_paths(folder, "tempering", 0)
    deadline = time.monotonic() + 60
    while not checkpoint.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = [address for address, keys in client.processing().items() if keys]
    assert checkpoint.is_file() and not result.is_file() and len(busy) == 1
    pid = client.run(os.getpid, workers=busy)[busy[0]]
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert outcome["paths"] == [result]
    attempts = [json.loads(line) for line in open(folder / "tempering_0000.attempts.jsonl")]
    assert len(attempts) == 2 and attempts[0]["pid"] == pid and attempts[1]["done_before"] >= 2
    client.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
    uninterrupted = distributed.run(long_run, tmp_path / "uninterrupted")
    assert_same_runs([storage.load(result)], [storage.load(uninterrupted[0])])


@pytest.mark.parametrize(
    "changes, error, message",
    [
        (dict(model="/nowhere/model"), FileNotFoundError, "no such folder"),
        (dict(observable="nonsense"), ValueError, "observable must be one of"),
        (dict(completion_length=40), ValueError, "completion_length"),
        (dict(biases=(0.0, float("nan"))), ValueError, "biases must be"),
        (dict(guide="sideways"), ValueError, "guide must be None or one of"),
    ],
)
def test_bad_input_fails_at_once_with_the_library_message(model_folder, client, tmp_path, changes, error, message):
    started = time.monotonic()
    with pytest.raises(error, match=message):
        distributed.run(plan(model_folder, **changes), tmp_path / "bad", client=client)
    assert time.monotonic() - started < 10 and not (tmp_path / "bad").exists()  # nothing written, nothing submitted


def test_a_plan_refuses_what_it_can_check_without_a_model(model_folder):
    with pytest.raises(ValueError, match="prompt must be non-empty text"):
        plan(model_folder, prompt="")
    with pytest.raises(ValueError, match="a plan needs work"):
        plan(model_folder, n_sets=0, n_direct=0)
    with pytest.raises(ValueError, match="direct_per_task must be a positive integer; got 0"):
        plan(model_folder, direct_per_task=0)
    with pytest.raises(ValueError, match=r"start must be one of \('overdispersed', 'model'\)"):
        plan(model_folder, start="sideways")


def test_a_failing_task_fails_the_run_with_its_message_without_retries(model_folder, client, tmp_path):
    work = plan(model_folder, n_direct=0)
    folder = tmp_path / "broken"
    distributed.open_folder(folder, distributed.manifest(work, distributed.check_plan(work)))
    storage.save_arrays(distributed.task_paths(folder, "tempering", 1)[0], {"steps_done": 3, "config": "{}"})
    with pytest.raises(ValueError, match=r"tempering_0001.npz lacks the arrays \['generator_state'"):
        distributed.run(work, folder, client=client)
    assert len(open(folder / "tempering_0001.attempts.jsonl").readlines()) == 1  # tried once


# --------------------------------------------------------------------------- run folders


def test_a_folder_written_otherwise_is_refused(model_folder, tmp_path):
    folder = tmp_path / "run"
    direct_only = plan(model_folder, n_sets=0, n_direct=20, direct_per_task=10, batch_size=10)
    distributed.run(direct_only, folder)
    with pytest.raises(ValueError, match=rf"run folder {folder} was written with different arguments: seed=5 there, 6"):
        distributed.run(dataclasses.replace(direct_only, seed=6), folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "rarelib_version": "0.0.1"}))
    with pytest.raises(ValueError, match="rarelib_version='0.0.1' there, '0.1.0' now"):
        distributed.run(direct_only, folder)
    with pytest.raises(ValueError, match="written by rarelib '0.0.1'"):
        distributed.load_runs(folder)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files but no manifest.json"):
        distributed.run(direct_only, tmp_path / "other")
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        distributed.load_runs(tmp_path / "other")


def test_an_unfinished_folder_is_not_loaded_and_resumes(model_folder, tmp_path):
    folder = tmp_path / "run"
    work = plan(model_folder, n_sets=0, n_direct=20, direct_per_task=10, batch_size=5)
    distributed.run(work, folder)
    whole = distributed.load_runs(folder)
    (folder / "direct_0001" / "batch_000001.npz").unlink()
    with pytest.raises(ValueError, match="holds 1 of 2 batches"):
        distributed.load_runs(folder)
    distributed.run(work, folder)
    assert_same_runs(distributed.load_runs(folder), whole)


# --------------------------------------------------------------------------- clusters


def test_cluster_specs_are_parsed_and_bad_ones_name_the_forms(client):
    assert distributed.parse_spec("local:3") == ("local", 3)
    assert distributed.parse_spec("slurm") == ("slurm", None)
    assert distributed.parse_spec("tcp://10.0.0.5:8786") == ("scheduler", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:", "local:two", "slurm:4", "tcp://host", "10.0.0.5:8786", "", None):
        with pytest.raises(ValueError, match=r"cluster must be one of \('local:N', 'slurm', 'tcp://host:port'\)"):
            distributed.parse_spec(bad)
    with pytest.raises(ValueError, match=r"options \['queue'\] do not apply to cluster 'local:2'"):
        distributed.make_client("local:2", queue="debug", jobs=None)
    with distributed.make_client(client.scheduler.address) as second:
        assert len(second.scheduler_info()["workers"]) == 2
        assert set(second.run(torch.get_num_threads).values()) == {1}


def test_slurm_job_script_carries_the_options():
    with distributed.slurm_cluster(cores=4, memory="8GiB", walltime="02:00:00", queue="short", account="proj42") as c:
        script = c.job_script()
    for line in ("#SBATCH -p short", "#SBATCH -A proj42", "#SBATCH --cpus-per-task=4", "#SBATCH -t 02:00:00"):
        assert line in script
    assert "--nworkers 4" in script and "--nthreads 1" in script and "export OMP_NUM_THREADS=1" in script
