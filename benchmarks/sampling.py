"""Throughput of rarelib's samplers against Hugging Face ``generate`` on one model, in one run.

Measures new tokens per second of direct sampling, regrown tokens per second of TPS
proposals (whole steps of a batch of chains at λ = 0, cuts uniform), teacher-forced
scoring (one parallel forward: the ceiling) and ``model.generate(do_sample=True, top_k=0,
temperature=1)`` with the same batch and length; also the fraction of the token positions
fed to the model that were useful new tokens, and TPS throughput for several ``join_groups``
(the batching choice of :mod:`rarelib.generation`). Rates per CPU second of this process
are robust on a shared machine (with one thread they equal wall-clock rates on an idle
one); wall-clock rates are reported too. Prints a table; writes JSON.

    python benchmarks/sampling.py                 # the embedded default model
    python benchmarks/sampling.py --model random  # a random GPT-Neo of the default model's size
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from rarelib import direct, generation, models, tps
from rarelib.training import TrainingConfig

RESULTS = Path(__file__).resolve().parent / "results" / "sampling.json"
PROMPT = "Once upon a time, in a big forest, there lived a rhinoc"  # the paper's prompt: 16 GPT-Neo tokens


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
    if name == "random":  # the default model's shape, random weights, one token per character
        shape = TrainingConfig()
        printable = "".join(chr(i) for i in range(32, 127))
        alphabet = printable + "".join(chr(0x4E00 + i) for i in range(shape.vocab_size - len(printable)))
        return models.random_model("gpt-neo", alphabet=alphabet, context_length=shape.context_length,
                                   n_layer=shape.num_layers, n_embd=shape.hidden_size, n_head=shape.num_heads)
    return models.load(name)


class Clock:
    """Wall-clock and CPU seconds since construction (CPU time: this process only, all threads)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def timed(run) -> tuple[tuple[float, float], object]:
    clock = Clock()
    result = run()
    return clock.read(), result


def measure_direct(lm, prompt, batch, length):
    counting = CountingLM(lm)
    seconds, _ = timed(lambda: direct.sample(counting, prompt, batch, length, observables=(), batch_size=batch,
                                             progress=False))
    return seconds, batch * length, counting.positions


def measure_tps(lm, prompt, batch, length, steps, generator):
    counting = CountingLM(lm)
    kernel = tps.build_kernel(counting, prompt, length, "logprob", record=())
    state = kernel.init(batch, generator)
    counting.positions = 0
    regrown, clock = 0, Clock()
    for _ in range(steps):
        state, info = kernel.step(state, 0.0, generator)
        regrown += int((length - info.cut).sum())
    return clock.read(), regrown, counting.positions


def measure_scoring(lm, prompt_ids, completions):
    seconds, _ = timed(lambda: generation.score(lm, prompt_ids, completions, batch_size=len(completions)))
    return seconds, completions.numel(), completions.numel() + len(completions) * (len(prompt_ids) - 1)


def measure_generate(lm, prompt_ids, batch, length):
    inputs = prompt_ids.expand(batch, -1).to(lm.device)
    with torch.inference_mode():
        seconds, out = timed(lambda: lm.model.generate(
            inputs, attention_mask=torch.ones_like(inputs), do_sample=True, top_k=0, temperature=1.0,
            min_new_tokens=length, max_new_tokens=length, pad_token_id=lm.model.config.eos_token_id))
    assert out.shape == (batch, len(prompt_ids) + length)
    return seconds, batch * length, batch * (len(prompt_ids) + length - 1)


def measure_join_groups(lm, context, start, cuts, uniforms, groups):
    """Seconds (wall, CPU) of one regrowth of ``start`` after ``cuts`` with ``groups`` join groups, and its tokens."""
    seconds, _ = timed(lambda: generation.regrow(lm, context, start.completions, start.token_logprobs, cuts, uniforms,
                                                 join_groups=groups))
    return seconds, int((len(uniforms[0]) - cuts).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default', a model folder or hub id, or 'random'")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported")
    parser.add_argument("--tps-steps", type=int, default=4, help="TPS steps per round")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--prompt", default=None,
                        help="default: the paper's prompt; its first 16 characters for --model random, whose "
                             "tokens are characters, so that the prompt has the paper's 16 tokens")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    prompt = args.prompt or (PROMPT[:16] if args.model == "random" else PROMPT)
    prompt_ids = generation.prompt_token_ids(lm, prompt)
    generation.check_completion_length(lm, len(prompt_ids), args.length)
    generator = torch.Generator().manual_seed(0)
    completions = torch.randint(0, lm.vocab_size, (args.batch, args.length), generator=generator)

    methods = {
        "generate (HF)": lambda: measure_generate(lm, prompt_ids, args.batch, args.length),
        "direct": lambda: measure_direct(lm, prompt_ids, args.batch, args.length),
        "TPS proposals": lambda: measure_tps(lm, prompt_ids, args.batch, args.length, args.tps_steps, generator),
        "scoring (ceiling)": lambda: measure_scoring(lm, prompt_ids, completions),
    }
    group_choices = (1, 4, 8, 16)
    for run in methods.values():  # warm-up
        run()
    context = generation.encode_prompt(lm, prompt_ids)
    start = tps.build_kernel(lm, prompt_ids, args.length, "logprob", record=()).init(args.batch, generator)
    rounds = {name: [] for name in methods}
    group_rounds = {groups: [] for groups in group_choices}
    for _ in range(args.repeats):
        for name, run in methods.items():
            rounds[name].append(run())
        cuts = torch.randint(0, args.length, (args.batch,), generator=generator)
        uniforms = torch.rand((args.batch, args.length), generator=generator, dtype=torch.float64)
        for groups in group_choices:  # the same proposals for every choice: paired comparison
            group_rounds[groups].append(measure_join_groups(lm, context, start, cuts, uniforms, groups))

    results = {}
    for name, measured in rounds.items():
        results[name] = {"useful_fraction": float(np.mean([tokens / positions for _, tokens, positions in measured]))}
        for clock, which in (("wall", 0), ("cpu", 1)):
            rates = [tokens / seconds[which] for seconds, tokens, _ in measured]
            results[name][f"tokens_per_{clock}_s"] = statistics.median(rates)
            results[name][f"tokens_per_{clock}_s_all"] = rates
    for clock in ("wall", "cpu"):
        reference = results["generate (HF)"][f"tokens_per_{clock}_s"]
        for entry in results.values():
            entry[f"ratio_to_generate_{clock}"] = entry[f"tokens_per_{clock}_s"] / reference
    cpu_rates = {groups: [tokens / seconds[1] for seconds, tokens in measured]
                 for groups, measured in group_rounds.items()}
    join_groups = {str(groups): {"tokens_per_cpu_s": statistics.median(rates),
                                 "paired_ratio_to_one_group": statistics.median(
                                     rate / one for rate, one in zip(rates, cpu_rates[1]))}
                   for groups, rates in cpu_rates.items()}

    print(f"model {lm.name}, batch {args.batch}, completion length {args.length}, prompt {len(prompt_ids)} tokens, "
          f"{torch.get_num_threads()} torch thread(s), median of {args.repeats}")
    print(f"{'method':<20}{'tokens/CPU-s':>14}{'× generate':>12}{'tokens/wall-s':>15}{'× generate':>12}"
          f"{'useful/fed':>12}")
    for name, entry in results.items():
        print(f"{name:<20}{entry['tokens_per_cpu_s']:>14.0f}{entry['ratio_to_generate_cpu']:>12.2f}"
              f"{entry['tokens_per_wall_s']:>15.0f}{entry['ratio_to_generate_wall']:>12.2f}"
              f"{entry['useful_fraction']:>12.2f}")
    rates = ", ".join(f"{groups}: {entry['tokens_per_cpu_s']:.0f} (×{entry['paired_ratio_to_one_group']:.2f})"
                      for groups, entry in join_groups.items())
    print(f"TPS regrowth, tokens/CPU-s by join_groups (× one group, paired): {rates}")

    n_parameters = sum(p.numel() for p in lm.model.parameters())
    report = {
        "results": results, "tps_tokens_per_s_by_join_groups": join_groups,
        "settings": {"model": lm.name, "parameters": n_parameters, "vocab_size": lm.vocab_size, "batch": args.batch,
                     "completion_length": args.length, "prompt_tokens": len(prompt_ids), "repeats": args.repeats,
                     "tps_steps_per_round": args.tps_steps},
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": platform.python_version(),
                    "platform": platform.platform(), "device": str(lm.device)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
