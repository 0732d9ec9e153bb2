"""Throughput of rarelib's samplers against Hugging Face ``generate``, per model, in one run.

Two models by default (``--models``): the embedded default model, and ``tinystories-8m-shaped``, a
random-weight GPT-Neo with the exact architecture of ``roneneldan/TinyStories-8M`` (8 layers,
hidden size 256, 16 heads, alternating global/local attention with window 256, vocabulary
50257, 2048 positions), built from its configuration without a download: weights do not change
speed, and this is the paper's compute per token. Its tokenizer is one token per character (the
prompt: the chapters' prompt cut to 28 characters, as many as its tokens in the embedded model).
For each model, completion length (default 64 and 100 on the embedded model, 64 on the
TinyStories-8M shape) and batch (default 64 rows; 32 on the TinyStories-8M shape, whose
50257-word vocabulary makes a token cost ~30 times more on one CPU thread), measures new
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
per wall-second. Also memory: the key–value cache of one chain at full length (prompt + L − 1
positions) and the peak memory (of the GPU per contender where there is one; of the whole
process on a CPU). Writes benchmarks/results/sampling.json.

    python benchmarks/sampling.py                    # both models (≈ 10 CPU-minutes)
    python benchmarks/sampling.py --models random    # a random GPT-Neo of the default model's size
    python benchmarks/sampling.py --device cuda --dtype bfloat16 --output benchmarks/results/sampling_cuda.json
    python benchmarks/sampling.py --smoke            # a few seconds
"""

from __future__ import annotations

import resource
import statistics
import subprocess

import common  # noqa: I001  (first: it starts the run's wall clock)
import torch

from rarelib import direct, generation, models, tps, workflow
from rarelib.storymodel.training import TrainingConfig

RESULTS = common.RESULTS_DIR / "sampling.json"
REFERENCE = "generate (HF)"
LOGPROB_LADDER = [-0.05, 0.0, 0.03, 0.06, 0.1, 0.14, 0.18, 0.23, 0.29, 0.36]  # the chapters' (05_mbar)
TINYSTORIES_8M = "tinystories-8m-shaped"
DEFAULT_MODELS = ("default", TINYSTORIES_8M)
RUNS = {  # per model: batch, completion lengths, TPS steps per round (each overridden by its option)
    "default": {"batch": 64, "lengths": [64, 100], "tps_steps": 4},
    TINYSTORIES_8M: {"batch": 32, "lengths": [64], "tps_steps": 2},
}
OTHER_RUN = RUNS["default"]


class CountingLM:
    """A CausalLM that forwards to ``lm`` and counts the token positions it is fed."""

    def __init__(self, lm):
        self.lm = lm
        self.positions = 0

    def __getattr__(self, name):
        return getattr(self.lm, name)

    def logits(self, input_ids, cache=None, logits_to_keep=None):
        self.positions += input_ids.numel()
        return self.lm.logits(input_ids, cache, logits_to_keep)


def character_alphabet(size: int) -> str:
    """``size`` distinct characters, printable ASCII first (so the chapters' prompt and sentence ends are tokens)."""
    printable = "".join(chr(i) for i in range(32, 127))
    return printable + "".join(chr(0x20000 + i) for i in range(size - len(printable)))


def tinystories_8m_shaped(device: str, dtype: str) -> models.HFLanguageModel:
    """A GPT-Neo with the configuration of roneneldan/TinyStories-8M and random weights (seed 0)."""
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    config = GPTNeoConfig(
        vocab_size=50257,
        max_position_embeddings=2048,
        hidden_size=256,
        num_layers=8,
        num_heads=16,
        attention_types=[[["global", "local"], 4]],
        window_size=256,
        bos_token_id=50256,
        eos_token_id=50256,
    )
    torch.manual_seed(0)
    torch_device = models.resolve_device(device)
    model = GPTNeoForCausalLM(config).to(device=torch_device, dtype=models.check_dtype(dtype)).eval()
    model.requires_grad_(False)
    tokenizer = models.character_tokenizer(character_alphabet(config.vocab_size))
    return models.HFLanguageModel(model, tokenizer, TINYSTORIES_8M + f"-{dtype}", torch_device)


def load_model(name: str, device: str = "cpu", dtype: str = "float32"):
    """The model ``name``: ``"tinystories-8m-shaped"`` (:func:`tinystories_8m_shaped`), ``"random"`` (the default
    model's shape with random weights, one token per character), or anything :func:`rarelib.models.load` takes."""
    if name == TINYSTORIES_8M:
        return tinystories_8m_shaped(device, dtype)
    if name == "random":
        shape = TrainingConfig()
        return models.random_model(
            "gpt-neo",
            alphabet=character_alphabet(shape.vocab_size),
            context_length=shape.context_length,
            n_layer=shape.num_layers,
            n_embd=shape.hidden_size,
            n_head=shape.num_heads,
            device=device,
            dtype=dtype,
        )
    return models.load(name, device=device, dtype=dtype)


def prompt_of(name: str, lm, prompt: str | None) -> str:
    """``prompt``, or the chapters' prompt: whole for a model with its own tokenizer, else cut to 28 characters."""
    if prompt is not None:
        return prompt
    return common.PAPER_PROMPT[:28] if name in ("random", TINYSTORIES_8M) else common.PAPER_PROMPT


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
            lambda: lm.model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                do_sample=True,
                top_k=0,
                temperature=1.0,
                min_new_tokens=length,
                max_new_tokens=length,
                pad_token_id=lm.model.config.eos_token_id,
            ).cpu()  # on a GPU: wait for the last token, as the samplers do
        )
    assert out.shape == (batch, len(prompt_ids) + length)
    return seconds, batch * length, batch * (len(prompt_ids) + length - 1)


def with_peak_memory(lm, measure):
    """``measure`` with the GPU's peak memory (MiB) during it appended to its result (None on a CPU)."""

    def run():
        if lm.device.type != "cuda":
            return (*measure(), None)
        torch.cuda.reset_peak_memory_stats(lm.device)
        return (*measure(), torch.cuda.max_memory_allocated(lm.device) / 2**20)

    return run


def cache_mib_per_chain(lm, prompt_ids, length) -> float:
    """MiB of the key–value cache of one chain at full length: the prompt and the L − 1 fed completion tokens."""
    ids = torch.cat([prompt_ids, torch.zeros(length - 1, dtype=torch.int64)])
    _, cache = lm.logits(ids[None], logits_to_keep=1)
    tensors = [getattr(layer, name) for layer in cache.layers for name in ("keys", "values")]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors) / 2**20


def contenders(lm, prompt_ids, batch, length, tps_steps, generator) -> dict:
    """Name → a call that measures one round of that contender."""
    completions = torch.randint(0, lm.vocab_size, (batch, length), generator=generator)
    calls = {
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
    return {name: with_peak_memory(lm, measure) for name, measure in calls.items()}


def summarize(measured: list) -> dict:
    """Rates per CPU- and wall-second (median, min, max over rounds), the useful fraction of fed positions, and the
    GPU's peak memory over rounds (None on a CPU)."""
    peaks = [peak for *_, peak in measured if peak is not None]
    return {
        "tokens_per_cpu_s": common.spread([tokens / seconds.cpu for seconds, tokens, *_ in measured]),
        "tokens_per_wall_s": common.spread([tokens / seconds.wall for seconds, tokens, *_ in measured]),
        "useful_fraction": statistics.mean(tokens / positions for _, tokens, positions, _ in measured),
        "tokens_per_round": statistics.mean(tokens for _, tokens, *_ in measured),
        "peak_gpu_mib": max(peaks) if peaks else None,
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


def uptime() -> str:
    """The machine's ``uptime`` line (load averages over 1, 5 and 15 minutes)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def run_settings(name: str, args) -> dict:
    """Batch, completion lengths and TPS steps for model ``name``: :data:`RUNS`, each overridden by its option."""
    run = dict(RUNS.get(name, OTHER_RUN))
    run.update({key: getattr(args, key) for key in run if getattr(args, key) is not None})
    return run


def measure_model(name: str, args, generator) -> dict:
    """Every measurement of model ``name``: its settings, throughput per length, join groups and memory."""
    lm = load_model(name, args.device, args.dtype)
    run = run_settings(name, args)
    prompt = prompt_of(name, lm, args.prompt)
    prompt_ids = generation.prompt_token_ids(lm, prompt)
    calls = {}
    for length in run["lengths"]:
        generation.check_completion_length(lm, len(prompt_ids), length)
        calls.update(
            {
                (length, contender): measure
                for contender, measure in contenders(
                    lm, prompt_ids, run["batch"], length, run["tps_steps"], generator
                ).items()
            }
        )
    measured = common.interleaved(calls, args.rounds)
    print(
        f"\nmodel {lm.name}, batch {run['batch']}, prompt {len(prompt_ids)} tokens, {torch.get_num_threads()} torch "
        f"thread(s), {lm.device}, {args.dtype}; median (and min–max) of {args.rounds} interleaved rounds"
    )
    throughput = {}
    for length in run["lengths"]:
        results = with_ratios({what: summarize(rounds) for (at, what), rounds in measured.items() if at == length})
        print_table(results, length)
        throughput[str(length)] = results
    memory = {
        "cache_mib_per_chain": {str(length): cache_mib_per_chain(lm, prompt_ids, length) for length in run["lengths"]},
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10,
    }
    print(
        "memory: KV cache per chain "
        + ", ".join(f"{mib:.2f} MiB at L = {length}" for length, mib in memory["cache_mib_per_chain"].items())
        + f"; peak resident memory of the process so far {memory['process_peak_rss_mib']:.0f} MiB"
    )
    settings = {
        **run,
        "model": lm.name,
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "vocab_size": lm.vocab_size,
        "prompt": prompt,
        "prompt_tokens": len(prompt_ids),
    }
    return {"settings": settings, "throughput": throughput, "memory": memory}


def main() -> None:
    parser = common.parser(__doc__, RESULTS)
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        help=f"'default', '{TINYSTORIES_8M}', 'random' (the default model's shape, random weights), a model folder "
        "or a cached hub id",
    )
    parser.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'cuda:N' or 'auto'")
    parser.add_argument("--dtype", default="float32", choices=sorted(models.DTYPES), help="the models' weights")
    parser.add_argument("--batch", type=int, default=None, help="rows per batch (default: per model, see RUNS)")
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="completion lengths (default: per model)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians and min–max are reported")
    parser.add_argument("--tps-steps", type=int, default=None, help="TPS steps per round (default: per model)")
    parser.add_argument(
        "--prompt",
        default=None,
        help="default: the chapters' prompt; its first 28 characters for models whose tokens are characters",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke:
        args.batch, args.lengths, args.rounds, args.tps_steps = 4, [8], 1, 1
    machine = common.start(args)
    load_at_start = uptime()
    generator = torch.Generator().manual_seed(args.seed)
    results = {name: measure_model(name, args, generator) for name in args.models}
    settings = {**vars(args), "device": str(models.resolve_device(args.device))}
    note = (
        f"uptime at start: {load_at_start}; at end: {uptime()}. The machine is shared: judge the paired ratios "
        "(contenders of one model measured in turn within each round), not the absolute rates."
    )
    common.write_results(args.output, "sampling", settings, {"models": results, "note": note}, machine)


if __name__ == "__main__":
    main()
