"""rarelib.workflow: cached runs equal uncached ones, and the key follows the model and the arguments."""

import numpy as np

from rarelib import direct, models, tps, workflow

PROMPT = "ab a"


def test_cached_runs_equal_direct_calls_and_are_reused(tmp_path):
    lm = models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)
    arguments = dict(
        prompt=PROMPT,
        completion_length=4,
        observable="repeats",
        biases=[0.0, -1.0],
        steps_per_bias=5,
        n_chains=3,
        seed=2,
    )
    cached = workflow.annealed(lm, cache_dir=tmp_path, **arguments)
    again = workflow.annealed(lm, cache_dir=tmp_path, **arguments)
    plain = tps.run_annealed(lm, progress=False, **arguments)
    np.testing.assert_array_equal(cached.posterior["phi"], plain.posterior["phi"])
    np.testing.assert_array_equal(again.posterior["phi"], plain.posterior["phi"])
    assert len(list(tmp_path.glob("annealed-*.npz"))) == 1

    samples = workflow.direct_samples(lm, PROMPT, 4, n=20, seed=1, cache_dir=tmp_path, batch_size=8)
    reference = direct.sample(lm, PROMPT, 20, 4, seed=1, batch_size=8, progress=False)
    np.testing.assert_array_equal(samples.observables["repeats"], reference.observables["repeats"])


def test_key_changes_with_model_and_arguments():
    first = models.random_model("gpt2", seed=1)
    second = models.random_model("gpt2", seed=2)
    assert models.fingerprint(first) == models.fingerprint(first)
    assert workflow.run_key(first, seed=0) != workflow.run_key(second, seed=0)
    assert workflow.run_key(first, seed=0) != workflow.run_key(first, seed=1)


def test_concurrent_requests_compute_a_run_once(tmp_path):
    """Two processes asking for one run: the second waits for the lock, then reads the finished checkpoint."""
    import subprocess
    import sys

    script = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from rarelib import models, workflow, tps\n"
        "calls = []\n"
        "original = tps.ShootingKernel.step\n"
        "tps.ShootingKernel.step = lambda *a, **k: (calls.append(1), original(*a, **k))[1]\n"
        "lm = models.random_model('gpt2', alphabet='ab .', context_length=16, seed=3)\n"
        f"workflow.annealed(lm, 'ab a', 4, 'repeats', [0.0, -1.0], 40, 3, 2, cache_dir={str(tmp_path)!r})\n"
        "print(len(calls))\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    steps = sorted(int(p.communicate()[0].split()[-1]) for p in processes)
    assert steps == [0, 80]


def test_cached_estimate_equals_an_explicit_checkpoint_and_is_reused(tmp_path):
    """The cached estimate is rarelib.estimate's; the budget is not part of its name, so a larger one continues it."""
    import pytest

    from rarelib import estimation

    lm = models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)
    options = dict(
        thresholds=[2.0],
        completion_length=4,
        n_chains=2,
        pilot_samples=32,
        ladder_steps=4,
        first_steps=8,
        seed=1,
        budget_tokens=900,
    )
    cached = workflow.cached_estimate(lm, PROMPT, "repeats", cache_dir=tmp_path / "cache", **options)
    plain = estimation.estimate(lm, PROMPT, "repeats", checkpoint=tmp_path / "plain", progress=False, **options)
    np.testing.assert_array_equal(cached.tail.log, plain.tail.log)
    np.testing.assert_array_equal(cached.ladder, plain.ladder)
    assert cached.history == plain.history
    larger = workflow.cached_estimate(
        lm, PROMPT, "repeats", cache_dir=tmp_path / "cache", **{**options, "budget_tokens": 1800}
    )
    assert len(list((tmp_path / "cache").glob("estimate-repeats-*.lock"))) == 1  # one folder for both budgets
    done = [(h["round"], h["n_steps"], h["tokens"]) for h in cached.history]
    assert [(h["round"], h["n_steps"], h["tokens"]) for h in larger.history][: len(done)] == done
    assert larger.tokens > cached.tokens
    other = workflow.cached_estimate(lm, PROMPT, "repeats", cache_dir=tmp_path / "cache", **{**options, "seed": 2})
    assert len(list((tmp_path / "cache").glob("estimate-repeats-*.lock"))) == 2
    assert other.question["seed"] == 2
    with pytest.raises(ValueError, match="checkpoint"):
        workflow.cached_estimate(lm, PROMPT, "repeats", cache_dir=tmp_path, checkpoint=tmp_path / "x", **options)
