"""Seed sweep: every chapter through papermill with seeds other than its default — the proxy for "another machine".

Floating-point results differ between CPUs, so on another machine a sampled chapter is another
realisation, exactly as with another seed. A chapter whose checks pass for every seed here
passes there too; a check that fails for some seed is a coin flip elsewhere.

Each (chapter, seed) runs as its own papermill process, two at a time on two cores, and its
outcome is written to the JSON file as soon as it ends, so the sweep resumes where it stopped:
an entry is re-run only when it is missing, or when the chapter or a library module it runs
(followed through the library's own imports) changed since it was computed (``--rerun-failed`` also
retries failures). The chapters' sampled runs are cached in
``_build/runs`` (rarelib.workflow), so chapters sharing a seed share their runs.

    python benchmarks/seed_sweep.py                      # chapters 00–12, seeds 1–8
    python benchmarks/seed_sweep.py --chapters 05 06 --seeds 3 4
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import common
import nbformat

from rarelib import params

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DEFAULT_SEEDS = tuple(range(1, 9))
OUTPUT = common.RESULTS_DIR / "seed_sweep.json"


def chapter_notebooks(prefixes: list[str] | None) -> list[Path]:
    """The chapters' notebooks, all or those whose names start with one of ``prefixes`` ("05", "05_mbar")."""
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not prefixes:
        return notebooks
    chosen = [path for path in notebooks if any(path.stem.startswith(prefix) for prefix in prefixes)]
    unknown = [prefix for prefix in prefixes if not any(path.stem.startswith(prefix) for path in notebooks)]
    if unknown:
        raise SystemExit(
            f"--chapters: no chapter starts with {unknown}; the chapters are {[path.stem for path in notebooks]}"
        )
    return chosen


def failing_error(executed: Path) -> str | None:
    """ "Name: message" of the first error output in an executed notebook (None if it has none or is unreadable)."""
    try:
        notebook = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return None
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"{output['ename']}: {output['evalue']}"[:500]
    return None


def run_chapter(notebook: Path, seed: int, parameters: list[list[str]], out_dir: Path, timeout: float) -> dict:
    """Execute one chapter with ``seed`` (and raw papermill ``parameters`` [[name, value], ...]) in a fresh
    process: pass/fail, the error, wall seconds."""
    executed = out_dir / f"{notebook.stem}-seed{seed}.ipynb"
    known = params.defaults(notebook.stem)  # a chapter refuses parameters it does not have (chapter 12: no seed)
    given = ([["seed", str(seed)]] if "seed" in known else []) + [pair for pair in parameters if pair[0] in known]
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(notebook),
        str(executed),
        "-k",
        "python3",
        "--cwd",
        str(NOTEBOOKS),
        "--no-progress-bar",
        *[flag for name, value in given for flag in ("-p", name, value)],
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = params.chapter_fingerprint(notebook.stem)  # of the code as the run starts
    started = time.perf_counter()
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
        returncode, tail = finished.returncode, finished.stderr[-2000:]
    except subprocess.TimeoutExpired:
        returncode, tail = None, f"timed out after {timeout:.0f} s"
    error = None if returncode == 0 else (failing_error(executed) or tail.strip().splitlines()[-1:] or ["?"])
    return {
        "chapter": notebook.stem,
        "seed": seed,
        "passed": returncode == 0,
        "error": error if isinstance(error, str) or error is None else error[0],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "code": code,
        "parameters": parameters,
    }


def load_outcomes(path: Path) -> dict[str, dict]:
    """The outcomes already in ``path``, keyed "chapter/seed" (empty if there is no such file)."""
    if not path.exists():
        return {}
    report = json.loads(path.read_text())
    return {f"{row['chapter']}/{row['seed']}": row for row in report["results"]["outcomes"]}


def pending(
    notebooks: list[Path], seeds: list[int], parameters: list[list[str]], done: dict[str, dict], rerun_failed: bool
) -> list[tuple]:
    """(notebook, seed) pairs without a current outcome, seed by seed so that chapters sharing runs meet."""
    fingerprints = {notebook: params.chapter_fingerprint(notebook.stem) for notebook in notebooks}
    jobs = []
    for seed in seeds:
        for notebook in notebooks:
            row = done.get(f"{notebook.stem}/{seed}")
            stale = row is None or row["code"] != fingerprints[notebook] or row["parameters"] != parameters
            if stale or (rerun_failed and not row["passed"]):
                jobs.append((notebook, seed))
    return jobs


def summary_rows(outcomes: dict[str, dict]) -> list[tuple]:
    """(chapter, seeds run, passed, current, slowest minutes, first failure) for the printed table."""
    rows = []
    for chapter in sorted({row["chapter"] for row in outcomes.values()}):
        mine = [row for row in outcomes.values() if row["chapter"] == chapter]
        current = params.chapter_fingerprint(chapter) if (NOTEBOOKS / f"{chapter}.ipynb").exists() else ""
        failures = [f"seed {row['seed']}: {row['error']}" for row in mine if not row["passed"]]
        rows.append(
            (
                chapter,
                len(mine),
                sum(row["passed"] for row in mine),
                sum(row["code"] == current for row in mine),
                max(row["wall_seconds"] for row in mine) / 60,
                (failures[0][:70] if failures else ""),
            )
        )
    return rows


def main() -> None:
    parser = common.parser(__doc__, OUTPUT)
    parser.add_argument("--chapters", nargs="*", help="chapter prefixes (default: every chapter)")
    parser.add_argument("--seeds", nargs="*", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--jobs", type=int, default=2, help="chapters run at once (default 2: one per core)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one chapter may take")
    parser.add_argument("--rerun-failed", action="store_true", help="also re-run current entries that failed")
    parser.add_argument(
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a raw papermill parameter for every chapter (e.g. --parameter model my-model)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.chapters, args.seeds, args.parameter = ["02"], [1], [["n_samples", "128"]]
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be a positive integer; got {args.jobs}")
    machine = common.start(args)
    notebooks = chapter_notebooks(args.chapters)
    outcomes = load_outcomes(args.output)
    jobs = pending(notebooks, args.seeds, args.parameter, outcomes, args.rerun_failed)
    out_dir = REPO / "_build" / "seed-sweep"
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(jobs)} chapter runs to do ({len(outcomes)} outcomes already in {args.output})", flush=True)
    settings = {
        "seeds": args.seeds,
        "jobs": args.jobs,
        "timeout_s": args.timeout,
        "smoke": args.smoke,
        "profile": "quick",
        "parameters": args.parameter,
    }
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(run_chapter, notebook, seed, args.parameter, out_dir, args.timeout) for notebook, seed in jobs
        ]
        for future in as_completed(futures):
            row = future.result()
            outcomes[f"{row['chapter']}/{row['seed']}"] = row
            print(
                f"{row['chapter']} seed {row['seed']}: {'passed' if row['passed'] else 'FAILED'} "
                f"in {row['wall_seconds'] / 60:.1f} min{'' if row['passed'] else ' — ' + str(row['error'])}",
                flush=True,
            )
            results = {"outcomes": sorted(outcomes.values(), key=lambda r: (r["chapter"], r["seed"]))}
            common.write_results(args.output, "seed_sweep", settings, results, machine)
    print(
        common.format_table(
            [
                ("chapter", "s"),
                ("runs", "d"),
                ("passed", "d"),
                ("current", "d"),
                ("slowest min", ".1f"),
                ("first failure", "s"),
            ],
            summary_rows(outcomes),
        )
    )


if __name__ == "__main__":
    main()
