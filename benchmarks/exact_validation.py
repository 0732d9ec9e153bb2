"""Exact validation: annealed TPS + MBAR (and parallel tempering) against a solvable model's exact tails.

The model (:func:`rarelib.validation.repetition_loop_lm`): an order-1 Markov LM over 5 tokens whose
token 0 is a repetition loop — it follows itself with probability 0.1 and any other token with
probability 0.005; the other rows are random (Dirichlet). Prompt "bca" ends in the loop token;
φ = the number of loop tokens in a completion of 14 tokens. Under direct sampling
P(φ ≥ a) falls roughly like 0.1^a: P(φ ≥ 13) ≈ 1.6e-13, P(φ = 14) = 1e-14, far beyond the ~1e-7
that direct sampling with the same token budget can see. The exact law comes from
:func:`rarelib.exact.exact_distribution`.

The samplers run unchanged through the ``CausalLM`` interface: a bias ladder chosen by
:func:`rarelib.validation.bias_ladder` from the exact tilted means (one tilted standard deviation
apart, up to ⟨φ⟩ = 3: under every tilt the loop length stays roughly geometric, so the last bias
still puts about 1% of its samples at φ ≥ 13), TPS over it, direct samples as
λ = 0, MBAR with the paper's settings (10% burn-in, R-hat < 1.1, 100-replica chain bootstrap, 96%
intervals). Acceptance (per sampler): the exact value inside the 96% interval at ≥ 90% of the
thresholds where TPS + MBAR has data, and |log10(estimate/exact)| ≤ 0.3 at the smallest tail it
reaches, which must be ≤ 1e-12. Writes benchmarks/results/exact_validation.json.

    python benchmarks/exact_validation.py                      # both samplers: 6–10 min on 2 shared cores
    python benchmarks/exact_validation.py --samplers annealed_tps --steps 5000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from rarelib import exact, reweighting, validation

RESULTS = Path(__file__).resolve().parent / "results" / "exact_validation.json"
MIN_COVERAGE = 0.9
MAX_DEEPEST_LOG10 = -12.0
MAX_ABS_LOG10_RATIO = 0.3


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=5)
    parser.add_argument("--stay", type=float, default=0.1, help="probability that the loop token follows itself")
    parser.add_argument("--entry", type=float, default=0.005, help="probability that it follows any other token")
    parser.add_argument("--model-seed", type=int, default=1)
    parser.add_argument("--prompt", default="bca", help="text over the symbols a (loop), b, c, d, e")
    parser.add_argument("--length", type=int, default=14, help="completion length L")
    parser.add_argument("--target-mean", type=float, default=3.0, help="⟨φ⟩ at the last bias of the ladder")
    parser.add_argument("--spacing", type=float, default=1.0, help="ladder spacing in tilted standard deviations")
    parser.add_argument("--samplers", nargs="+", default=list(validation.SAMPLERS), choices=validation.SAMPLERS)
    parser.add_argument("--steps", type=int, default=20000, help="draws per bias and chain")
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--direct", type=int, default=20000, help="direct samples used as the λ = 0 state")
    parser.add_argument("--thin", type=int, default=20, help="keep every thin-th TPS draw for MBAR")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def acceptance(summary: dict) -> dict:
    """The issue's acceptance criteria, each with its measured value."""
    deepest = summary["deepest_log10_exact"]
    ratio = summary["deepest_log10_ratio"]
    checks = {
        "coverage_at_least_0.9": summary["coverage"] >= MIN_COVERAGE,
        "deepest_tail_at_most_1e-12": deepest is not None and deepest <= MAX_DEEPEST_LOG10,
        "deepest_abs_log10_ratio_at_most_0.3": ratio is not None and abs(ratio) <= MAX_ABS_LOG10_RATIO,
    }
    return {**checks, "passed": all(checks.values())}


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(), "python": platform.python_version(), "platform": platform.platform(),
        **{package: version(package) for package in ("numpy", "scipy", "torch", "pymbar", "arviz", "rarelib")},
    }


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)
    info = machine()
    model = validation.repetition_loop_lm(args.vocab_size, args.stay, args.entry, np.random.default_rng(args.model_seed),
                                          name=f"loop-v{args.vocab_size}-s{args.model_seed}")
    problem = validation.Problem(model, args.prompt, args.length, exact.AdditiveObservable("token_count", {0}))
    ladder = validation.bias_ladder(problem.exact_tilted_mean, args.target_mean, args.spacing)
    print(f"model {model.name}: stay={args.stay}, entry={args.entry}; prompt {args.prompt!r}, L={args.length}, "
          f"φ = count of {model.symbols[0]!r}; ⟨φ⟩_0 = {float(problem.exact_tilted_mean(0.0)):.3f}")
    means = problem.exact_tilted_mean(ladder)
    print(f"ladder λ = {np.round(ladder, 4).tolist()}, ⟨φ⟩_λ = {np.round(means, 2).tolist()}\n")
    results = []
    for sampler in args.samplers:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", reweighting.ReweightingWarning)  # printed below from analysis.messages
            outcome = validation.validate(problem, ladder, sampler=sampler, n_steps=args.steps, n_chains=args.chains,
                                          n_direct=args.direct, seed=args.seed, thin=args.thin)
        seconds = time.perf_counter() - start
        summary = outcome.to_dict()
        checks = acceptance(summary)
        segments = outcome.analysis.segments
        results.append({**summary, "acceptance": checks, "seconds": seconds, "segment_bias": segments.bias,
                        "rhat": segments.rhat_rank, "acceptance_rate": segments.acceptance})
        print(validation.format_table(outcome))
        for message in outcome.analysis.messages:
            print("  note:", message)
        print(f"acceptance: {'PASSED' if checks['passed'] else 'FAILED'} {checks} ({seconds:.0f} s)\n", flush=True)
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    report = {"benchmark": "exact_validation", "settings": settings, "ladder": ladder,
              "exact_log10_tail": problem.exact.log_prob_at_least(problem.thresholds) / np.log(10),
              "thresholds": problem.thresholds, "machine": info, "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(validation.json_ready(report), indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
