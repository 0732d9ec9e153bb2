"""Throughput of rarelib's samplers against Hugging Face ``generate`` on one model, in one run.

For each completion length (default 64 and 100) and one batch (default 64 rows), measures new
tokens per second of

* ``generate (HF)``: ``model.generate(do_sample=True, top_k=0, temperature=1)``, prompt cache included;
* ``direct``: :func:`rarelib.direct.sample` (no observables);
* ``TPS proposals``: whole steps of a batch of chains at λ = 0 (:func:`rarelib.tps.build_kernel`,
  uniform cuts), counting the regrown tokens only;
* ``TPS, sentence-end guide`` and ``TPS, temperature guide``: the same with the chapters'
  guided moves (:func:`rarelib.workflow.guided_move`; the temperature guide keeps its
  normalisers for the 10 biases of the chapters' Log-Prob ladder): the price of a guide;
* ``scoring (ceiling)``: one teacher-forced forward (:func:`rarelib.generation.score`): what a
  sampler could reach if it needed no sequential decode steps;

and the fraction of the token positions fed to the model that were useful new tokens. All
contenders run in turn within each round (:func:`common.interleaved`), rounds repeated;
tables give the median and the min–max over rounds of rates per CPU-second of this process
(robust on a shared machine: with one thread they equal wall-clock rates on an idle one) and
per wall-second. Also TPS regrowth for several ``join_groups`` (the batching choice of
:mod:`rarelib.generation`), paired on identical proposals. Writes benchmarks/results/sampling.json.

    python benchmarks/sampling.py                 # the embedded default model (≈ 3 CPU-minutes)
    python benchmarks/sampling.py --model random  # a random GPT-Neo of the default model's size
    python benchmarks/sampling.py --smoke         # a few seconds
"""

from __future__ import annotations

import statistics

import common  # noqa: I001  (first: it starts the run's wall clock)
import torch

from rarelib import direct, generation, models, tps, workflow
from rarelib.storymodel.training import TrainingConfig

RESULTS = common.RESULTS_DIR / "sampling.json"
REFERENCE = "generate (HF)"
JOIN_GROUPS = (1, 4, 8, 16)
LOGPROB_LADDER = [-0.05, 0.0, 0.03, 0.06, 0.1, 0.14, 0.18, 0.23, 0.29, 0.36]  # the chapters' (05_mbar)


class CountingLM:
    """A CausalLM that forwards to ``lm`` and counts the token positions it is fed."""

    def __init__(self, lm):
        self.lm = lm
        self.positions = 0

    def __getattr__(self, name):
        return getattr(self.lm, name)

    def logits(self, input_ids, cache=None):
        self.positions += input_ids.numel()
        return self.lm.logits(input_ids, cache)


def load_model(name: str):
    """The model ``name``; ``"random"``: the default model's shape with random weights, one token per character."""
    if name == "random":
        shape = TrainingConfig()
        printable = "".join(chr(i) for i in range(32, 127))
        alphabet = printable + "".join(chr(0x4E00 + i) for i in range(shape.vocab_size - len(printable)))
        return models.random_model(
            "gpt-neo",
            alphabet=alphabet,
            context_length=shape.context_length,
            n_layer=shape.num_layers,
            n_embd=shape.hidden_size,
            n_head=shape.num_heads,
        )
    return models.load(name)


# Each measure_* returns (Seconds, new tokens, token positions fed to the model).


def measure_direct(lm, prompt_ids, batch, length):
    counting = CountingLM(lm)
    seconds, _ = common.timed(
        lambda: direct.sample(counting, prompt_ids, batch, length, observables=(), batch_size=batch, progress=False)
    )
    return seconds, batch * length, counting.positions


def measure_tps(lm, prompt_ids, batch, length, steps, generator, move=tps.FORWARD_SHOOTING):
    counting = CountingLM(lm)
    kernel = tps.build_kernel(counting, prompt_ids, length, "logprob", record=(), move=move, biases=LOGPROB_LADDER)
    state = kernel.init(batch, generator)
    counting.positions = 0

    def run():
        nonlocal state
        regrown = 0
        for _ in range(steps):
            state, info = kernel.step(state, 0.0, generator)
            regrown += int((length - info.cut).sum())
        return regrown

    seconds, regrown = common.timed(run)
    return seconds, regrown, counting.positions


def measure_scoring(lm, prompt_ids, completions):
    seconds, _ = common.timed(lambda: generation.score(lm, prompt_ids, completions, batch_size=len(completions)))
    return seconds, completions.numel(), completions.numel() + len(completions) * (len(prompt_ids) - 1)


def measure_generate(lm, prompt_ids, batch, length):
    inputs = prompt_ids.expand(batch, -1).to(lm.device)
    with torch.inference_mode():
        seconds, out = common.timed(
            lm.model.generate,
            inputs,
            attention_mask=torch.ones_like(inputs),
            do_sample=True,
            top_k=0,
            temperature=1.0,
            min_new_tokens=length,
            max_new_tokens=length,
            pad_token_id=lm.model.config.eos_token_id,
        )
    assert out.shape == (batch, len(prompt_ids) + length)
    return seconds, batch * length, batch * (len(prompt_ids) + length - 1)


def contenders(lm, prompt_ids, batch, length, tps_steps, generator) -> dict:
    """Name → a call that measures one round of that contender."""
    completions = torch.randint(0, lm.vocab_size, (batch, length), generator=generator)
    return {
        REFERENCE: lambda: measure_generate(lm, prompt_ids, batch, length),
        "direct": lambda: measure_direct(lm, prompt_ids, batch, length),
        "TPS proposals": lambda: measure_tps(lm, prompt_ids, batch, length, tps_steps, generator),
        "TPS, sentence-end guide": lambda: measure_tps(
            lm, prompt_ids, batch, length, tps_steps, generator, workflow.guided_move(lm, "sentence ends")
        ),
        "TPS, temperature guide": lambda: measure_tps(
            lm, prompt_ids, batch, length, tps_steps, generator, workflow.guided_move(lm, "temperature")
        ),
        "scoring (ceiling)": lambda: measure_scoring(lm, prompt_ids, completions),
    }


def summarize(measured: list) -> dict:
    """Rates per CPU- and wall-second (median, min, max over rounds) and the useful fraction of fed positions."""
    return {
        "tokens_per_cpu_s": common.spread([tokens / seconds.cpu for seconds, tokens, _ in measured]),
        "tokens_per_wall_s": common.spread([tokens / seconds.wall for seconds, tokens, _ in measured]),
        "useful_fraction": statistics.mean(tokens / positions for _, tokens, positions in measured),
        "tokens_per_round": statistics.mean(tokens for _, tokens, _ in measured),
    }


def with_ratios(results: dict) -> dict:
    """Add each contender's median rates divided by those of ``generate (HF)``, and paired per-round ratios."""
    reference = results[REFERENCE]
    for entry in results.values():
        for clock in ("cpu", "wall"):
            rates, base = entry[f"tokens_per_{clock}_s"], reference[f"tokens_per_{clock}_s"]
            entry[f"ratio_to_generate_{clock}"] = rates["median"] / base["median"]
            entry[f"paired_ratio_to_generate_{clock}"] = common.spread(
                [rate / one for rate, one in zip(rates["all"], base["all"])]
            )
    return results


def join_group_rounds(lm, prompt_ids, batch, length, rounds, generator) -> dict:
    """TPS regrowth tokens per CPU-second for each ``join_groups`` choice, the same proposals for every choice."""
    context = generation.encode_prompt(lm, prompt_ids)
    start = tps.build_kernel(lm, prompt_ids, length, "logprob", record=()).init(batch, generator)
    measured = {groups: [] for groups in JOIN_GROUPS}
    for _ in range(rounds):
        cuts = torch.randint(0, length, (batch,), generator=generator)
        uniforms = torch.rand((batch, length), generator=generator, dtype=torch.float64)
        for groups in JOIN_GROUPS:
            seconds, _ = common.timed(
                generation.regrow,
                lm,
                context,
                start.completions,
                start.token_logprobs,
                cuts,
                uniforms,
                join_groups=groups,
            )
            measured[groups].append(int((length - cuts).sum()) / seconds.cpu)
    return {
        str(groups): {
            "tokens_per_cpu_s": common.spread(rates),
            "paired_ratio_to_one_group": common.spread([r / one for r, one in zip(rates, measured[1])]),
        }
        for groups, rates in measured.items()
    }


def print_table(results: dict, length: int) -> None:
    columns = [
        ("L", "d"),
        ("method", "s"),
        ("tokens/CPU-s", ".0f"),
        ("min–max", "s"),
        ("× generate", ".2f"),
        ("tokens/wall-s", ".0f"),
        ("× generate", ".2f"),
        ("useful/fed", ".2f"),
    ]
    rows = [
        (
            length,
            name,
            entry["tokens_per_cpu_s"]["median"],
            f"{entry['tokens_per_cpu_s']['min']:.0f}–{entry['tokens_per_cpu_s']['max']:.0f}",
            entry["ratio_to_generate_cpu"],
            entry["tokens_per_wall_s"]["median"],
            entry["ratio_to_generate_wall"],
            entry["useful_fraction"],
        )
        for name, entry in results.items()
    ]
    print(common.format_table(columns, rows))


def main() -> None:
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument("--model", default="default", help="'default', a model folder or hub id, or 'random'")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 100], help="completion lengths L")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians and min–max are reported")
    parser.add_argument("--tps-steps", type=int, default=4, help="TPS steps per round")
    parser.add_argument(
        "--prompt",
        default=None,
        help="default: the chapters' prompt; its first 16 characters for --model random, whose tokens are characters",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.lengths, args.rounds, args.tps_steps = 4, [8], 1, 1
    machine = common.start(args)
    lm = load_model(args.model)
    prompt = args.prompt or (common.PAPER_PROMPT[:16] if args.model == "random" else common.PAPER_PROMPT)
    prompt_ids = generation.prompt_token_ids(lm, prompt)
    generator = torch.Generator().manual_seed(args.seed)
    calls = {}
    for length in args.lengths:
        generation.check_completion_length(lm, len(prompt_ids), length)
        calls.update(
            {
                (length, name): run
                for name, run in contenders(lm, prompt_ids, args.batch, length, args.tps_steps, generator).items()
            }
        )
    measured = common.interleaved(calls, args.rounds)

    print(
        f"model {lm.name}, batch {args.batch}, prompt {len(prompt_ids)} tokens, {torch.get_num_threads()} torch "
        f"thread(s); median (and min–max) of {args.rounds} interleaved rounds"
    )
    throughput = {}
    for length in args.lengths:
        results = with_ratios({name: summarize(rounds) for (at, name), rounds in measured.items() if at == length})
        print_table(results, length)
        throughput[str(length)] = results
    join_groups = join_group_rounds(lm, prompt_ids, args.batch, args.lengths[0], args.rounds, generator)
    print(
        f"TPS regrowth at L = {args.lengths[0]}, tokens/CPU-s by join_groups (× one group, paired): "
        + ", ".join(
            f"{groups}: {entry['tokens_per_cpu_s']['median']:.0f} (×{entry['paired_ratio_to_one_group']['median']:.2f})"
            for groups, entry in join_groups.items()
        )
    )

    settings = {
        **vars(args),
        "model": lm.name,
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "vocab_size": lm.vocab_size,
        "prompt": prompt,
        "prompt_tokens": len(prompt_ids),
        "device": str(lm.device),
    }
    common.write_results(
        args.output, "sampling", settings, {"throughput": throughput, "tps_join_groups": join_groups}, machine
    )


if __name__ == "__main__":
    main()
