"""The one call against a large direct sample of the embedded model (issue #18): does :func:`rarelib.estimate`
agree with direct sampling wherever that sample has at least 10 events?

Per tail — ARI ≥ a and Log-Prob ≤ a after the book's prompt — in four stages:

1. **Direct sample.** ``--direct`` completions (default 2·10^5, 1.3·10^7 tokens), one sample for both
   tails, are streamed to the work folder in batches (:func:`rarelib.direct.sample`). Its ARI values are
   recorded; its Log-Prob values are the sums of the stored per-token log-probabilities, as
   :func:`rarelib.observables.logprob` computes them. An interrupted run keeps every finished batch.
   The sample has a random stream of its own, apart from the estimate's.
2. **Thresholds.** They come from that sample: its quantiles at tail probabilities 10^-1, 10^-2, … as long
   as ≥ 10 events lie beyond, then ``--beyond`` more at the same spacing, where direct sampling sees nothing
   (ARI's stop at its cap).
3. **The one call.** :func:`rarelib.estimate` runs at ``--budget`` tokens (default 10^7), with a checkpoint
   in the work folder, so a larger budget continues it.
4. **Agreement.** At each threshold with ≥ 10 direct events, this checks whether the estimate's interval
   overlaps direct sampling's Wilson interval. The honest interval is ``[0, 1]`` where unresolved, so it
   always overlaps there; the raw MBAR interval is checked too. The number that must be about 0 is
   *disagree*: resolved thresholds whose intervals do not overlap.

Output: a table and ``benchmarks/results/estimate_agreement.json``, written after each tail. Hours at the
defaults; resumable: run it again. ``--quick`` (``make bench``): 2·10^4 completions and 10^6 tokens per
tail, into ``estimate_agreement_quick.json``. ``--smoke``: a tiny sample and budget with 8-token
completions, to check that the script works.
"""

from __future__ import annotations

import math
from pathlib import Path

import common
import numpy as np

from rarelib import diagnostics, direct, estimation, models, reweighting
from rarelib import observables as obs

RESULTS = common.RESULTS_DIR / "estimate_agreement.json"
WORK = Path(__file__).resolve().parent.parent / "build" / "estimate_agreement"
TAILS = {"ari": "upper", "logprob": "lower"}
MIN_EVENTS = 10
DIRECT_STREAM = 0xD1  # the direct sample's random stream, apart from the estimate's
PROFILES = {
    "default": dict(
        direct=200_000, budget=1e7, length=64, pilot=2000, chains=16, first_steps=100, ladder_steps=40, n_bootstrap=100
    ),
    "quick": dict(
        direct=20_000, budget=1e6, length=64, pilot=2000, chains=16, first_steps=100, ladder_steps=40, n_bootstrap=100
    ),
    "smoke": dict(
        direct=100, budget=6e3, length=8, pilot=100, chains=2, first_steps=10, ladder_steps=5, n_bootstrap=10
    ),
}


def thresholds_from(phi: np.ndarray, side: str, beyond: int, cap: float = math.inf) -> np.ndarray:
    """Thresholds (A,) ascending: the quantiles of phi (N,) at tail probabilities 10^-1, 10^-2, … while at
    least MIN_EVENTS samples lie beyond, then ``beyond`` more at the spacing of the last two (1 where there is
    one quantile), none past ``cap``."""
    depths = 10.0 ** -np.arange(1, max(1, math.floor(math.log10(phi.size / MIN_EVENTS))) + 1)
    quantiles = np.quantile(phi, 1.0 - depths if side == "upper" else depths)
    outward = 1.0 if side == "upper" else -1.0
    step = quantiles[-1] - quantiles[-2] if quantiles.size > 1 and quantiles[-1] != quantiles[-2] else outward
    further = quantiles[-1] + step * np.arange(1, beyond + 1)
    return np.unique(np.minimum(np.concatenate([quantiles, further]), cap))


def events(phi: np.ndarray, thresholds: np.ndarray, side: str) -> np.ndarray:
    """Samples at or beyond each threshold, (A,) int."""
    beyond = phi[:, None] >= thresholds if side == "upper" else phi[:, None] <= thresholds
    return beyond.sum(axis=0)


def overlap(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Whether two log intervals (2, A) overlap, (A,) bool."""
    return np.maximum(first[0], second[0]) <= np.minimum(first[1], second[1])


def compare(answer: estimation.Estimate, phi: np.ndarray) -> list[dict]:
    """One row per threshold: direct events and tail, the estimate's raw and honest intervals, overlaps."""
    direct = diagnostics.direct_tail(phi, answer.thresholds, side=answer.side)
    counts = events(phi, answer.thresholds, answer.side)
    honest = overlap(answer.tail.log_interval, direct.log_interval)
    raw = overlap(answer.raw.log_interval, direct.log_interval)
    return [
        {
            "threshold": float(a),
            "direct_events": int(n),
            "checked": bool(n >= MIN_EVENTS),
            "log10_direct": float(direct.log10[k]),
            "log10_direct_interval": (direct.log_interval[:, k] / math.log(10.0)).tolist(),
            "log10_estimate": float(answer.raw.log10[k]),
            "log10_raw_interval": (answer.raw.log_interval[:, k] / math.log(10.0)).tolist(),
            "resolved": bool(answer.resolved[k]),
            "overlap_honest": bool(honest[k]),
            "overlap_raw": bool(raw[k]),
        }
        for k, (a, n) in enumerate(zip(answer.thresholds, counts))
    ]


def summary(rows: list[dict], answer: estimation.Estimate) -> dict:
    checked = [row for row in rows if row["checked"]]
    resolved = [row["log10_estimate"] for row in rows if row["resolved"]]
    return {
        "thresholds": len(rows),
        "checked": len(checked),
        "resolved_checked": sum(row["resolved"] for row in checked),
        "disagree": sum(row["resolved"] and not row["overlap_honest"] for row in checked),
        "raw_disagree": sum(not row["overlap_raw"] for row in checked),
        "deepest_resolved_log10": min(resolved) if resolved else None,
        "tokens": answer.tokens,
        "converged": answer.converged,
        "rounds": len(answer.history),
    }


def table(results: dict) -> str:
    columns = [("tail", "s"), ("checked", "d"), ("resolved", "d"), ("disagree", "d"), ("raw disagree", "d")]
    columns += [("deepest resolved (log10)", ".1f"), ("tokens", ".3g"), ("converged", "")]
    keys = ("checked", "resolved_checked", "disagree", "raw_disagree", "deepest_resolved_log10", "tokens", "converged")
    return common.format_table(columns, [(name, *(r["summary"][key] for key in keys)) for name, r in results.items()])


def arguments():
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--model", default="default", help="model folder or cached hub id (default: embedded)")
    parser.add_argument("--direct", type=int, help="direct completions per tail (default 2e5)")
    parser.add_argument("--budget", type=float, help="tokens of each estimate (default 1e7)")
    parser.add_argument("--beyond", type=int, default=3, help="thresholds past the direct sample's reach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=WORK, help="folder of the samples and checkpoints (resumable)")
    parser.add_argument("--quick", action="store_true", help="2e4 completions and 1e6 tokens a tail (make bench)")
    args = parser.parse_args()
    args.profile = "smoke" if args.smoke else "quick" if args.quick else "default"
    if args.profile != "default" and args.output == RESULTS:
        args.output = RESULTS.with_stem(f"estimate_agreement_{args.profile}")
    for key, value in PROFILES[args.profile].items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.smoke and args.work == WORK:  # a smoke run starts afresh
        args.work = common.scratch_folder("estimate-agreement-smoke-")
    return args


def direct_values(lm, args) -> dict[str, np.ndarray]:
    """Both tails' observable on one direct sample of ``args.direct`` completions: name → (N,) float64."""
    folder = args.work / f"direct-{args.length}tokens-{args.direct}-seed{args.seed}"
    seed = int(np.random.SeedSequence([args.seed, DIRECT_STREAM]).generate_state(1)[0])
    direct.sample(
        lm,
        common.PAPER_PROMPT,
        args.direct,
        args.length,
        observables=["ari"],
        seed=seed,
        batch_size=256,
        progress=not args.smoke,
        out=folder,
    )
    sample = direct.load(folder)
    return {"ari": sample.observables["ari"], "logprob": sample.token_logprobs.astype(np.float64).sum(axis=1)}


def main() -> None:
    args = arguments()
    machine = common.start(args)
    lm = models.load(args.model)
    values = direct_values(lm, args)
    results = {}
    for name, side in TAILS.items():
        folder = args.work / f"{name}-{args.length}tokens-direct{args.direct}-seed{args.seed}"
        phi = values[name]
        cap = obs.ARI_CAP if name == "ari" else math.inf
        answer = estimation.estimate(
            lm,
            common.PAPER_PROMPT,
            name,
            thresholds=thresholds_from(phi, side, args.beyond, cap),
            side=side,
            budget_tokens=args.budget,
            completion_length=args.length,
            n_chains=args.chains,
            pilot_samples=args.pilot,
            first_steps=args.first_steps,
            ladder_steps=args.ladder_steps,
            settings=reweighting.Settings(rhat_threshold=math.inf, n_bootstrap=args.n_bootstrap),
            seed=args.seed,
            checkpoint=folder / "estimate",
            progress=not args.smoke,
        )
        print(answer.summary(), flush=True)
        rows = compare(answer, phi)
        results[name] = {"side": side, "direct_samples": int(phi.size), "summary": summary(rows, answer), "rows": rows}
        common.write_results(args.output, "estimate_agreement", vars(args), results, machine)
    print(table(results))


if __name__ == "__main__":
    main()
