"""The convergence verdict: when a biased run's estimates can be trusted, rung by rung and threshold by threshold.

An MBAR analysis always returns numbers; this module says which of them rest on chains that have
converged. It judges every rung (every sampled bias λ) on current criteria (:class:`Criteria`):

- rank-normalised split R-hat < 1.01 and bulk- and tail-ESS ≥ 400 (Vehtari et al. 2021), computed
  by ArviZ after burn-in; with over-dispersed starts (``start="overdispersed"`` in :mod:`rarelib.tps`)
  half of the chains approach each rung from beyond its tilted law, so R-hat sees a lag that chains
  all started from p_M would share, and hide;
- move acceptance ≥ 1% (a frozen chain has an undefined or meaningless R-hat);
- replica-swap acceptance ≥ 10% with the neighbouring rung towards λ = 0, for parallel tempering;
- overlap ≥ 0.03 with the neighbouring MBAR state towards λ = 0, and the rung kept by the analysis
  (not dropped by the R-hat filter or beyond an overlap gap).

A tail estimate P(φ ≥ a) rests on the states whose samples carry its MBAR weight
(:func:`rarelib.reweighting.tail_shares`), and through MBAR's normalisers on every rung between
them and λ = 0. Threshold a is **resolved** when its interval excludes 0 (samples reach a in
every bootstrap replica), every rung from λ = 0 outward until the states beyond carry less than
10% of its weight passes, and the estimate is stable: its interval overlaps the one of an
earlier analysis (the previous round, or the first half of every chain). An unresolved
threshold keeps its point estimate but loses its interval:
:meth:`Verdict.tail` reports it as [0, 1], never as a narrow interval.

Letters: K states or rungs, A thresholds, S segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rarelib import diagnostics, logspace
from rarelib.reweighting import Analysis, neighbour_overlap

__all__ = ["assess", "Criteria", "rung_table", "RungTable", "Verdict"]


@dataclass(frozen=True)
class Criteria:
    """Thresholds of the verdict (defaults: Vehtari et al. 2021 for R-hat and ESS).

    max_share_beyond: a tail estimate rests on the states from λ = 0 outward until those beyond carry
    less than this share of its weight (a heuristic: rungs that carry under 10% of an estimate move it
    little even when their own samples are off).
    """

    max_rhat: float = 1.01
    min_ess_bulk: float = 400.0
    min_ess_tail: float = 400.0
    min_acceptance: float = 0.01
    min_swap_acceptance: float = 0.1
    min_overlap: float = 0.03
    max_share_beyond: float = 0.1

    def __post_init__(self):
        if not self.max_rhat > 1.0:
            raise ValueError(f"max_rhat={self.max_rhat!r}; use a number above 1, e.g. 1.01")
        for name in ("min_ess_bulk", "min_ess_tail"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; use a number ≥ 0, e.g. 400")
        for name in ("min_acceptance", "min_swap_acceptance", "min_overlap", "max_share_beyond"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)!r}; use a number in [0, 1)")


@dataclass(frozen=True)
class RungTable:
    """Every sampled rung of the analysis and its criteria, sorted by λ: each field (K,).

    swap_acceptance / overlap: with the neighbouring rung (MBAR state) towards λ = 0, the link that
    joins the rung to the rest of the ladder (NaN where none: the rung at λ = 0, or no swaps);
    failures: the failed criteria in words, '' for a rung that passes.
    """

    bias: np.ndarray
    rhat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    acceptance: np.ndarray
    swap_acceptance: np.ndarray
    overlap: np.ndarray
    kept: np.ndarray
    failures: np.ndarray

    @property
    def passes(self) -> np.ndarray:
        """(K,) bool: the rung meets every criterion."""
        return self.failures == ""


@dataclass(frozen=True)
class Verdict:
    """The verdict on one tail of an analysis.

    converged: every rung passes; rungs: the per-rung table; side: "upper" or "lower";
    thresholds (A,); resolved (A,) bool; reasons (A,) str, '' where resolved;
    estimate: the analysis's tail as computed (its intervals as if every threshold were resolved).
    """

    converged: bool
    rungs: RungTable
    side: str
    thresholds: np.ndarray
    resolved: np.ndarray
    reasons: np.ndarray
    estimate: logspace.LogEstimate

    @property
    def complete(self) -> bool:
        """Every rung passes and every threshold is resolved."""
        return self.converged and bool(self.resolved.all())

    @property
    def tail(self) -> logspace.LogEstimate:
        """The tail to report: unresolved thresholds keep their estimate, with the interval [0, 1]."""
        lower = np.where(self.resolved, self.estimate.log_interval[0], -np.inf)
        upper = np.where(self.resolved, self.estimate.log_interval[1], 0.0)
        return logspace.LogEstimate(self.estimate.log, np.stack([lower, upper]))

    @property
    def failures(self) -> list[str]:
        """Every failed rung criterion, one line each."""
        return [f"λ={lam:g}: {why}" for lam, why in zip(self.rungs.bias, self.rungs.failures) if why]

    def summary(self) -> str:
        """The verdict as text: the headline, the failed rungs and the thresholds with their status."""
        symbol = logspace.SIDES[self.side]
        head = "converged" if self.converged else f"NOT converged ({len(self.failures)} rungs fail)"
        lines = [f"verdict: {head}; {int(self.resolved.sum())} of {self.resolved.size} thresholds resolved"]
        lines += [f"  {line}" for line in self.failures]
        tail = self.tail
        for a, log10, bounds, why in zip(self.thresholds, tail.log10, tail.log10_interval.T, self.reasons):
            status = "resolved" if not why else f"UNRESOLVED: {why}"
            lines.append(f"  P(φ {symbol} {a:g}) = 10^{log10:.2f}  [10^{bounds[0]:.2f}, 10^{bounds[1]:.2f}]  {status}")
        return "\n".join(lines)


def _by_outer_rung(left: np.ndarray, right: np.ndarray, values: np.ndarray) -> dict[float, float]:
    """Pair values (P,) of neighbouring biases (left[p], right[p]), keyed by the member further from λ = 0
    (the lowest value where pairs repeat): what links that rung to the rest of the ladder inward."""
    by_rung: dict[float, float] = {}
    for a, b, value in zip(left, right, values):
        outer = float(a if abs(a) > abs(b) else b)
        by_rung[outer] = min(float(value), by_rung.get(outer, np.inf))
    return by_rung


def _swap_rates(runs: Sequence) -> dict[float, float]:
    """Swap acceptance between neighbouring rungs of every tempering run, keyed by the outer rung."""
    rates: dict[float, float] = {}
    for run in runs:
        if "sample_stats" not in run.groups() or "swap_attempted" not in run.sample_stats:
            continue
        biases = np.asarray(run.posterior["bias"].values, dtype=np.float64)
        for lam, rate in _by_outer_rung(biases[:-1], biases[1:], diagnostics.swap_acceptance(run)).items():
            rates[lam] = min(rate, rates.get(lam, np.inf))
    return rates


def _overlaps(analysis: Analysis) -> dict[float, float]:
    """Overlap of every MBAR state with its neighbour towards λ = 0, keyed by the state."""
    pairs = neighbour_overlap(analysis.samples_per_state, analysis.overlap)
    return _by_outer_rung(analysis.states[:-1], analysis.states[1:], pairs)


def rung_table(analysis: Analysis, criteria: Criteria, runs: Sequence = ()) -> RungTable:
    """Criteria of every biased rung of ``analysis`` (segments from direct runs are i.i.d. and exempt).

    runs: the analysed runs (InferenceData) for swap acceptance; without them it is not checked.
    """
    s = analysis.segments
    biased = ~analysis.segment_direct
    biases = np.unique(s.bias[biased])
    overlaps, swaps = _overlaps(analysis), _swap_rates(runs)
    overlap = np.array([overlaps.get(float(lam), np.nan) for lam in biases])
    swap = np.array([swaps.get(float(lam), np.nan) for lam in biases])
    columns: dict[str, list] = {name: [] for name in ("rhat", "ess_bulk", "ess_tail", "acceptance", "kept", "failures")}
    for lam, rung_overlap, rung_swap in zip(biases, overlap, swap):
        mine = biased & (s.bias == lam)
        row = {
            "rhat": np.max(s.rhat_rank[mine]),
            "ess_bulk": np.sum(s.ess_bulk[mine]),
            "ess_tail": np.sum(s.ess_tail[mine]),
            "acceptance": np.mean(s.acceptance[mine]),
            "kept": bool(analysis.segment_kept[mine].all()),
        }
        checks = [
            (not row["rhat"] < criteria.max_rhat, f"R-hat {row['rhat']:.3f} ≥ {criteria.max_rhat}"),
            (
                not row["ess_bulk"] >= criteria.min_ess_bulk,
                f"bulk ESS {row['ess_bulk']:.0f} < {criteria.min_ess_bulk:g}",
            ),
            (
                not row["ess_tail"] >= criteria.min_ess_tail,
                f"tail ESS {row['ess_tail']:.0f} < {criteria.min_ess_tail:g}",
            ),
            (
                row["acceptance"] < criteria.min_acceptance,
                f"acceptance {row['acceptance']:.3f} < {criteria.min_acceptance}",
            ),
            (
                rung_swap < criteria.min_swap_acceptance,
                f"swap acceptance inward {rung_swap:.3f} < {criteria.min_swap_acceptance}",
            ),
            (rung_overlap < criteria.min_overlap, f"overlap inward {rung_overlap:.3g} < {criteria.min_overlap}"),
            (not row["kept"], "dropped by the analysis (R-hat filter or overlap gap)"),
        ]
        row["failures"] = "; ".join(message for failed, message in checks if failed)
        for name, value in row.items():
            columns[name].append(value)
    return RungTable(
        bias=biases,
        swap_acceptance=swap,
        overlap=overlap,
        **{name: np.asarray(values) for name, values in columns.items()},
    )


def _support(states: np.ndarray, shares: np.ndarray, beyond: float) -> np.ndarray:
    """The states an estimate rests on: from λ = 0 outward until those beyond carry less than ``beyond``
    of its weight. states, shares: (K,) → (K',)."""
    order = np.argsort(np.abs(states), kind="stable")
    carried = np.cumsum(np.nan_to_num(shares[order]))
    return states[order[: int(np.searchsorted(carried, 1.0 - beyond - 1e-12)) + 1]]


def _threshold_reasons(
    analysis: Analysis, previous: Analysis, rungs: RungTable, side: str, criteria: Criteria
) -> np.ndarray:
    """(A,) why each threshold is unresolved, '' where it is resolved."""
    estimate = getattr(analysis, f"{side}_tail")
    shares = getattr(analysis, f"{side}_tail_share")
    stable = estimate.overlaps(getattr(previous, f"{side}_tail"))
    reasons = []
    for index in range(analysis.thresholds.size):
        if not estimate.resolved[index]:
            reasons.append("too few samples reach it (its interval includes 0)")
            continue
        support = _support(analysis.states, shares[:, index], criteria.max_share_beyond)
        low, high = min(0.0, support.min()), max(0.0, support.max())
        needed = (rungs.bias >= low) & (rungs.bias <= high) & ~rungs.passes
        failing = ", ".join(f"{b:g}" for b in rungs.bias[needed])
        why = [f"rests on failing rungs λ = {failing}"] if needed.any() else []
        why += [] if stable[index] else ["changed beyond its interval since the previous analysis"]
        reasons.append("; ".join(why))
    return np.array(reasons, dtype=object)


def assess(
    analysis: Analysis, previous: Analysis, *, side: str = "upper", criteria: Criteria = Criteria(), runs: Sequence = ()
) -> Verdict:
    """The verdict on ``analysis``'s ``side`` tail.

    previous: an analysis of less of the same data at the same thresholds — the previous round, or the
    first halves (:func:`rarelib.reweighting.first_half_comparison`) for a run of fixed length;
    runs: the analysed runs (InferenceData), for swap acceptance (omitted: not checked).
    """
    logspace.check_side(side)
    if not np.array_equal(analysis.thresholds, previous.thresholds):
        raise ValueError("previous was analysed at other thresholds; analyse both at the same thresholds")
    rungs = rung_table(analysis, criteria, runs)
    reasons = _threshold_reasons(analysis, previous, rungs, side, criteria)
    return Verdict(
        converged=bool(rungs.passes.all()),
        rungs=rungs,
        side=side,
        thresholds=analysis.thresholds,
        resolved=reasons == "",
        reasons=reasons,
        estimate=getattr(analysis, f"{side}_tail"),
    )
