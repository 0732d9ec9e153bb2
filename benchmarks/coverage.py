"""Coverage of the library's tail intervals on a family of random Markov LMs, against exact answers (issue #16, item 4).

Does the 96% interval of :func:`rarelib.rounds.run_rounds` contain the exact tail, and when it does not, does
the convergence verdict say so?

**Models**, drawn, not picked (:func:`draw_models`, seeded): random Markov LMs
(:func:`rarelib.exact.solvable.random_markov_lm`) of order 1 and 2 and Dirichlet concentrations
0.3, 1 and 3 (one model per (order, concentration) pair in every six, so that six models cover
each pair), vocabulary drawn from 6..16, completion length L from 32..64, prompt tokens drawn.

**Observables**: Repeats (upper tail, local-tilt guide ``"repeats"``), Log-Prob (lower tail, temperature guide,
its scale lowered where the ladder's last bias reaches 0.9 so that every strength stays below 1) and a
token-class count (upper tail, class guide; the class is a random quarter of the vocabulary).

**Thresholds** at fixed exact depths P = 10^-3, 10^-8, 10^-13 (``--depths``; --full adds 10^-18): for
Repeats and the class count the integer threshold whose exact tail (:func:`rarelib.exact.solvable.exact_distribution`)
lies nearest in log10, kept only within one decade of the depth (a support too short leaves a depth out, and the
configuration says so); for Log-Prob, which is real-valued, the threshold where the saddle-point approximation
of the exact log Z puts the depth, and as the answer a reference tail by importance sampling from the exact
tilted law (:func:`rarelib.exact.validation.tilted_tail_reference`, ``--reference-samples`` draws, standard error
recorded; a coverage decision within four standard errors of an interval end is counted as undecided).

**Runs**: per configuration (model, observable) the ladder :func:`rarelib.exact.validation.bias_ladder` from the
*exact* tilted means to the deepest threshold (an oracle ladder: the benchmark is about sampling and the
verdict, not ladder design), then one :func:`rarelib.rounds.run_rounds` per seed — or, with ``--ladder estimate``,
one call of :func:`rarelib.estimate` per seed, which places its own ladder from a pilot and short runs (the
user's one call, its defaults except 8 chains per rung; the same guide, at scale 1; results in
``coverage_estimate.json``): parallel tempering with
8 chains per rung, over-dispersed starts, rounds until the verdict is complete or ``--budget`` tokens are
spent, 10% of the tokens direct samples at λ = 0. Seeds run round-robin over the configurations, so that a
partial measurement covers every configuration.

**Per run** (one record, written as soon as the run ends; a rerun skips finished runs and resumes an
interrupted one from its folder under ``--work``): tokens, rounds, the verdict (converged, complete), and per
depth the exact (or reference) tail, the raw MBAR estimate and interval, the honest interval of the verdict
([0, 1] where the threshold is unresolved), resolved, covered (exact inside the raw interval), |log10(estimate /
exact)|; with ``--ladder estimate`` also each rung's mean against the exact tilted mean, in standard errors
from the rung's bulk ESS, and whether the rung passes the verdict's criteria (a check of the sampler and of its
ESS, apart from MBAR). **Summary** per observable and depth: coverage of the raw interval, of the honest one,
among runs the verdict calls converged and among resolved thresholds (each with a 96% Wilson interval), misses
flagged (unresolved) and silent (resolved, exact outside: the number that must be about 0), median |log10
ratio|, median tokens, fraction converged; per observable the median over runs of the deepest exact tail that
is resolved and covered (0 where none), and the mean square of the rungs' scores, apart for passing and failing
rungs (about 1 among passing rungs where the sampler is unbiased and its ESS right). ``"complete": false``
until every configuration has ``--seeds`` runs.

Records carry a fingerprint of the library code they ran (and the runs' folders are named after it, so that a
changed library never resumes an old run); the summary uses the current fingerprint and budget only.

    python benchmarks/coverage.py                 # 6 models × 3 observables × 20 seeds at --budget (resumable)
    python benchmarks/coverage.py --full          # the issue's budget, 1e7 tokens per run, and depth 1e-18
    python benchmarks/coverage.py --quick         # one tiny model, one seed (make bench; coverage_quick.json)
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import common  # noqa: I001  (first: it starts the run's wall clock)
import numpy as np
from scipy.optimize import brentq

from rarelib import diagnostics, estimation, reweighting, rounds, tps
from rarelib import observables as obs
from rarelib.exact import solvable, validation

RESULTS = common.RESULTS_DIR / "coverage.json"
ESTIMATE_RESULTS = common.RESULTS_DIR / "coverage_estimate.json"
QUICK_RESULTS = common.RESULTS_DIR / "coverage_quick.json"
WORK = Path(__file__).resolve().parent.parent / "build" / "coverage"
LOG10 = math.log(10.0)
FAMILIES = {"repeats": "upper", "logprob": "lower", "class": "upper"}  # observable family → tail
ORDERS, CONCENTRATIONS = (1, 2), (0.3, 1.0, 3.0)
N_CHAINS = 8
MAX_TEMPERATURE_STRENGTH = 0.9  # the temperature guide needs scale·λ < 1
DEPTH_TOLERANCE = 1.0  # decades between a depth and the exact tail of its integer threshold
UNDECIDED_SE = 4.0  # reference standard errors within which a coverage decision is undecided
LIBRARY_MODULES = (
    "rarelib.rounds",
    "rarelib.estimation",
    "rarelib.convergence",
    "rarelib.tps",
    "rarelib.guides",
    "rarelib.generation",
    "rarelib.reweighting",
    "rarelib.diagnostics",
    "rarelib.direct",
    "rarelib.exact",
)
PROFILES = {
    "default": {"models": 6, "seeds": 20, "budget": 5e5, "depths": [3.0, 8.0, 13.0]},
    "full": {"models": 6, "seeds": 20, "budget": 1e7, "depths": [3.0, 8.0, 13.0, 18.0]},
    "quick": {
        "models": 1,
        "seeds": 1,
        "budget": 6e4,
        "depths": [3.0, 8.0],
        "tiny": True,
        "first_steps": 50,
        "pilot_samples": 500,
        "ladder_steps": 20,
    },
    "smoke": {
        "models": 1,
        "seeds": 1,
        "budget": 2.5e4,
        "depths": [2.0, 5.0],
        "tiny": True,
        "first_steps": 30,
        "n_bootstrap": 10,
        "reference_samples": 5_000,
        "pilot_samples": 200,
        "ladder_steps": 10,
    },
}


# --------------------------------------------------------------------------- the family of models


@dataclass(frozen=True)
class ModelSpec:
    """One drawn model: its table's shape and seed, the completion length, the prompt (max(k, 1) ids) and the class."""

    name: str
    vocab_size: int
    order: int
    concentration: float
    length: int
    seed: int
    prompt: tuple[int, ...]
    class_tokens: tuple[int, ...]


def draw_models(n: int, seed: int, tiny: bool = False) -> list[ModelSpec]:
    """``n`` model specifications drawn from ``seed``: (order, concentration) cycles through the six pairs, vocabulary
    6..16 and L 32..64 are drawn (``tiny``: vocabulary 6, L 12..16, order 1, for --quick)."""
    rng = np.random.default_rng(seed)
    pairs = [(order, concentration) for concentration in CONCENTRATIONS for order in ORDERS]
    specs = []
    for index in range(n):
        order, concentration = (1, 1.0) if tiny else pairs[index % len(pairs)]
        vocab = 6 if tiny else int(rng.integers(6, 17))
        length = int(rng.integers(12, 17)) if tiny else int(rng.integers(32, 65))
        prompt = tuple(int(t) for t in rng.integers(0, vocab, size=max(order, 1)))
        tokens = tuple(sorted(int(t) for t in rng.choice(vocab, size=max(1, round(vocab / 4)), replace=False)))
        name = f"m{index}-v{vocab}-o{order}-c{concentration:g}-L{length}"
        specs.append(ModelSpec(name, vocab, order, concentration, length, int(rng.integers(2**31)), prompt, tokens))
    return specs


def build_model(spec: ModelSpec) -> solvable.MarkovLM:
    return solvable.random_markov_lm(
        spec.vocab_size, spec.order, np.random.default_rng(spec.seed), spec.concentration, name=spec.name
    )


def exact_observable(spec: ModelSpec, family: str) -> solvable.AdditiveObservable:
    """φ for the exact calculators."""
    if family == "class":
        return solvable.AdditiveObservable("token_count", set(spec.class_tokens))
    return solvable.AdditiveObservable(family)


def sampler_observable(spec: ModelSpec, family: str) -> obs.Observable:
    """The same φ for the samplers."""
    return {"repeats": obs.repeats, "logprob": obs.logprob}.get(family) or obs.token_class_count(spec.class_tokens)


def make_move(spec: ModelSpec, family: str, ladder: np.ndarray) -> tps.Move:
    """The guided move of the family (module docstring)."""
    if family == "logprob":
        return tps.Move(guide="temperature", scale=min(1.0, MAX_TEMPERATURE_STRENGTH / float(np.max(ladder))))
    return tps.Move(guide="repeats" if family == "repeats" else list(spec.class_tokens), scale=1.0)


# --------------------------------------------------------------------------- thresholds at fixed exact depths


@dataclass(frozen=True)
class Targets:
    """Thresholds at fixed depths, each field (D,): the nominal depth (−log10 P), the threshold, log10 of the
    exact tail there and its standard error (0 where exact), the bias of the reference's tilted law (NaN if exact).
    """

    depths: np.ndarray
    thresholds: np.ndarray
    log10_exact: np.ndarray
    log10_se: np.ndarray
    reference_biases: np.ndarray


def integer_targets(model, observable, spec: ModelSpec, depths) -> tuple[Targets, list[str]]:
    """Integer thresholds whose exact upper tails lie nearest the depths (D,); depths with none within
    ``DEPTH_TOLERANCE`` decades (or sharing a threshold with a shallower one) are left out and named."""
    problem = validation.Problem(model, spec.prompt, spec.length, observable)
    log10_tail = problem.exact.log_prob_at_least(problem.thresholds) / LOG10
    kept, skipped = [], []
    for depth in depths:
        index = int(np.argmin(np.abs(log10_tail + depth)))
        if abs(log10_tail[index] + depth) > DEPTH_TOLERANCE or index in [k for _, k in kept]:
            skipped.append(f"10^-{depth:g}: nearest exact tail 10^{log10_tail[index]:.2f}")
            continue
        kept.append((depth, index))
    indices = np.array([k for _, k in kept], dtype=np.int64)
    nan = np.full(indices.size, np.nan)
    targets = Targets(
        np.array([d for d, _ in kept]), problem.thresholds[indices], log10_tail[indices], np.zeros(indices.size), nan
    )
    return targets, skipped


def saddle_point_log_tail(model, observable, spec: ModelSpec, lam: float) -> tuple[float, float]:
    """(threshold a = ⟨φ⟩_λ, the Bahadur–Rao approximation of log P(φ ⋚ a) from the exact log Z and tilted moments)."""
    step = 1e-4 * max(1.0, abs(lam))
    means = solvable.tilted_mean(model, observable, spec.prompt, spec.length, np.array([lam - step, lam, lam + step]))
    sigma = math.sqrt(max((means[0] - means[2]) / (2 * step), 1e-300))
    log_z = float(solvable.log_partition(model, observable, spec.prompt, spec.length, lam))
    return float(means[1]), log_z + lam * float(means[1]) - math.log(abs(lam) * sigma * math.sqrt(2 * math.pi))


def logprob_threshold(model, observable, spec: ModelSpec, depth: float) -> float:
    """The Log-Prob threshold a whose lower tail the saddle-point approximation puts at 10^-depth."""

    def excess(lam: float) -> float:
        return saddle_point_log_tail(model, observable, spec, lam)[1] / LOG10 + depth

    high = 0.05
    while excess(high) > 0:
        high *= 2.0
    lam = brentq(excess, high / 2 if high > 0.05 else 1e-3, high, xtol=1e-6)
    return saddle_point_log_tail(model, observable, spec, lam)[0]


def logprob_targets(model, observable, spec: ModelSpec, depths, n: int, seed: int) -> Targets:
    """Log-Prob lower-tail thresholds at the depths (D,) (saddle point) and their reference tails."""
    thresholds = [logprob_threshold(model, observable, spec, depth) for depth in depths]
    reference = validation.tilted_tail_reference(
        model, observable, spec.prompt, spec.length, thresholds, "lower", n, np.random.default_rng(seed)
    )
    return Targets(
        np.asarray(depths, dtype=np.float64),
        np.array(thresholds),
        reference.log / LOG10,
        reference.log_se / LOG10,
        reference.biases,
    )


@dataclass(frozen=True)
class Configuration:
    """One (model, observable) pair, ready to run: the model, φ for both sides, targets, the exact ladder and move."""

    spec: ModelSpec
    family: str
    model: solvable.MarkovLM
    observable: obs.Observable
    targets: Targets
    skipped: list[str]
    ladder: np.ndarray
    move: tps.Move

    @property
    def key(self) -> str:
        return f"{self.spec.name}|{self.family}"

    def describe(self) -> dict:
        return validation.json_ready(
            {
                "key": self.key,
                "model": asdict(self.spec),
                "family": self.family,
                "side": FAMILIES[self.family],
                "targets": asdict(self.targets),
                "depths_left_out": self.skipped,
                "ladder": self.ladder,
                "ladder_rule": "validation.bias_ladder from the exact tilted means to the deepest threshold (oracle)",
                "move": {"guide": str(self.move.guide), "scale": self.move.scale},
                "exact": "reference: exact tilted-law importance sampling"
                if self.family == "logprob"
                else "exact (lattice dynamic programming)",
            }
        )


def configure(spec: ModelSpec, family: str, depths, reference_samples: int) -> Configuration:
    model, observable = build_model(spec), exact_observable(spec, family)
    if family == "logprob":
        targets, skipped = logprob_targets(model, observable, spec, depths, reference_samples, spec.seed), []
    else:
        targets, skipped = integer_targets(model, observable, spec, depths)
    ladder = validation.bias_ladder(
        lambda lam: solvable.tilted_mean(model, observable, spec.prompt, spec.length, lam),
        float(targets.thresholds[-1]),
    )
    return Configuration(
        spec, family, model, sampler_observable(spec, family), targets, skipped, ladder, make_move(spec, family, ladder)
    )


# --------------------------------------------------------------------------- one run


def run_seed(configuration_index: int, family_index: int, seed: int) -> int:
    return int(np.random.SeedSequence([seed, configuration_index, family_index]).generate_state(1)[0])


def depth_records(configuration: Configuration, answer) -> list[dict]:
    """Per target depth: exact, raw and honest intervals, resolved, covered, log10 ratio.

    answer: a :class:`rarelib.estimation.Estimate`, or a verdict (:class:`rarelib.convergence.Verdict`, whose raw
    estimate is ``.estimate``); thresholds sorted."""
    targets, honest = configuration.targets, answer.tail
    raw = answer.raw if isinstance(answer, estimation.Estimate) else answer.estimate
    records = []
    for depth, threshold, exact, se in zip(targets.depths, targets.thresholds, targets.log10_exact, targets.log10_se):
        index = int(np.flatnonzero(answer.thresholds == threshold)[0])
        estimate = float(raw.log10[index])
        low, high = (float(v) for v in raw.log10_interval[:, index])
        distance = min(abs(exact - low), abs(exact - high))
        records.append(
            {
                "depth": depth,
                "threshold": threshold,
                "log10_exact": exact,
                "log10_exact_se": se,
                "log10_estimate": estimate,
                "log10_interval": [low, high],
                "log10_honest_interval": [float(v) for v in honest.log10_interval[:, index]],
                "resolved": bool(answer.resolved[index]),
                "reason": str(answer.reasons[index]),
                "covered": bool(low <= exact <= high),
                "decided": bool(distance > UNDECIDED_SE * se) if se > 0 else True,
                "abs_log10_ratio": abs(estimate - exact) if math.isfinite(estimate) else None,
            }
        )
    return records


def rung_mean_scores(configuration: Configuration, ladder: np.ndarray, means: np.ndarray, ess: np.ndarray) -> list:
    """(mean − exact tilted mean) / standard error at each rung (K,), the error from the exact tilted variance
    −dm/dλ over the rung's bulk ESS: about N(0, 1) where the sampler is unbiased and its ESS is right."""
    spec = configuration.spec
    observable = exact_observable(spec, configuration.family)

    def exact_mean(lam):
        return solvable.tilted_mean(configuration.model, observable, spec.prompt, spec.length, lam)

    variance = -(exact_mean(ladder + 1e-4) - exact_mean(ladder - 1e-4)) / 2e-4
    return ((means - exact_mean(ladder)) / np.sqrt(variance / ess)).tolist()


def estimate_one(configuration: Configuration, seed: int, args, work: Path) -> dict:
    """One :func:`rarelib.estimate` of a configuration (it places its own ladder), as the fields of a record."""
    spec, family = configuration.spec, configuration.family
    result = estimation.estimate(
        configuration.model,
        list(spec.prompt),
        configuration.observable,
        thresholds=configuration.targets.thresholds,
        side=FAMILIES[family],
        budget_tokens=args.budget,
        target_relative_half_width=math.inf,  # as run_rounds: stop once the verdict is complete
        completion_length=spec.length,
        n_chains=N_CHAINS,
        first_steps=args.first_steps,
        pilot_samples=args.pilot_samples,
        ladder_steps=args.ladder_steps,
        move=make_move(spec, family, np.array([MAX_TEMPERATURE_STRENGTH])),  # scale 1
        settings=reweighting.Settings(rhat_threshold=math.inf, n_bootstrap=args.n_bootstrap),
        seed=seed,
        checkpoint=work,
        progress=False,
    )
    return {
        "tokens": result.tokens,
        "rounds": len(result.history),
        "converged": result.converged,
        "complete": result.complete,
        "rung_failures": [f"λ={b:g}: {why}" for b, why in zip(result.rungs.bias, result.rungs.failures) if why],
        "ladder": result.ladder.tolist(),
        "ladder_notes": list(result.notes),
        "rung_mean_scores": rung_mean_scores(configuration, result.ladder, result.rung_means, result.rungs.ess_bulk),
        "rung_passes": [not why for why in result.rungs.failures],
        "depths": depth_records(configuration, result),
    }


def run_one(configuration: Configuration, indices: tuple[int, int], seed: int, args, work: Path) -> dict:
    """One run_rounds of a configuration at ``seed`` (resumed from its folder), or with ``--ladder estimate`` one
    :func:`rarelib.estimate`, as a record."""
    clock = time.perf_counter(), time.process_time()
    if args.ladder == "estimate":
        fields = estimate_one(configuration, run_seed(*indices, seed), args, work)
        return {**record_fields(configuration, args, seed), **fields, "seconds": seconds_since(clock)}
    result = rounds.run_rounds(
        configuration.model,
        list(configuration.spec.prompt),
        configuration.spec.length,
        configuration.observable,
        configuration.ladder,
        N_CHAINS,
        thresholds=configuration.targets.thresholds,
        budget_tokens=args.budget,
        folder=work,
        side=FAMILIES[configuration.family],
        move=configuration.move,
        first_steps=args.first_steps,
        seed=run_seed(*indices, seed),
        settings=reweighting.Settings(rhat_threshold=math.inf, n_bootstrap=args.n_bootstrap),
        progress=False,
    )
    return {
        **record_fields(configuration, args, seed),
        "tokens": result.tokens,
        "rounds": len(result.history),
        "converged": result.verdict.converged,
        "complete": result.verdict.complete,
        "rung_failures": result.verdict.failures,
        "seconds": seconds_since(clock),
        "depths": depth_records(configuration, result.verdict),
    }


def record_fields(configuration: Configuration, args, seed: int) -> dict:
    return {
        "key": record_key(configuration, args.budget, seed),
        "configuration": configuration.key,
        "family": configuration.family,
        "seed": seed,
        "budget": args.budget,
        "ladder_rule": args.ladder,
    }


def seconds_since(clock: tuple[float, float]) -> dict:
    return {"wall": time.perf_counter() - clock[0], "cpu": time.process_time() - clock[1]}


def record_key(configuration: Configuration, budget: float, seed: int) -> str:
    return f"{configuration.key}|{budget:g}|{seed}"


# --------------------------------------------------------------------------- summary


def proportion(successes: int, trials: int) -> dict:
    """k of n with its 96% Wilson interval (None where n = 0)."""
    if trials == 0:
        return {"k": 0, "n": 0, "fraction": None, "interval": None}
    low, high = diagnostics.wilson_interval(successes, trials)
    return {"k": successes, "n": trials, "fraction": successes / trials, "interval": [float(low), float(high)]}


def depth_summary(entries: list[tuple[dict, dict]]) -> dict:
    """Coverage statistics of (run record, depth record) pairs of one family and depth."""
    decided = [(run, d) for run, d in entries if d["decided"]]
    covered = [d["covered"] for _, d in decided]
    resolved = [d for _, d in decided if d["resolved"]]
    converged = [d for run, d in decided if run["converged"]]
    misses = [d for _, d in decided if not d["covered"]]
    ratios = [d["abs_log10_ratio"] for _, d in entries if d["abs_log10_ratio"] is not None]
    return {
        "runs": len(entries),
        "undecided": len(entries) - len(decided),
        "log10_exact_median": float(np.median([d["log10_exact"] for _, d in entries])),
        "coverage_raw": proportion(sum(covered), len(covered)),
        "coverage_honest": proportion(sum(c or not d["resolved"] for c, (_, d) in zip(covered, decided)), len(decided)),
        "coverage_converged": proportion(sum(d["covered"] for d in converged), len(converged)),
        "coverage_resolved": proportion(sum(d["covered"] for d in resolved), len(resolved)),
        "resolved": proportion(len(resolved), len(decided)),
        "misses_flagged": sum(not d["resolved"] for d in misses),
        "misses_silent": sum(d["resolved"] for d in misses),
        "median_abs_log10_ratio": float(np.median(ratios)) if ratios else None,
        "median_tokens": float(np.median([run["tokens"] for run, _ in entries])),
        "converged": proportion(sum(run["converged"] for run, _ in entries), len(entries)),
    }


def rung_score_summary(runs: list[dict]) -> dict:
    """Mean square of the rungs' scores (:func:`rung_mean_scores`), apart for the rungs that pass the verdict's
    criteria and those that fail them: ≈ 1 among passing rungs where the sampler and its ESS are right."""
    scores = np.concatenate([run["rung_mean_scores"] for run in runs] or [[]])
    passes = np.concatenate([run["rung_passes"] for run in runs] or [[]]).astype(bool)
    return {
        group: {"n": int(chosen.sum()), "mean_square": float(np.mean(scores[chosen] ** 2)) if chosen.any() else None}
        for group, chosen in (("passing", passes), ("failing", ~passes))
    }


def deepest_covered(run: dict) -> float:
    """log10 of the deepest exact tail of a run that is resolved and covered; 0 where none."""
    values = [d["log10_exact"] for d in run["depths"] if d["resolved"] and d["covered"] and d["decided"]]
    return min(values, default=0.0)


def summarise(records: list[dict]) -> dict:
    """Family → {"depths": depth → :func:`depth_summary`, "deepest_covered_log10": median over runs, "runs": n}."""
    summary = {}
    for family in FAMILIES:
        runs = [run for run in records if run["family"] == family]
        if not runs:
            continue
        depths = sorted({d["depth"] for run in runs for d in run["depths"]})
        summary[family] = {
            "runs": len(runs),
            "rung_mean_scores": rung_score_summary([run for run in runs if "rung_passes" in run]),
            "deepest_covered_log10": {
                "median": float(np.median([deepest_covered(run) for run in runs])),
                "min": float(min(deepest_covered(run) for run in runs)),
            },
            "depths": {
                f"{depth:g}": depth_summary([(run, d) for run in runs for d in run["depths"] if d["depth"] == depth])
                for depth in depths
            },
        }
    return summary


def _fraction(entry: dict) -> str:
    if entry["n"] == 0:
        return "—"
    return f"{entry['k']}/{entry['n']} [{entry['interval'][0]:.2f},{entry['interval'][1]:.2f}]"


def table(summary: dict) -> str:
    columns = [
        ("family", "s"),
        ("depth", "s"),
        ("runs", "d"),
        ("raw coverage", "s"),
        ("among resolved", "s"),
        ("among converged", "s"),
        ("resolved", "s"),
        ("flagged miss", "d"),
        ("silent miss", "d"),
        ("med |log10 r|", ".2f"),
        ("med tokens", ".2g"),
        ("converged", "s"),
    ]
    rows = [
        (
            family,
            f"1e-{depth}",
            row["runs"],
            _fraction(row["coverage_raw"]),
            _fraction(row["coverage_resolved"]),
            _fraction(row["coverage_converged"]),
            _fraction(row["resolved"]),
            row["misses_flagged"],
            row["misses_silent"],
            row["median_abs_log10_ratio"],
            row["median_tokens"],
            _fraction(row["converged"]),
        )
        for family, entry in summary.items()
        for depth, row in entry["depths"].items()
    ]
    deepest = "; ".join(
        f"{family} 10^{entry['deepest_covered_log10']['median']:.1f}" for family, entry in summary.items()
    )
    scores = "; ".join(
        f"{family} {group} {entry['rung_mean_scores'][group]['mean_square']:.3g} "
        f"({entry['rung_mean_scores'][group]['n']} rungs)"
        for family, entry in summary.items()
        for group in ("passing", "failing")
        if entry["rung_mean_scores"][group]["n"]
    )
    return (
        common.format_table(columns, rows)
        + f"\ndeepest resolved and covered tail (median over runs): {deepest}"
        + f"\nrung means against the exact tilted means, mean square of (error / ESS standard error): {scores or '—'}"
    )


# --------------------------------------------------------------------------- bookkeeping


def code_fingerprint() -> str:
    """Hash of the library modules a run executes: a record is stale once they change."""
    digest = hashlib.sha256()
    for name in LIBRARY_MODULES:
        module = importlib.import_module(name)
        path = Path(module.__file__)
        for file in sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]:
            digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()[:16]


def load_records(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    return {run["key"]: run for run in json.loads(path.read_text()).get("results", {}).get("runs", [])}


def write(args, machine: dict, fingerprint: str, configurations: list[Configuration], records: dict) -> dict:
    """The JSON: every record, the summary of the current ones, completeness and the configurations."""
    wanted = {(c.key, seed) for c in configurations for seed in range(args.seeds)}
    current = [
        run
        for run in records.values()
        if run["code"] == fingerprint and run["budget"] == args.budget and (run["configuration"], run["seed"]) in wanted
    ]
    done = {c.key: sum(run["configuration"] == c.key for run in current) for c in configurations}
    summary = summarise(current)
    tokens, wall, cpu = (
        np.array([[run["tokens"], run["seconds"]["wall"], run["seconds"]["cpu"]] for run in current]).reshape(-1, 3).T
    )
    results = {
        "complete": all(count >= args.seeds for count in done.values()),
        "runs_done": len(current),
        "runs_planned": len(wanted),
        "runs_per_configuration": done,
        "code": fingerprint,
        "load_note": (
            f"shared machine: {machine['cpu_count']} cores, load average {machine['load_average_at_start']} at the "
            "start of this process (other jobs running); seconds per run are wall and CPU of this process"
        ),
        "throughput": {  # tokens drawn per second over the current runs, analyses included (medians)
            "tokens_per_wall_second": float(np.median(tokens / wall)) if current else None,
            "tokens_per_cpu_second": float(np.median(tokens / cpu)) if current else None,
        },
        "summary": summary,
        "configurations": [c.describe() for c in configurations],
        "runs": list(records.values()),
        "stale_runs": sorted(key for key, run in records.items() if run["code"] != fingerprint),
    }
    common.write_results(args.output, "coverage", vars(args), results, machine)
    return summary


def arguments():
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--quick", action="store_true", help="one tiny model, one seed, small budget (make bench)")
    parser.add_argument("--full", action="store_true", help="the issue's budget: 1e7 tokens per run, depth 1e-18")
    parser.add_argument("--models", type=int, help="models drawn (default 6)")
    parser.add_argument("--seeds", type=int, help="seeds per configuration (default 20)")
    parser.add_argument("--budget", type=float, help="tokens per run (default 5e5; --full 1e7)")
    parser.add_argument("--depths", type=float, nargs="+", help="tail depths, −log10 P (default 3 8 13)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--model-seed", type=int, default=16, help="seed of the model draw")
    parser.add_argument("--first-steps", type=int, default=100, help="steps of run_rounds' first round")
    parser.add_argument("--pilot-samples", type=int, default=2000, help="direct samples of estimate's pilot")
    parser.add_argument("--ladder-steps", type=int, default=40, help="steps of each of estimate's ladder runs")
    parser.add_argument(
        "--ladder",
        choices=("oracle", "estimate"),
        default="oracle",
        help="oracle: bias_ladder from the exact tilted means; estimate: rarelib.estimate places its own",
    )
    parser.add_argument("--n-bootstrap", type=int, default=100, help="bootstrap replicas of every analysis")
    parser.add_argument("--reference-samples", type=int, default=200_000, help="exact tilted draws per Log-Prob tail")
    parser.add_argument("--work", type=Path, default=WORK, help="folder of the runs' checkpoints (resumable)")
    parser.add_argument("--max-runs", type=int, help="stop after this many new runs")
    parser.add_argument("--table", action="store_true", help="print the table of --output's results; run nothing")
    args = parser.parse_args()
    profile = "smoke" if args.smoke else "quick" if args.quick else "full" if args.full else "default"
    for key, value in PROFILES[profile].items():
        if getattr(args, key.replace("-", "_"), None) in (None, parser.get_default(key)):
            setattr(args, key, value)
    args.profile, args.tiny, args.depths = profile, PROFILES[profile].get("tiny", False), sorted(args.depths)
    if args.ladder == "estimate" and args.output == RESULTS:
        args.output = (
            ESTIMATE_RESULTS
            if profile not in ("quick", "smoke")
            else ESTIMATE_RESULTS.with_stem("coverage_estimate_quick")
        )
    if profile in ("quick", "smoke") and args.output == RESULTS:
        args.output = QUICK_RESULTS
    if args.smoke and args.work == WORK:  # a smoke run starts afresh
        args.work = common.scratch_folder("coverage-smoke-")
    return args


def main() -> None:
    args = arguments()
    if args.table:
        results = json.loads(args.output.read_text())["results"]
        print(f"{results['runs_done']} of {results['runs_planned']} runs done (complete: {results['complete']})")
        print(table(results["summary"]))
        return
    machine = common.start(args)
    fingerprint = code_fingerprint()
    records = {} if args.smoke else load_records(args.output)
    specs = draw_models(args.models, args.model_seed, args.tiny)
    configurations = [
        configure(spec, family, args.depths, args.reference_samples) for spec in specs for family in args.families
    ]
    for configuration in configurations:
        targets = configuration.targets
        print(
            f"{configuration.key}: thresholds {np.round(targets.thresholds, 2)} at exact "
            f"10^{targets.log10_exact.round(2)}, "
            f"{configuration.ladder.size} rungs",
            flush=True,
        )
    new = 0
    for seed in range(args.seeds):
        for index, configuration in enumerate(configurations):
            key = record_key(configuration, args.budget, seed)
            if key in records and records[key]["code"] == fingerprint:
                continue
            if args.max_runs is not None and new >= args.max_runs:
                break
            # the code's fingerprint in the path: after a library change a run starts afresh instead of resuming
            name = configuration.key.replace("|", "-")
            folder = args.work / args.profile / args.ladder / fingerprint / name / f"budget{args.budget:g}-seed{seed}"
            indices = (index // len(args.families), list(FAMILIES).index(configuration.family))
            record = run_one(configuration, indices, seed, args, folder)
            records[key] = {**record, "code": fingerprint}
            new += 1
            flags = " ".join(
                f"1e-{d['depth']:g}:{'R' if d['resolved'] else 'u'}{'c' if d['covered'] else 'X'}"
                for d in record["depths"]
            )
            print(
                f"{key}: {record['tokens']:.3g} tokens, {record['rounds']} rounds, "
                f"{'converged' if record['converged'] else 'not converged'}, {flags}, "
                f"{record['seconds']['wall']:.0f} s wall",
                flush=True,
            )
            write(args, machine, fingerprint, configurations, records)
    summary = write(args, machine, fingerprint, configurations, records)
    print(table(summary))


if __name__ == "__main__":
    main()
