"""rarelib.params: a wrong notebook parameter stops with a message naming it."""

import math

import pytest

from rarelib import params

GOOD = dict(
    profile="quick",
    prompt="Once upon a time",
    completion_length=100,
    n_chains=10,
    steps_per_bias=200,
    biases=[-0.1, -0.2],
    observable="ari",
    seed=0,
    burn_in=0.1,
    temperature=1.0,
)


def test_good_parameters_pass():
    params.check(GOOD)


@pytest.mark.parametrize(
    "name, value, message",
    [
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
    ],
)
def test_bad_parameter_is_named(name, value, message):
    with pytest.raises(ValueError, match=message):
        params.check({**GOOD, name: value})


def test_profile_file_lookup():
    assert params.profile_file("no_such_notebook", "paper") is None
    with pytest.raises(ValueError, match="profile"):
        params.profile_file("00_embedded_model", "huge")


def test_every_paper_profile_sets_only_parameters_of_its_notebook():
    import ast
    import json

    import yaml

    from rarelib.models import REPO_ROOT

    for profile in sorted((REPO_ROOT / "profiles" / "paper").glob("*.yaml")):
        notebook = REPO_ROOT / "notebooks" / f"{profile.stem}.ipynb"
        assert notebook.is_file(), f"{profile.name} has no notebook {notebook.name}"
        cells = json.loads(notebook.read_text())["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{notebook.name} needs exactly one cell tagged 'parameters'"
        assigned = {
            target.id
            for node in ast.parse("".join(tagged[0]["source"])).body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        unknown = set(yaml.safe_load(profile.read_text()) or {}) - assigned
        assert not unknown, f"{profile.name} sets {sorted(unknown)}, which {notebook.name} does not define"
