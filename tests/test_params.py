"""rarelib.params: a wrong notebook parameter stops with a message naming it."""
import math

import pytest

from rarelib import params

GOOD = dict(profile="quick", prompt="Once upon a time", completion_length=100, n_chains=10, steps_per_bias=200,
            biases=[-0.1, -0.2], observable="ari", seed=0, burn_in=0.1, temperature=1.0)


def test_good_parameters_pass():
    params.check(GOOD)


@pytest.mark.parametrize("name, value, message", [
    ("profile", "fast", "profile must be one of"),
    ("prompt", "", "prompt must be a non-empty string"),
    ("completion_length", 0, "completion_length must be a positive integer"),
    ("completion_length", 2.5, "completion_length must be a positive integer"),
    ("n_chains", True, "n_chains must be a positive integer"),
    ("biases", [], "biases must be a non-empty list"),
    ("biases", [0.1, math.nan], r"biases\[1\] must be a finite number"),
    ("observable", "readability", "unknown observable|observable"),
    ("seed", -1, "seed must be a non-negative integer"),
    ("burn_in", 1.0, r"burn_in must lie in \[0, 1\)"),
    ("temperature", 0.0, "temperature must be a finite number > 0"),
])
def test_bad_parameter_is_named(name, value, message):
    with pytest.raises(ValueError, match=message):
        params.check({**GOOD, name: value})


def test_profile_file_lookup():
    assert params.profile_file("no_such_notebook", "paper") is None
    with pytest.raises(ValueError, match="profile"):
        params.profile_file("00_embedded_model", "huge")
