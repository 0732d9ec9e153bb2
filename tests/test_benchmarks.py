"""Tests of the benchmarks: the shared helpers of benchmarks/common.py, and one tiny (--smoke) run of each script.

The smoke runs check that every script runs end to end and writes the JSON the Performance
chapter reads (machine description, settings, results with the fields it renders); the
numbers of a smoke run mean nothing. The helpers are checked against values worked out by hand.
"""

import json
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from rarelib import params

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = (
    "sampling",
    "scaling",
    "reweighting",
    "exact_validation",
    "tail_reach",
    "seed_sweep",
    "estimators",
    "coverage",
    "estimate_agreement",
)
MACHINE_FIELDS = {
    "cpu",
    "cpu_count",
    "memory_gib",
    "torch_threads",
    "load_average_at_start",
    "load_average_at_end",
    "torch",
    "transformers",
}


@pytest.fixture(autouse=True)
def benchmarks_importable(monkeypatch):
    """The scripts import ``common`` (and each other) from their folder, as when run as scripts."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.fixture
def common():
    import common

    return common


def run_smoke(script: str, output: Path, monkeypatch, *options: str) -> dict:
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--smoke", "--output", str(output), *options])
    runpy.run_path(str(BENCHMARKS / f"{script}.py"), run_name="__main__")
    return json.loads(output.read_text())


# ----------------------------------------------------------------------------- helpers


def test_table_aligns_columns_and_marks_missing_values(common):
    table = common.format_table([("method", "s"), ("rate", ".1f")], [("direct", 12.34), ("TPS", None)])
    lines = table.splitlines()
    assert lines == ["method  rate", "direct  12.3", "TPS        —"]


def test_draws_for_budget_spends_the_budget(monkeypatch):
    import tail_reach

    chains, biases, length = 8, 5, 64
    draws = tail_reach.draws_for_budget(1e6, chains, biases, length)
    spent = chains * biases * (length + draws * (length + 1) / 2)
    assert spent <= 1e6 < spent + chains * biases * (length + 1) / 2
    with pytest.raises(ValueError, match="budget"):
        tail_reach.draws_for_budget(1e3, chains, biases, length)


def test_agreement_thresholds_step_through_the_direct_sample_and_beyond():
    import estimate_agreement

    phi = np.arange(1000.0)  # 10 events or more beyond the quantiles at 10^-1 and 10^-2, not at 10^-3
    upper = estimate_agreement.thresholds_from(phi, "upper", beyond=2)
    np.testing.assert_allclose(upper, [899.1, 989.01, 1078.92, 1168.83])
    lower = estimate_agreement.thresholds_from(phi, "lower", beyond=1)
    np.testing.assert_allclose(lower, [9.99 - 89.91, 9.99, 99.9])
    np.testing.assert_allclose(
        estimate_agreement.thresholds_from(phi, "upper", beyond=2, cap=1000.0), upper[:2].tolist() + [1000.0]
    )
    np.testing.assert_array_equal(estimate_agreement.events(phi, upper[:2], "upper"), [100, 10])
    first, second = np.log([[0.1, 0.2, 0.1], [0.3, 0.4, 0.2]]), np.log([[0.3, 0.5, 0.25], [0.6, 0.6, 0.3]])
    np.testing.assert_array_equal(estimate_agreement.overlap(first, second), [True, False, False])


def test_rung_scores_are_errors_in_standard_errors_of_the_exact_tilted_law():
    from types import SimpleNamespace

    from rarelib.exact import solvable

    coverage = SimpleNamespace(**runpy.run_path(str(BENCHMARKS / "coverage.py")))  # not the coverage package
    spec = coverage.draw_models(1, 0, tiny=True)[0]
    configuration = coverage.configure(spec, "repeats", [2.0], reference_samples=0)
    ladder, ess = np.array([0.0, -0.5, -1.0]), np.array([100.0, 400.0, 25.0])
    observable = coverage.exact_observable(spec, "repeats")
    exact = solvable.tilted_mean(configuration.model, observable, spec.prompt, spec.length, ladder)
    step = 1e-6  # the tilted variance is −dm/dλ: checked here with a finer difference than the benchmark's
    variance = (
        solvable.tilted_mean(configuration.model, observable, spec.prompt, spec.length, ladder - step)
        - solvable.tilted_mean(configuration.model, observable, spec.prompt, spec.length, ladder + step)
    ) / (2 * step)
    np.testing.assert_allclose(coverage.rung_mean_scores(configuration, ladder, exact, ess), 0.0, atol=1e-12)
    shifted = exact + np.array([1.0, -2.0, 3.0]) * np.sqrt(variance / ess)
    np.testing.assert_allclose(
        coverage.rung_mean_scores(configuration, ladder, shifted, ess), [1.0, -2.0, 3.0], rtol=1e-5
    )
    summary = coverage.rung_score_summary(
        [
            {"rung_mean_scores": [1.0, -2.0, 3.0], "rung_passes": [True, False, True]},
            {"rung_mean_scores": [], "rung_passes": []},
        ]
    )
    assert summary == {"passing": {"n": 2, "mean_square": 5.0}, "failing": {"n": 1, "mean_square": 4.0}}


# ----------------------------------------------------------------------------- smoke runs


def test_coverage_of_the_one_call_estimate_writes_results(tmp_path, monkeypatch):
    report = run_smoke("coverage", tmp_path / "coverage_estimate.json", monkeypatch, "--ladder", "estimate")
    results = report["results"]
    check_coverage_results(results)
    assert all(run["ladder_rule"] == "estimate" and run["ladder"][0] == 0.0 for run in results["runs"])
    for family, entry in results["summary"].items():  # one finite score per rung of the ladder each call placed
        scores = [(run["rung_mean_scores"], run["ladder"]) for run in results["runs"] if run["family"] == family]
        assert all(len(s) == len(ladder) and all(map(math.isfinite, s)) for s, ladder in scores)
        flat = np.concatenate([s for s, _ in scores])
        passes = np.concatenate([run["rung_passes"] for run in results["runs"] if run["family"] == family])
        groups = entry["rung_mean_scores"]
        assert groups["passing"]["n"] == passes.sum() and groups["failing"]["n"] == (~passes).sum()
        for group, chosen in (("passing", passes), ("failing", ~passes)):
            expected = np.mean(flat[chosen] ** 2) if chosen.any() else None
            assert groups[group]["mean_square"] == (expected if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("script", SCRIPTS)
def test_smoke_run_writes_results(script, tmp_path, monkeypatch):
    report = run_smoke(script, tmp_path / f"{script}.json", monkeypatch)
    assert report["benchmark"] == script and report["settings"]["smoke"] is True
    assert MACHINE_FIELDS <= set(report["machine"]) and report["machine"]["torch_threads"] == 1
    assert report["run_seconds"]["cpu"] > 0
    results = report["results"]
    if script == "sampling":
        assert set(results["models"]) == {"default", "tinystories-8m-shaped"}
        shaped = results["models"]["tinystories-8m-shaped"]["settings"]
        assert (shaped["vocab_size"], shaped["parameters"]) == (50257, 19702528)
        for model in results["models"].values():
            assert all(mib > 0 for mib in model["memory"]["cache_mib_per_chain"].values())
        for rates in (rates for model in results["models"].values() for rates in model["throughput"].values()):
            assert set(rates) == {
                "generate (HF)",
                "direct",
                "TPS proposals",
                "TPS, sentence-end guide",
                "TPS, temperature guide",
                "scoring (ceiling)",
            }
            assert rates["generate (HF)"]["ratio_to_generate_cpu"] == 1.0
            assert all(
                entry["tokens_per_cpu_s"]["median"] > 0 and entry["useful_fraction"] > 0 for entry in rates.values()
            )
    elif script == "scaling":
        assert {row["sweep"] for row in results["rows"]} == {"length", "chains"}
        assert [row["workers"] for row in results["dask"]["rows"]] == [0, 1, 2]
        assert results["dask"]["rows"][0]["speedup"] == 1.0 and results["dask"]["plan"]["tasks"] == 2
        assert all(row["wall_s"]["median"] > 0 for row in results["dask"]["rows"]) and results["dask"]["note"]
    elif script == "reweighting":
        assert all(row["solve_cpu_s"] > 0 and row["peak_mib"] > 0 for row in results["rows"])
    elif script == "exact_validation":
        assert all("reach" in sampler["mbar_reach"] for sampler in results["samplers"])
    elif script == "seed_sweep":
        (outcome,) = results["outcomes"]
        assert outcome["chapter"] == "02_direct_sampling" and outcome["seed"] == 1 and outcome["passed"]
        assert outcome["error"] is None and outcome["wall_seconds"] > 0 and len(outcome["code"]) == 16
    elif script == "estimators":
        assert {cell["method"] for cell in results["cells"]} == {"direct", "Gumbel", "guided IS", "SMC", "TPS + MBAR"}
        assert all(len(cell["code"]) == 16 and cell["seconds"]["cpu"] >= 0 for cell in results["cells"])
        assert {row["method"] for row in results["summary"]} == {cell["method"] for cell in results["cells"]}
        assert results["not_run"]["embedded model"]
    elif script == "coverage":
        check_coverage_results(results)
    elif script == "estimate_agreement":
        assert set(results) == {"ari", "logprob"}
        for result in results.values():
            rows = result["rows"]
            assert result["direct_samples"] == 100 and [r["threshold"] for r in rows] == sorted(
                r["threshold"] for r in rows
            )
            assert result["summary"]["checked"] == sum(r["checked"] for r in rows) >= 1
            assert all(r["direct_events"] >= 10 for r in rows if r["checked"])
    else:
        methods = results["solvable"]["methods"]
        assert any(entry["reach"] is not None for entry in methods.values())
        assert {"guided annealed_tps + MBAR", "guided parallel_tempering + MBAR"} <= set(methods)
        for tail in results["default"]["tails"]:
            assert set(tail["methods"]) == {
                "direct",
                "annealed_tps + MBAR",
                "parallel_tempering + MBAR",
                "guided parallel_tempering + MBAR",
            }
            assert tail["methods"]["direct"]["reach"] is not None


def test_chapter_fingerprint_follows_a_chapter_into_the_library_modules_it_runs():
    files = {
        path.relative_to(params.LIBRARY_DIR).as_posix() for path in params.chapter_library_files("02_direct_sampling")
    }
    assert {"direct.py", "diagnostics.py", "models.py", "generation.py"} <= files  # imported, and imported by those
    assert "smc.py" not in files and "companions/equilearning.py" not in files  # not run by chapter 2
    files = {
        path.relative_to(params.LIBRARY_DIR).as_posix() for path in params.chapter_library_files("09_markov_chains")
    }
    assert {"exact/__init__.py", "exact/solvable.py", "exact/chains.py", "companions/in_context.py"} <= files


def check_coverage_results(results: dict) -> None:
    """Every family ran; exact tails are finite and below 1; every flag agrees with the numbers it summarises."""
    assert results["complete"] and results["runs_done"] == results["runs_planned"] == 3
    assert set(results["summary"]) == {"repeats", "logprob", "class"}
    assert results["throughput"]["tokens_per_cpu_second"] > 0
    silent = {family: 0 for family in results["summary"]}
    for run in results["runs"]:
        # the budget holds up to the last round's random path lengths (it is sized from the tokens per step so far)
        assert 0 < run["tokens"] <= 1.05 * run["budget"] and isinstance(run["converged"], bool) and run["depths"]
        for depth in run["depths"]:
            exact, (low, high) = depth["log10_exact"], depth["log10_interval"]
            assert exact is not None and -30 < exact < 0
            low = -math.inf if low is None else low
            assert depth["covered"] == (low <= exact <= high)
            honest = depth["log10_honest_interval"]
            assert honest == ([depth["log10_interval"][0], high] if depth["resolved"] else [None, 0.0])
            silent[run["family"]] += depth["resolved"] and not depth["covered"] and depth["decided"]
    for family, entry in results["summary"].items():
        assert sum(row["misses_silent"] for row in entry["depths"].values()) == silent[family]
        for row in entry["depths"].values():
            decided = row["runs"] - row["undecided"]
            assert row["coverage_raw"]["n"] == decided
            assert row["misses_flagged"] + row["misses_silent"] == decided - row["coverage_raw"]["k"]
