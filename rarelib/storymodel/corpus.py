"""A seeded probabilistic story grammar that writes TinyStories-like children's stories.

The corpus trains the project's small embedded language model (a stand-in for
TinyStories-8M). Every story has named characters, places, objects and feelings, quoted
dialogue, and one of six plot shapes: a problem solved with help, a new friendship, a lost
treasure found, a journey, a lesson learned, and a day that ends at bedtime. Each story is
told in one of four sentence styles (short and simple, plain, rich compound sentences, or a
rare child-like run-on), so readability varies from story to story; about one story in a
hundred also carries a rare long word or a long list, so the training data has tails.

All randomness flows through an explicit :class:`random.Random`: the same seed gives a
byte-identical corpus. The words live in :mod:`rarelib.storymodel.vocabulary`, the sentence
builders and plot shapes in :mod:`rarelib.storymodel.grammar`; this module writes, describes
(corpus statistics) and stores corpora.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from rarelib.storymodel.grammar import PLOTS, add_rarities, cast_story, render_paragraph

__all__ = [
    "STORY_SEPARATOR",
    "describe",
    "generate_corpus",
    "generate_story",
    "read_corpus",
    "word_types",
    "write_corpus",
]

STORY_SEPARATOR = "\n<|endoftext|>\n"


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def generate_story(rng: random.Random) -> str:
    """One story (paragraphs separated by blank lines), drawn with ``rng``."""
    cast = cast_story(rng)
    paragraphs = add_rarities(rng, cast, rng.choice(PLOTS)(rng, cast))
    if cast.style.run_on:  # a run-on story is told in one breath, without paragraphs
        paragraphs = [[clause for clauses in paragraphs for clause in clauses]]
    return "\n\n".join(render_paragraph(rng, clauses, cast.style) for clauses in paragraphs)


def generate_corpus(n_stories: int, seed: int) -> list[str]:
    """``n_stories`` stories from one ``random.Random(seed)``; same seed, same corpus."""
    if not isinstance(n_stories, int) or isinstance(n_stories, bool) or n_stories < 1:
        raise ValueError(f"n_stories must be a positive integer, got {n_stories!r}")
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n_stories)]


def word_types(stories: list[str]) -> set[str]:
    """The distinct lower-cased alphabetic words in ``stories``."""
    return {word for story in stories for word in re.findall(r"[a-z]+", story.lower())}


def describe(stories: list[str], seed: int) -> dict:
    """Metadata of a corpus: n_stories, seed, n_characters, n_words, n_word_types, sha256 of its file text."""
    text = corpus_text(stories)
    return {
        "n_stories": len(stories),
        "seed": seed,
        "n_characters": len(text),
        "n_words": sum(len(story.split()) for story in stories),
        "n_word_types": len(word_types(stories)),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def corpus_text(stories: list[str]) -> str:
    """The file text of a corpus: stories separated by ``<|endoftext|>`` lines."""
    return STORY_SEPARATOR.join(stories) + "\n"


def write_corpus(path: str | Path, n_stories: int, seed: int) -> dict:
    """Generate a corpus and write it as UTF-8 (see :func:`corpus_text`); returns :func:`describe`'s metadata."""
    stories = generate_corpus(n_stories, seed)
    Path(path).write_text(corpus_text(stories), encoding="utf-8")
    return describe(stories, seed)


def read_corpus(path: str | Path) -> list[str]:
    """The stories of a file written by :func:`write_corpus`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    text = path.read_text(encoding="utf-8")
    return text.removesuffix("\n").split(STORY_SEPARATOR)
