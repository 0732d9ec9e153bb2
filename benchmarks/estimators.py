"""Estimators side by side at equal token budgets, against exact tails: direct, Gumbel, guided IS, SMC, TPS + MBAR.

Problems: solvable Markov LMs (:mod:`rarelib.exact.solvable`), where P(φ ≥ a) is known at every integer
threshold, with φ = a token-class count or Repeats (Log-Prob has no exact integer law, so no exact
tails; it is left out). Every method gets the same budget of *sampled* tokens
(:func:`rarelib.exact.diagnostics.generated_tokens`'s count) and the same bias ladder
(:func:`rarelib.exact.validation.bias_ladder` from the exact tilted means, up to ⟨φ⟩ = 0.75 L — an oracle
design, the same for every method, so that the comparison is about the estimators):

* **direct** — B/L i.i.d. completions; counts/n with 96% Wilson intervals.
* **Gumbel** — the same direct samples, the Gumbel law fitted to the top max(10, n/100) order
  statistics (:mod:`rarelib.gumbel_tail`, Jones et al. 2025), 96% bootstrap interval of the fit.
* **guided IS** — B/(L(K+1)) completions from the guide at each strength s ∈ {0, λ_1..λ_K},
  combined by the balance heuristic (:mod:`rarelib.importance`), delta-method 96% intervals. The
  guide matches φ: the class guide for a class count, the local-tilt guide ``"repeats"`` for
  Repeats — except on ``random2-repeats``, which runs without a matching guide to show that regime
  (IS then uses the temperature guide, which Repeats do not follow; SMC proposes from p_M; TPS
  shoots forward from p_M).
* **SMC** — one run of 16 islands at each λ_k (B/K tokens each; :mod:`rarelib.smc`), particles
  from the same guide (p_M where the guide is the temperature one), resampling at ESS < N/2; each
  threshold a is read from the run whose weighted ⟨φ⟩ lies closest to a; Student-t 96% intervals.
* **TPS + MBAR** — parallel tempering over the ladder (8 chains per bias, guided moves where there
  is a matching guide, else forward shooting), 10% of the budget as λ = 0 direct samples, MBAR with
  the project's settings and its 96% chain bootstrap (:func:`rarelib.exact.validation.compare_mbar`).

Metrics per (method, problem, budget, seed) cell, at every threshold: log10 estimate, interval,
exact, covered; summarised over seeds: median |log10(estimate/exact)| where the method has data,
coverage of the 96% intervals (over seeds and thresholds with data), the deepest exact tail whose
interval covers it ("deepest covered"), the deepest one that is also *reached* — covered, with a
96% half-width ≤ 50% of the estimate (:func:`rarelib.logspace.reached`), so that a method cannot score depth
with an uninformative interval ("reach"); both medians over seeds, 0 where there is none — and CPU
seconds (this process, one torch thread).

Resumable: every finished cell is written to the JSON at once, with a fingerprint of the code it
ran; a cell is re-run only when it is missing or its code changed. ``--quick``: budget 1e5,
3 seeds (minutes); default: budgets 1e6 and 1e7, 10 seeds (hours). The embedded story model has no
exact answer; its comparison against a ≥ 1e7-token direct sample is not implemented here yet and is
listed under ``not_run`` in the JSON.

    python benchmarks/estimators.py --quick
    python benchmarks/estimators.py --budgets 1e6 --seeds 0 1 2 --problems loop-count
    python benchmarks/estimators.py --smoke
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
from pathlib import Path

import common  # noqa: I001  (first: it starts the run's wall clock)
import numpy as np

from rarelib import diagnostics, gumbel_tail, importance, logspace, reweighting, smc
from rarelib.exact import solvable, validation

RESULTS = common.RESULTS_DIR / "estimators.json"
METHODS = ("direct", "Gumbel", "guided IS", "SMC", "TPS + MBAR")
LIBRARY_MODULES = (
    "rarelib.importance",
    "rarelib.smc",
    "rarelib.gumbel_tail",
    "rarelib.direct",
    "rarelib.generation",
    "rarelib.guides",
    "rarelib.tps",
    "rarelib.reweighting",
    "rarelib.exact.validation",
    "rarelib.exact.solvable",
    "rarelib.diagnostics",
    "rarelib.logspace",
)
LOG10 = math.log(10.0)
N_ISLANDS = 16
TPS_CHAINS = 8
ZERO_FRACTION = 0.1
MAX_KEPT_DRAWS = 400  # TPS draws per chain kept for MBAR (thinned; the budget counts every step)
SMOKE = {"budgets": [2e4], "seeds": [0], "problems": ["loop-count"], "n_bootstrap": 5}
QUICK = {"budgets": [1e5], "seeds": [0, 1, 2]}


# --------------------------------------------------------------------------- problems


def problem_specs() -> dict[str, dict]:
    """Name → how to build a solvable problem: model, prompt, L, observable, and the guide that matches it (class
    token ids, ``"repeats"`` for the local-tilt guide) or None where the comparison runs without one."""
    return {
        "loop-count": dict(
            model=("loop", 5, 0.1, 0.005, 1), prompt="bca", length=14, kind="token_count", tokens=[0], guide=[0]
        ),
        "loop-repeats": dict(
            model=("loop", 5, 0.1, 0.005, 2), prompt="bca", length=12, kind="repeats", guide="repeats"
        ),
        "random1-count": dict(
            model=("random", 6, 1, 0.5, 5), prompt=[0], length=16, kind="token_count", tokens=[0], guide=[0]
        ),
        "random1-repeats": dict(model=("random", 5, 1, 0.5, 7), prompt=[0], length=16, kind="repeats", guide="repeats"),
        "random2-repeats": dict(model=("random", 4, 2, 1.0, 3), prompt=[0, 1], length=14, kind="repeats", guide=None),
    }


def build_problem(spec: dict) -> validation.Problem:
    family, *numbers = spec["model"]
    if family == "loop":
        vocab, stay, entry, seed = numbers
        model = validation.repetition_loop_lm(
            vocab, stay, entry, np.random.default_rng(seed), name=f"loop-v{vocab}-s{seed}"
        )
    else:
        vocab, order, concentration, seed = numbers
        model = solvable.random_markov_lm(
            vocab, order, np.random.default_rng(seed), concentration, name=f"random-v{vocab}-o{order}-s{seed}"
        )
    observable = solvable.AdditiveObservable(spec["kind"], set(spec.get("tokens", ())))
    return validation.Problem(model, spec["prompt"], spec["length"], observable)


# --------------------------------------------------------------------------- the methods


def _comparison(problem, label: str, tokens: int, estimate: logspace.LogEstimate) -> validation.TailComparison:
    return validation.TailComparison(
        label, int(tokens), problem.thresholds, problem.exact.log_prob_at_least(problem.thresholds) / LOG10, estimate
    )


def run_direct(problem, budget, ladder, guide, seed, n_bootstrap):
    run = validation.sample_direct(problem, int(budget) // problem.completion_length, seed)
    return validation.compare_direct(problem, run), {}


def run_gumbel(problem, budget, ladder, guide, seed, n_bootstrap):
    run = validation.sample_direct(problem, int(budget) // problem.completion_length, seed)
    phi = np.asarray(run.posterior["phi"].values, dtype=np.float64).ravel()
    top = max(10, phi.size // 100)
    try:
        tail = gumbel_tail.tail_probabilities(
            phi, problem.thresholds, rng=np.random.default_rng(seed), top=top, n_bootstrap=n_bootstrap
        )
    except ValueError as error:  # the top order statistics all equal: no fit
        nan = np.full(problem.thresholds.size, np.nan)
        return _comparison(
            problem, "Gumbel", phi.size * problem.completion_length, logspace.LogEstimate(nan, np.stack([nan, nan]))
        ), {"failed": str(error)}
    comparison = _comparison(problem, "Gumbel", phi.size * problem.completion_length, tail.estimate)
    return comparison, {
        "top": top,
        "location": tail.fit.location,
        "scale": tail.fit.scale,
        "failed_resamples": tail.failed,
    }


def run_guided_is(problem, budget, ladder, guide, seed, n_bootstrap):
    strengths = np.concatenate([[0.0], ladder])
    if guide is None:  # the temperature guide needs every strength < 1
        strengths = np.minimum(strengths, 0.9)
        strengths = np.unique(strengths)
    per_strength = max(int(budget) // (problem.completion_length * strengths.size), 2)
    samples = importance.sample_guided(
        problem.model,
        list(problem.prompt),
        problem.completion_length,
        observable=problem.sampler_observable,
        guide=guide if guide is not None else "temperature",
        strengths=strengths,
        n_per_strength=per_strength,
        seed=seed,
        batch_size=4096,
        progress=False,
    )
    estimate = importance.tail_probabilities(samples, problem.thresholds, warn=False)
    return _comparison(problem, "guided IS", samples.tokens, estimate.estimate), {
        "strengths": strengths,
        "ess_total": estimate.ess_total,
        "ess": estimate.ess,
        "enough_ess": estimate.enough_ess,
        "guide": "class" if guide is not None else "temperature",
    }


def run_smc(problem, budget, ladder, guide, seed, n_bootstrap):
    observable = problem.observable
    per_run = int(budget) // len(ladder)
    particles = max(per_run // (problem.completion_length * N_ISLANDS), 2)
    seeds = np.random.SeedSequence(seed).generate_state(len(ladder))
    estimates, relative, intervals, means, tokens, resampling = [], [], [], [], 0, []
    for lam, run_seed in zip(ladder, seeds):
        result = smc.run_smc(
            problem.model,
            list(problem.prompt),
            problem.completion_length,
            lam=float(lam),
            observable=observable.kind,
            tokens=sorted(observable.tokens),
            guide=guide,
            guide_strength=float(lam) if guide is not None else 0.0,
            n_particles=particles,
            n_islands=N_ISLANDS,
            seed=int(run_seed),
            progress=False,
        )
        tail, relative_se = result.tail_probabilities(problem.thresholds)
        estimates.append(tail.log), relative.append(relative_se), intervals.append(tail.log_interval)
        means.append(float(np.sum(np.exp(result.log_weights) * result.phi) / N_ISLANDS))
        tokens += result.tokens
        resampling.append(result.n_resampling.mean())
    chosen = np.abs(np.array(means)[:, None] - problem.thresholds[None, :]).argmin(axis=0)  # (A,) run per threshold
    columns = np.arange(problem.thresholds.size)
    log_estimate = np.array(estimates)[chosen, columns]
    log_interval = np.array(intervals)[chosen, :, columns].T
    return _comparison(problem, "SMC", tokens, logspace.LogEstimate(log_estimate, log_interval)), {
        "particles": particles,
        "islands": N_ISLANDS,
        "weighted_means": means,
        "run_for_threshold": chosen,
        "mean_resampling_steps": resampling,
    }


def run_tps(problem, budget, ladder, guide, seed, n_bootstrap):
    length = problem.completion_length
    biased_budget = (1 - ZERO_FRACTION) * budget
    rows = TPS_CHAINS * len(ladder)
    n_steps = int((biased_budget / rows - length) / ((length + 1) / 2))
    if n_steps < 20:
        raise ValueError(f"budget {budget:g} leaves {n_steps} TPS steps per chain; raise the budget")
    biased_seed, zero_seed, bootstrap_seed = np.random.SeedSequence(seed).generate_state(3)
    move = {"guide": guide} if guide is not None else None
    biased = validation.sample_biased(
        problem,
        ladder,
        sampler="parallel_tempering",
        n_steps=n_steps,
        n_chains=TPS_CHAINS,
        seed=int(biased_seed),
        move=move,
    )
    at_zero = validation.sample_direct(problem, max(int(ZERO_FRACTION * budget) // length, 2), int(zero_seed))
    tokens = diagnostics.generated_tokens(biased) + diagnostics.generated_tokens(at_zero)
    thin = max(1, n_steps // MAX_KEPT_DRAWS)
    settings = reweighting.Settings(n_bootstrap=n_bootstrap)
    _, tails, analysis = validation.compare_mbar(
        problem,
        [validation.thin_draws(biased, thin), at_zero],
        tokens=tokens,
        rng=np.random.default_rng(bootstrap_seed),
        settings=settings,
        label="TPS + MBAR",
        warn=False,
    )
    return tails, {
        "n_steps": n_steps,
        "thin": thin,
        "move": "guided" if guide is not None else "forward shooting",
        "dropped_biases": [lam for _, lam, _ in analysis.dropped],
        "messages": list(analysis.messages),
    }


RUNNERS = {
    "direct": run_direct,
    "Gumbel": run_gumbel,
    "guided IS": run_guided_is,
    "SMC": run_smc,
    "TPS + MBAR": run_tps,
}


# --------------------------------------------------------------------------- bookkeeping


def code_fingerprint() -> str:
    """Hash of this script and of the library modules the methods run: a cell is stale once either changes."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for name in LIBRARY_MODULES:
        module = importlib.import_module(name)
        files = [Path(module.__file__)]
        if files[0].name == "__init__.py":
            files = sorted(files[0].parent.glob("*.py"))
        for file in files:
            digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()[:16]


def cell_key(method: str, problem: str, budget: float, seed: int) -> str:
    return f"{method}|{problem}|{budget:g}|{seed}"


def load_cells(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    return {cell["key"]: cell for cell in report.get("results", {}).get("cells", [])}


def run_cell(method: str, name: str, problem, ladder, guide, budget: float, seed: int, n_bootstrap: int) -> dict:
    method_seed = int(
        np.random.SeedSequence([seed, METHODS.index(method), sorted(problem_specs()).index(name)]).generate_state(1)[0]
    )
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        tails, extra = RUNNERS[method](problem, budget, ladder, guide, method_seed, n_bootstrap)
        error = None
    except ValueError as failure:
        tails, extra, error = None, {}, str(failure)
    seconds = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    cell = {
        "key": cell_key(method, name, budget, seed),
        "method": method,
        "problem": name,
        "budget": budget,
        "seed": seed,
        "seconds": seconds,
        "error": error,
        "extra": extra,
    }
    if tails is not None:
        covered_with_data = tails.covered & tails.has_data
        reached = logspace.reached(tails.estimate, common.MAX_RELATIVE_HALF_WIDTH) & tails.covered
        cell.update(
            {
                "tokens": tails.tokens,
                "thresholds": tails.thresholds,
                "log10_exact": tails.log10_exact,
                "log10_estimate": tails.log10_estimate,
                "log10_interval": tails.log10_interval,
                "has_data": tails.has_data,
                "covered": tails.covered,
                "deepest_covered_log10_exact": float(tails.log10_exact[covered_with_data].min())
                if covered_with_data.any()
                else None,
                "deepest_reached_log10_exact": float(tails.log10_exact[reached].min()) if reached.any() else None,
            }
        )
    return validation.json_ready(cell)


def summarise(cells: list[dict]) -> list[dict]:
    """One row per (problem, method, budget): errors, coverage, deepest covered tail, CPU seconds over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for cell in cells:
        groups.setdefault((cell["problem"], cell["method"], cell["budget"]), []).append(cell)
    rows = []
    for (problem, method, budget), members in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][2], METHODS.index(item[0][1]))
    ):
        ok = [cell for cell in members if cell["error"] is None]
        errors, covered, deepest, reach = [], [], [], []
        for cell in ok:
            data = np.array(cell["has_data"], dtype=bool)
            estimate = np.array([np.nan if v is None else v for v in cell["log10_estimate"]], dtype=np.float64)
            exact_tail = np.array(cell["log10_exact"], dtype=np.float64)
            errors += np.abs(estimate - exact_tail)[data].tolist()
            covered += np.array(cell["covered"], dtype=bool)[data].tolist()
            deepest.append(
                cell["deepest_covered_log10_exact"] if cell["deepest_covered_log10_exact"] is not None else 0.0
            )
            reach.append(
                cell["deepest_reached_log10_exact"] if cell["deepest_reached_log10_exact"] is not None else 0.0
            )
        rows.append(
            {
                "problem": problem,
                "method": method,
                "budget": budget,
                "seeds": len(members),
                "failed": len(members) - len(ok),
                "median_abs_log10_error": float(np.median(errors)) if errors else None,
                "max_abs_log10_error": float(np.max(errors)) if errors else None,
                "coverage": float(np.mean(covered)) if covered else None,
                "thresholds_with_data": len(covered),
                "deepest_covered_log10": float(np.median(deepest)) if deepest else None,
                "deepest_reached_log10": float(np.median(reach)) if reach else None,
                "cpu_seconds": float(np.median([cell["seconds"]["cpu"] for cell in members])),
            }
        )
    return rows


COLUMNS = [
    ("problem", "s"),
    ("method", "s"),
    ("budget", ".0e"),
    ("seeds", "d"),
    ("median |log10 err|", ".2f"),
    ("max |log10 err|", ".2f"),
    ("coverage", ".2f"),
    ("n", "d"),
    ("deepest covered", ".1f"),
    ("reach", ".1f"),
    ("CPU s", ".1f"),
]


def table(rows: list[dict]) -> str:
    return common.format_table(
        COLUMNS,
        [
            (
                row["problem"],
                row["method"],
                row["budget"],
                row["seeds"],
                row["median_abs_log10_error"],
                row["max_abs_log10_error"],
                row["coverage"],
                row["thresholds_with_data"],
                row["deepest_covered_log10"],
                row["deepest_reached_log10"],
                row["cpu_seconds"],
            )
            for row in rows
        ],
    )


# --------------------------------------------------------------------------- main


def arguments():
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--quick", action="store_true", help="budget 1e5, seeds 0-2 (minutes)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[1e6, 1e7], help="sampled tokens per method")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--problems", nargs="+", default=sorted(problem_specs()), choices=sorted(problem_specs()))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--n-bootstrap", type=int, default=100, help="bootstrap replicas (Gumbel, TPS + MBAR)")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    if args.smoke:
        vars(args).update(SMOKE)
    return args


def main() -> None:
    args = arguments()
    machine = common.start(args)
    fingerprint = code_fingerprint()
    cells = {} if args.smoke else load_cells(args.output)
    specs = problem_specs()
    planned = [
        (budget, name, seed, method)
        for budget in args.budgets
        for name in args.problems
        for seed in args.seeds
        for method in args.methods
    ]
    for budget, name, seed, method in planned:
        key = cell_key(method, name, budget, seed)
        if key in cells and cells[key].get("code") == fingerprint:
            continue
        problem = build_problem(specs[name])
        ladder = validation.bias_ladder(problem.exact_tilted_mean, 0.75 * problem.completion_length)
        cell = run_cell(method, name, problem, ladder, specs[name]["guide"], budget, seed, args.n_bootstrap)
        cells[key] = {**cell, "code": fingerprint, "ladder": validation.json_ready(ladder)}
        status = cell["error"] or (
            f"covered {sum(c and d for c, d in zip(cell['covered'], cell['has_data']))}/"
            f"{sum(cell['has_data'])} with data, deepest covered "
            f"10^{cell['deepest_covered_log10_exact']}, reach 10^{cell['deepest_reached_log10_exact']}"
        )
        print(f"{key}: {cell['seconds']['cpu']:.1f} CPU-s; {status}", flush=True)
        write(args, machine, fingerprint, cells, specs)
    rows = write(args, machine, fingerprint, cells, specs)
    print(table(rows))


def write(args, machine, fingerprint, cells, specs) -> list[dict]:
    current = [cell for cell in cells.values() if cell.get("code") == fingerprint]
    rows = summarise(current)
    run = {(cell["method"], cell["problem"], cell["budget"]) for cell in current}
    wanted = [(method, name, budget) for method in METHODS for name in specs for budget in (1e6, 1e7)]
    results = {
        "cells": list(cells.values()),
        "summary": rows,
        "code": fingerprint,
        "stale_cells": sorted(key for key, cell in cells.items() if cell.get("code") != fingerprint),
        "not_run": {
            "embedded model": "not implemented: needs a ≥ 1e7-token direct reference sample",
            "issue cells (method, problem, budget) without a current result": [
                list(item) for item in wanted if item not in run
            ],
        },
        "problems": {name: {key: value for key, value in spec.items()} for name, spec in specs.items()},
    }
    common.write_results(args.output, "estimators", vars(args), results, machine)
    return rows


if __name__ == "__main__":
    main()
