"""The MBAR chapter's sampling at a profile's scale, as Dask tasks: ``make reproduce CLUSTER=...`` runs it first.

For each observable of the chapter's ``ladders`` (05_mbar: parameters cell, then profiles/<profile>/05_mbar.yaml):
``n_chains // 2`` replica sets of 2 chains on the observable's ladder (its book guide, ``n_steps`` steps) and
``n_zero`` direct samples (λ = 0) in tasks of 10 000, through :func:`rarelib.distributed.run` into
``<out>/<observable>``, then one MBAR analysis (``<out>/<observable>/analysis.nc``). Re-running resumes: finished
tasks are reused, interrupted ones continue from their checkpoints. The chapter notebooks do not read these
folders (yet): they still sample in-process.

    python scripts/reproduce_on_cluster.py --cluster local:2
    python scripts/reproduce_on_cluster.py --cluster slurm --jobs 4 --cores 8 --memory 16GiB --walltime 04:00:00
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from rarelib import distributed, params, reweighting, workflow

CHAPTER = "05_mbar"
DIRECT_PER_TASK = 10_000


def chapter_parameters(profile: str) -> dict:
    """The chapter's parameters: its defaults, updated by the profile's file when it has one."""
    values = params.defaults(CHAPTER)
    path = params.profile_file(CHAPTER, profile)
    values.update(yaml.safe_load(path.read_text()) if path else {})
    return values


def plans(values: dict) -> dict[str, distributed.Plan]:
    """Observable → the plan of its replica sets and direct samples."""
    return {
        observable: distributed.Plan(
            model=values["model"],
            prompt=values["prompt"],
            completion_length=values["completion_length"],
            observable=observable,
            biases=tuple(ladder),
            n_steps=values["n_steps"],
            n_chains=2,
            n_sets=max(1, values["n_chains"] // 2),
            n_direct=values["n_zero"],
            direct_per_task=DIRECT_PER_TASK,
            seed=values["seed"],
            swap_every=values["swap_every"],
            record=tuple(values["record"]),
            guide=values["guides"].get(observable),
            checkpoint_every=workflow.checkpoint_every(values["n_steps"]),
        )
        for observable, ladder in values["ladders"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", required=True, help=f"one of {distributed.CLUSTER_FORMS}")
    for option in distributed.SLURM_OPTIONS:
        parser.add_argument(f"--{option}", type=int if option in ("jobs", "cores") else str, help="with slurm")
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--out", type=Path, default=Path("_build/reproduce/cluster"))
    args = parser.parse_args()
    values = chapter_parameters(args.profile)
    settings = reweighting.Settings(
        n_bootstrap=values["n_bootstrap"], rhat_method=values["rhat_method"], rhat_threshold=values["rhat_threshold"]
    )
    options = {option: getattr(args, option) for option in distributed.SLURM_OPTIONS}
    client = distributed.make_client(args.cluster, **options)
    try:
        for observable, plan in plans(values).items():
            folder = args.out / observable
            distributed.run(plan, folder, client=client)
            runs = distributed.load_runs(folder)
            bins = reweighting.spanning_bins(values["n_bins"], *runs)
            analysis = reweighting.analyze(runs, bins, rng=np.random.default_rng(values["seed"]), settings=settings)
            analysis.save(folder / "analysis.nc")
            print(f"{observable}: {len(plan.tasks)} tasks in {folder}; analysis in {folder / 'analysis.nc'}")
    finally:
        client.close()
        if client.cluster is not None:
            client.cluster.close()  # a SLURM cluster outlives its client: cancel its jobs


if __name__ == "__main__":
    main()
