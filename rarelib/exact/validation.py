"""Validation of the rare-event estimators against exact answers.

On a solvable model (an :class:`rarelib.exact.solvable.MarkovLM`: random, fitted to text, or a
transformer read as a chain by :func:`rarelib.exact.chains.chain_to_markov_lm`) every tail
probability of an integer-valued additive observable is known exactly, however small. This
module runs the real samplers on such a model through the ``CausalLM`` interface, unchanged —
annealed TPS or parallel tempering over a bias ladder, plus direct samples as the λ = 0
state — reweights with :func:`rarelib.reweighting.analyze` (percentile bootstrap over
chains, 96% intervals), and sets every estimate beside its exact value:

* log Z(λ_k) at every MBAR state, estimate and interval against
  :func:`rarelib.exact.solvable.log_partition` (Z(0) = 1 exactly, so MBAR's relative log Z is absolute);
* P(φ ≥ a) at every integer threshold a inside the support (the minimum excluded, where the
  tail is 1): estimate, interval, exact, whether the interval covers it, log10 ratio;
* the same tails from direct sampling with the same token budget, with Wilson intervals.

Token budget (:func:`rarelib.diagnostics.generated_tokens`): direct sampling generates n·L
tokens; a TPS step regrows L − τ tokens, τ being the kept prefix recorded as ``cut`` (about L/2
on average with uniform cuts), and the initial draw of each chain costs L more. Kept prefixes
are recomputed but not drawn, so they are not counted. TPS + MBAR is charged for its biased
run and its λ = 0 samples.

Bias ladders (:func:`bias_ladder`): from λ = 0 each next bias moves the tilted mean ⟨φ⟩_λ
by ``spacing`` standard deviations of the current tilted law, σ_λ² = Var_λ(φ) = −d⟨φ⟩_λ/dλ,
until the mean reaches the target. Neighbouring tilted laws then overlap by construction
(for near-Gaussian laws a one-σ shift of the mean keeps a large share of each law's mass in
the other's bulk), the usual rule for umbrella windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.optimize import brentq

from rarelib import diagnostics, direct, logspace, reweighting, tps
from rarelib import observables as obs
from rarelib.exact import solvable

__all__ = [
    "bias_ladder",
    "compare_direct",
    "compare_mbar",
    "format_table",
    "json_ready",
    "LOG10",
    "PartitionComparison",
    "Problem",
    "repetition_loop_lm",
    "sample_biased",
    "sample_direct",
    "SAMPLERS",
    "TailComparison",
    "thin_draws",
    "tilted_tail_reference",
    "TailReference",
    "validate",
    "Validation",
]

SAMPLERS = diagnostics.TPS_SAMPLERS
LOG10 = math.log(10.0)


# --------------------------------------------------------------------------- the problem


@dataclass(frozen=True)
class Problem:
    """A solvable rare-event problem.

    model: the Markov LM; prompt: (P,) token ids (text is encoded by the model);
    completion_length: L; observable: integer-valued additive observable (Repeats or a
    token-class count; a kind name such as ``"repeats"`` is accepted).
    """

    model: solvable.MarkovLM
    prompt: tuple[int, ...]
    completion_length: int
    observable: solvable.AdditiveObservable

    def __post_init__(self):
        if not isinstance(self.model, solvable.MarkovLM):
            raise ValueError(
                f"model must be an solvable.MarkovLM (e.g. chains.chain_to_markov_lm(...)); "
                f"got {type(self.model).__name__}"
            )
        prompt = self.model.encode(self.prompt) if isinstance(self.prompt, str) else self.prompt
        object.__setattr__(self, "prompt", tuple(int(i) for i in prompt))
        observable = self.observable
        if not isinstance(observable, solvable.AdditiveObservable):
            observable = solvable.AdditiveObservable(str(observable))
        if not observable.integer_valued:
            raise ValueError(
                f"observable must be integer-valued ('repeats' or 'token_count') so that its exact tails "
                f"come from solvable.exact_distribution; got {observable.kind!r}"
            )
        object.__setattr__(self, "observable", observable)
        _ = self.exact  # computed once here, which also checks prompt, length and token class against the model

    @cached_property
    def exact(self) -> solvable.ExactDistribution:
        """The exact law of φ over completions of length L."""
        return solvable.exact_distribution(self.model, self.observable, self.prompt, self.completion_length)

    def exact_log_partition(self, lambdas) -> np.ndarray:
        """Exact log Z(λ), shaped like ``lambdas``."""
        return solvable.log_partition(self.model, self.observable, self.prompt, self.completion_length, lambdas)

    def exact_tilted_mean(self, lambdas) -> np.ndarray:
        """Exact ⟨φ⟩_λ, shaped like ``lambdas``."""
        return solvable.tilted_mean(self.model, self.observable, self.prompt, self.completion_length, lambdas)

    @property
    def sampler_observable(self) -> obs.Observable:
        """The same φ as a :mod:`rarelib.observables` function, for the samplers."""
        if self.observable.kind == "repeats":
            return obs.repeats
        return obs.token_class_count(sorted(self.observable.tokens))

    @property
    def thresholds(self) -> np.ndarray:
        """(A,) integer thresholds a with 0 < P(φ ≥ a) < 1: the support above its minimum."""
        support = self.exact.values[np.isfinite(self.exact.log_pmf)]
        return support[1:]


def repetition_loop_lm(
    vocab_size: int, stay: float, entry: float, rng: np.random.Generator, **model_options
) -> solvable.MarkovLM:
    """An order-1 Markov LM with a repetition loop, the mechanism behind the paper's rare completions.

    Token 0 is the loop ("…rururu…"): it follows itself with probability ``stay`` and any other
    token with probability ``entry``; the rest of every row is drawn from Dirichlet(1) over tokens
    1..T−1, so the other tokens carry real, random dependence. Counting token 0 after a prompt that
    ends in it, a completion with φ ≥ a needs about a loop tokens, each costing ``stay`` (a run
    from the prompt) or ``entry`` (a new loop): P(φ ≥ a) falls roughly like stay^a — with
    stay = 0.1, ten orders of magnitude over ten tokens — so direct sampling, which needs ~1/P
    completions to see the event once, never reaches it, while the event stays a short, nested
    structure (a longer run extends a shorter one) that forward-shooting TPS can grow at its end.
    """
    if not 0 < stay < 1 or not 0 < entry < 1:
        raise ValueError(f"stay and entry must be probabilities in (0, 1); got stay={stay!r}, entry={entry!r}")
    if vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (the loop token and two others); got {vocab_size!r}")
    probabilities = np.empty((vocab_size, vocab_size))
    probabilities[1:, 1:] = rng.dirichlet(np.ones(vocab_size - 1), size=vocab_size - 1) * (1.0 - entry)
    probabilities[1:, 0] = entry
    probabilities[0, 0] = stay
    probabilities[0, 1:] = rng.dirichlet(np.ones(vocab_size - 1)) * (1.0 - stay)
    return solvable.MarkovLM(np.log(probabilities), **model_options)


# --------------------------------------------------------------------------- bias ladders


def bias_ladder(
    tilted_mean: Callable[[float], float],
    target: float,
    spacing: float = 1.0,
    max_biases: int = 64,
    step: float = 1e-4,
) -> np.ndarray:
    """Biases (K,) from λ = 0 (excluded) towards the one whose tilted mean ⟨φ⟩_λ equals ``target``.

    tilted_mean: λ → ⟨φ⟩_λ, e.g. ``problem.exact_tilted_mean`` or a pilot MBAR estimate
    ``lambda lam: reweighting.expectation(fit, "phi", lam)`` (trustworthy only where the
    pilot has samples). Rule: λ_{k+1} solves ⟨φ⟩_{λ_{k+1}} = ⟨φ⟩_{λ_k} ± spacing·σ_{λ_k},
    σ_λ² = −d⟨φ⟩_λ/dλ (central difference with ``step``), the last bias landing on the target.
    A target above ⟨φ⟩_0 gives λ < 0 (the upper tail), below it λ > 0. For a tail threshold a,
    target = a centres the last tilted law on the event; where tilted laws have long tails (a
    geometric loop length, say) a smaller target already puts a good share of samples at a.
    """
    if not spacing > 0 or not math.isfinite(spacing):
        raise ValueError(f"spacing must be a positive number of standard deviations; got {spacing!r}")

    def mean(lam: float) -> float:
        return float(tilted_mean(lam))

    start_mean = mean(0.0)
    if target == start_mean:
        raise ValueError(f"target={target:g} equals ⟨φ⟩_0; choose a target in the tail")
    upward = target > start_mean
    direction = -1.0 if upward else 1.0
    current, biases = 0.0, []
    while True:
        if len(biases) == max_biases:
            raise ValueError(
                f"reaching target={target:g} needs more than max_biases={max_biases} biases at "
                f"spacing={spacing:g}; raise spacing or max_biases"
            )
        variance = (mean(current - step) - mean(current + step)) / (2.0 * step)
        if not variance > 0:
            raise ValueError(
                f"⟨φ⟩_λ does not decrease at λ={current:g} (variance {variance:.3g}); "
                "tilted_mean must be a tilted mean, −d log Z/dλ"
            )
        goal = mean(current) - direction * spacing * math.sqrt(variance)
        last = goal >= target if upward else goal <= target
        current = _solve_mean(mean, target if last else goal, current, direction * spacing / math.sqrt(variance))
        biases.append(current)
        if last:
            return np.array(biases)


def _solve_mean(
    mean: Callable[[float], float], goal: float, start: float, first_step: float, max_doublings: int = 60
) -> float:
    """The λ between ``start`` and start + 2^j·first_step where mean(λ) = goal (mean decreasing in λ)."""
    offset = first_step
    for _ in range(max_doublings):
        if (mean(start + offset) - goal) * (mean(start) - goal) <= 0:
            return brentq(
                lambda lam: mean(lam) - goal,
                min(start, start + offset),
                max(start, start + offset),
                xtol=1e-12,
                rtol=1e-12,
            )
        offset *= 2.0
    raise ValueError(
        f"target mean {goal:g} lies beyond the reach of ⟨φ⟩_λ (it is {mean(start + offset):g} at "
        f"λ={start + offset:g}); choose a target strictly inside the range of φ"
    )


# --------------------------------------------------------------------------- reference tails of Log-Prob


@dataclass(frozen=True)
class TailReference:
    """Reference tails P(φ ≥ a) or P(φ ≤ a) (A,) where no exact lattice law exists (Log-Prob), in natural log.

    log: the estimate; log_se: its standard error in log (relative standard error); biases: the λ (A,)
    whose exact tilted law drew the samples for each threshold.
    """

    log: np.ndarray
    log_se: np.ndarray
    biases: np.ndarray


def tilted_tail_reference(
    model: solvable.MarkovLM,
    observable: solvable.AdditiveObservable | str,
    prompt,
    length: int,
    thresholds,
    side: str,
    n: int,
    rng: np.random.Generator,
) -> TailReference:
    """Tails of any additive φ by importance sampling from its exact tilted laws (:func:`solvable.sample_tilted`).

    For each threshold a (A,) the bias λ with exact ⟨φ⟩_λ = a puts the tilted law on the event, and
    P = Z(λ) E_λ[e^{λφ} 1(φ ⋚ a)] is estimated from ``n`` i.i.d. exact samples with Z(λ) exact
    (:func:`solvable.log_partition`). Unbiased, with a relative standard error of order 1/√n, which
    is reported: the ground truth of a coverage check where exact_distribution does not apply
    (Log-Prob is real-valued; :func:`solvable.logprob_distribution_bounds` is too loose at depth for
    long completions). Thresholds must lie strictly inside the range of ⟨φ⟩_λ.
    """
    logspace.check_side(side)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()

    def mean(lam: float) -> float:
        return float(solvable.tilted_mean(model, observable, prompt, length, lam))

    logs, errors, biases = [], [], []
    for threshold in thresholds:
        lam = _solve_mean(mean, float(threshold), 0.0, 0.1 if threshold < mean(0.0) else -0.1)
        completions = solvable.sample_tilted(model, observable, prompt, length, lam, n, rng)
        phi = solvable.observable_values(model, observable, prompt, completions)
        inside = phi >= threshold if side == "upper" else phi <= threshold
        log_w = np.where(inside, lam * (phi - threshold), -np.inf)  # shifted by λa: weights ≤ 1 on the event
        log_mean = logspace.logsumexp(log_w, axis=0) - math.log(n)
        relative_second = np.exp(logspace.logsumexp(2.0 * (log_w - log_mean), axis=0) - math.log(n))
        log_z = float(solvable.log_partition(model, observable, prompt, length, lam))
        logs.append(log_z + lam * threshold + log_mean)
        errors.append(math.sqrt(max(relative_second - 1.0, 0.0) / n))
        biases.append(lam)
    return TailReference(np.array(logs), np.array(errors), np.array(biases))


# --------------------------------------------------------------------------- sampling


def sample_biased(
    problem: Problem,
    biases: Sequence[float],
    *,
    sampler: str = "annealed_tps",
    n_steps: int,
    n_chains: int,
    seed: int,
    swap_every: int = 1,
    move: tps.Move = tps.FORWARD_SHOOTING,
    progress: bool = False,
):
    """A biased run of the real sampler: ``n_steps`` draws per bias for each of ``n_chains`` chains.

    sampler: ``"annealed_tps"`` (:func:`rarelib.tps.run_annealed`, biases in order) or
    ``"parallel_tempering"`` (:func:`rarelib.tps.run_tempering`, all biases at once, swaps every
    ``swap_every`` steps). Both give (chain, draw, bias) = (n_chains, n_steps, K) records.
    move: the TPS move (:class:`rarelib.tps.Move`); default forward shooting from p_M.
    """
    arguments = dict(
        lm=problem.model,
        prompt=list(problem.prompt),
        completion_length=problem.completion_length,
        observable=problem.sampler_observable,
        biases=biases,
        n_chains=n_chains,
        seed=seed,
        record=(),
        progress=progress,
        move=move,
    )
    if sampler == "annealed_tps":
        return tps.run_annealed(steps_per_bias=n_steps, **arguments)
    if sampler == "parallel_tempering":
        return tps.run_tempering(n_steps=n_steps, swap_every=swap_every, **arguments)
    raise ValueError(f"sampler={sampler!r}; use one of {SAMPLERS}")


def sample_direct(problem: Problem, n: int, seed: int, batch_size: int = 4096, progress: bool = False):
    """``n`` direct samples in the standard layout (one chain, λ = 0)."""
    observable = problem.sampler_observable
    samples = direct.sample(
        problem.model,
        list(problem.prompt),
        n,
        problem.completion_length,
        observables=[observable],
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )
    return direct.to_inference_data(samples, observable.__name__)


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class TailComparison:
    """P(φ ≥ a) of one estimator (A,) against the exact values (A,), in log10.

    ``estimate`` is zero (log −inf) where no sample reached a; ``tokens``: the estimator's budget.
    """

    estimator: str
    tokens: int
    thresholds: np.ndarray
    log10_exact: np.ndarray
    estimate: logspace.LogEstimate

    @property
    def log10_estimate(self) -> np.ndarray:
        """(A,) log10 of the estimate."""
        return self.estimate.log10

    @property
    def log10_interval(self) -> np.ndarray:
        """(2, A) log10 of the interval."""
        return self.estimate.log10_interval

    @property
    def has_data(self) -> np.ndarray:
        """(A,) bool: samples on both sides of a, so that 0 < estimate < 1 (where the estimator has data)."""
        return np.isfinite(self.log10_estimate) & (self.log10_estimate < 0.0)

    @property
    def covered(self) -> np.ndarray:
        """(A,) bool: the interval contains the exact value."""
        return (self.log10_interval[0] <= self.log10_exact) & (self.log10_exact <= self.log10_interval[1])

    @property
    def log10_ratio(self) -> np.ndarray:
        """(A,) log10(estimate / exact); −inf where no sample reached a."""
        return self.log10_estimate - self.log10_exact

    @property
    def coverage(self) -> float:
        """Fraction of the thresholds with data whose interval covers the exact value."""
        return float(self.covered[self.has_data].mean()) if self.has_data.any() else math.nan

    @property
    def deepest(self) -> int:
        """Index of the largest threshold with data, where the estimated tail is smallest; −1 if none."""
        return int(np.flatnonzero(self.has_data)[-1]) if self.has_data.any() else -1


@dataclass(frozen=True)
class PartitionComparison:
    """log Z(λ_k) from MBAR against the exact values at the biased states (λ ≠ 0); arrays (K,), intervals (2, K).

    log_std: pymbar's analytic standard error (ignores correlation along chains);
    log_interval: the 96% percentile-bootstrap interval over chains.
    """

    biases: np.ndarray
    log_exact: np.ndarray
    log_estimate: np.ndarray
    log_interval: np.ndarray
    log_std: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """(K,) estimate − exact, natural log."""
        return self.log_estimate - self.log_exact

    @property
    def covered(self) -> np.ndarray:
        """(K,) bool: the bootstrap interval contains the exact value."""
        return (self.log_interval[0] <= self.log_exact) & (self.log_exact <= self.log_interval[1])


def compare_mbar(
    problem: Problem,
    runs,
    *,
    tokens: int,
    rng: np.random.Generator,
    settings: reweighting.Settings = reweighting.Settings(),
    label: str = "TPS + MBAR",
    warn: bool = True,
) -> tuple[PartitionComparison, TailComparison, reweighting.Analysis]:
    """:func:`rarelib.reweighting.analyze` of ``runs`` on unit bins, compared with the exact answers.

    tokens: the budget the runs cost (:func:`rarelib.diagnostics.generated_tokens`, counted before any thinning);
    warn: raise the analysis's messages as warnings (they are in ``analysis.messages`` either way).
    """
    support = problem.exact.values
    edges = np.arange(support[0] - 0.5, support[-1] + 1.0)
    analysis = reweighting.analyze(runs, edges, rng=rng, thresholds=problem.thresholds, settings=settings, warn=warn)
    biased = analysis.states != 0.0  # log Z(0) = 0 by definition, not an estimate
    estimate = analysis.partition_function
    partition = PartitionComparison(
        analysis.states[biased],
        problem.exact_log_partition(analysis.states[biased]),
        estimate.log[biased],
        estimate.log_interval[:, biased],
        analysis.log_z_std[biased],
    )
    tails = TailComparison(
        estimator=label,
        tokens=tokens,
        thresholds=problem.thresholds,
        log10_exact=problem.exact.log_prob_at_least(problem.thresholds) / LOG10,
        estimate=analysis.upper_tail,
    )
    return partition, tails, analysis


def compare_direct(problem: Problem, run, level: float = diagnostics.DEFAULT_LEVEL) -> TailComparison:
    """Tails of a direct run: counts / n with Wilson intervals, against the exact values."""
    return TailComparison(
        estimator="direct",
        tokens=diagnostics.generated_tokens(run),
        thresholds=problem.thresholds,
        log10_exact=problem.exact.log_prob_at_least(problem.thresholds) / LOG10,
        estimate=diagnostics.direct_tail(run.posterior["phi"].values.ravel(), problem.thresholds, "upper", level),
    )


# --------------------------------------------------------------------------- the whole check


@dataclass(frozen=True)
class Validation:
    """One sampler against the exact answers, and direct sampling with the same token budget.

    partition, tails: TPS + MBAR; direct: the direct-sampling baseline; analysis: the full
    :class:`rarelib.reweighting.Analysis` (overlap, R-hat, acceptance, messages).
    """

    sampler: str
    partition: PartitionComparison
    tails: TailComparison
    direct: TailComparison
    analysis: reweighting.Analysis

    def to_dict(self) -> dict:
        """JSON-ready summary and tables (non-finite numbers become None)."""
        summary = {
            "sampler": self.sampler,
            "tokens": self.tails.tokens,
            "direct_tokens": self.direct.tokens,
            "coverage": self.tails.coverage,
            "thresholds_with_data": int(self.tails.has_data.sum()),
            **_deepest(self.tails, "deepest"),
            "direct_coverage": self.direct.coverage,
            **_deepest(self.direct, "direct_deepest"),
            "max_abs_log_z_error": float(np.max(np.abs(self.partition.error), initial=0.0)),
            "log_z_covered": int(self.partition.covered.sum()),
            "dropped_biases": [lam for _, lam, _ in self.analysis.dropped],
            "messages": list(self.analysis.messages),
        }
        partition = {name: getattr(self.partition, name) for name in ("biases", "log_exact", "log_estimate", "log_std")}
        partition["log_interval"] = self.partition.log_interval
        tables = {"partition": partition, "tails": _tail_dict(self.tails), "direct": _tail_dict(self.direct)}
        return json_ready({**summary, **tables})


def _deepest(tails: TailComparison, prefix: str) -> dict:
    """Threshold, exact log10 tail and log10 ratio at the deepest threshold with data (None if there is none)."""
    index = tails.deepest
    values = (tails.thresholds, tails.log10_exact, tails.log10_ratio)
    names = ("threshold", "log10_exact", "log10_ratio")
    return {f"{prefix}_{name}": None if index < 0 else float(array[index]) for name, array in zip(names, values)}


def _tail_dict(tails: TailComparison) -> dict:
    fields = ("thresholds", "log10_exact", "log10_estimate", "log10_interval", "covered", "has_data")
    return {"tokens": tails.tokens, **{name: getattr(tails, name) for name in fields}}


def json_ready(value):
    """Arrays → lists, numpy scalars → Python, non-finite floats → None, recursively."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def thin_draws(run, every: int):
    """The run with every ``every``-th draw of each segment kept (draw axis only), for a cheaper bootstrap."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"thin must be a positive integer (1 keeps every draw); got {every!r}")
    return run.isel(draw=slice(None, None, int(every)))


def validate(
    problem: Problem,
    biases: Sequence[float],
    *,
    sampler: str = "annealed_tps",
    n_steps: int,
    n_chains: int,
    n_direct: int,
    seed: int = 0,
    thin: int = 1,
    settings: reweighting.Settings = reweighting.Settings(),
    swap_every: int = 1,
    move: tps.Move = tps.FORWARD_SHOOTING,
    progress: bool = False,
    warn: bool = True,
) -> Validation:
    """Run ``sampler`` over ``biases`` plus ``n_direct`` direct samples at λ = 0, reweight, compare with exact.

    thin: keep every ``thin``-th draw of the biased run for the analysis (successive TPS states are
    strongly correlated, so little is lost and the bootstrap's 100 MBAR solves get cheaper); the
    token budget counts every step. The baseline draws as many direct completions as TPS + MBAR
    drew tokens, divided by L. One seed drives everything through independent streams
    (``numpy.random.SeedSequence``): the biased run, the λ = 0 samples, the baseline, the bootstrap.
    warn: raise the analysis's messages as warnings (they are in ``analysis.messages`` either way).
    """
    biased_seed, zero_seed, baseline_seed, bootstrap_seed = np.random.SeedSequence(seed).generate_state(4)
    biased = sample_biased(
        problem,
        biases,
        sampler=sampler,
        n_steps=n_steps,
        n_chains=n_chains,
        seed=int(biased_seed),
        swap_every=swap_every,
        move=move,
        progress=progress,
    )
    at_zero = sample_direct(problem, n_direct, int(zero_seed), progress=progress)
    tokens = diagnostics.generated_tokens(biased) + diagnostics.generated_tokens(at_zero)
    partition, tails, analysis = compare_mbar(
        problem,
        [thin_draws(biased, thin), at_zero],
        tokens=tokens,
        rng=np.random.default_rng(bootstrap_seed),
        settings=settings,
        label=f"{sampler} + MBAR",
        warn=warn,
    )
    baseline = sample_direct(problem, tokens // problem.completion_length, int(baseline_seed), progress=progress)
    return Validation(sampler, partition, tails, compare_direct(problem, baseline), analysis)


# --------------------------------------------------------------------------- text tables


def format_table(validation: Validation) -> str:
    """The comparison as a plain-text table: log Z per state, then P(φ ≥ a) per threshold (log10)."""
    partition, tails, baseline = validation.partition, validation.tails, validation.direct
    lines = [
        f"log Z(λ) — {tails.estimator} vs exact (natural log; 96% bootstrap CI; pymbar σ)",
        f"{'λ':>9} {'exact':>10} {'estimate':>10} {'CI low':>10} {'CI high':>10} {'σ':>7} {'in CI':>5}",
    ]
    for row in zip(
        partition.biases,
        partition.log_exact,
        partition.log_estimate,
        *partition.log_interval,
        partition.log_std,
        partition.covered,
    ):
        lines.append("{:>9.4f} {:>10.4f} {:>10.4f} {:>10.4f} {:>10.4f} {:>7.4f} {:>5}".format(*row[:6], _mark(row[6])))
    lines += [
        "",
        f"log10 P(φ ≥ a) — {tails.estimator} ({tails.tokens:,} tokens) and direct ({baseline.tokens:,} tokens)",
        f"{'a':>4} {'exact':>7} | {'MBAR':>7} {'96% CI':>15} {'in':>3} {'ratio':>6} | "
        f"{'direct':>7} {'Wilson 96%':>15} {'in':>3} {'ratio':>6}",
    ]
    for index, threshold in enumerate(tails.thresholds):
        lines.append(
            f"{threshold:>4g} {tails.log10_exact[index]:>7.2f} | {_tail_cells(tails, index)} | "
            f"{_tail_cells(baseline, index)}"
        )
    lines += ["", _summary_line(tails), _summary_line(baseline)]
    return "\n".join(lines)


def _mark(flag: bool) -> str:
    return "yes" if flag else "NO"


def _tail_cells(tails: TailComparison, index: int) -> str:
    """Estimate, interval, covered, log10 ratio; the last two only where the estimator has data."""
    estimate, (low, high) = tails.log10_estimate[index], tails.log10_interval[:, index]
    if not np.isfinite(estimate):
        bound = f"≤ {high:.2f}" if np.isfinite(high) else "—"
        return f"{'—':>7} {bound:>15} {'':>3} {'':>6}"
    marks = (_mark(tails.covered[index]), f"{tails.log10_ratio[index]:+.2f}") if tails.has_data[index] else ("", "")
    return f"{estimate:>7.2f} {f'[{low:.2f}, {high:.2f}]':>15} {marks[0]:>3} {marks[1]:>6}"


def _summary_line(tails: TailComparison) -> str:
    if tails.deepest < 0:
        return f"{tails.estimator}: no threshold with data"
    return (
        f"{tails.estimator}: exact inside the 96% interval at {tails.covered[tails.has_data].sum()}/"
        f"{tails.has_data.sum()} thresholds with data ({100 * tails.coverage:.0f}%); smallest tail reached "
        f"P(φ ≥ {tails.thresholds[tails.deepest]:g}) = 10^{tails.log10_exact[tails.deepest]:.2f}, "
        f"log10(estimate/exact) = {tails.log10_ratio[tails.deepest]:+.2f}"
    )
