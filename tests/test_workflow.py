"""rarelib.workflow: cached runs equal uncached ones, and the key follows the model and the arguments."""
import numpy as np

from rarelib import direct, models, tps, workflow

PROMPT = "ab a"


def test_cached_runs_equal_direct_calls_and_are_reused(tmp_path):
    lm = models.random_model("gpt2", alphabet="ab .", context_length=16, seed=3)
    arguments = dict(prompt=PROMPT, completion_length=4, observable="repeats", biases=[0.0, -1.0], steps_per_bias=5,
                     n_chains=3, seed=2)
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
    assert workflow.model_fingerprint(first) == workflow.model_fingerprint(first)
    assert workflow.run_key(first, seed=0) != workflow.run_key(second, seed=0)
    assert workflow.run_key(first, seed=0) != workflow.run_key(first, seed=1)
