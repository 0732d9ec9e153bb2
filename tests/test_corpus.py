"""Tests of the seeded story grammar in rarelib.storymodel.corpus."""

import hashlib
import random
import re

import pytest

from rarelib.storymodel import corpus, grammar, vocabulary

N_STORIES = 4000  # enough to see the ~1% rare constructions; generates in about half a second
SEED = 0
BOOK_PROMPT = "Once upon a time, in a big forest, there lived a"
CONSONANT_SOUND_VOWEL_WORDS = {"unicorn", "ukulele", "uniform", "unicycle", "useful", "usual", "one"}
VOWEL_SOUND_H_WORDS = {"honest", "hour", "honor", "heir"}


@pytest.fixture(scope="module")
def stories() -> list[str]:
    return corpus.generate_corpus(N_STORIES, seed=SEED)


def word_types(texts: list[str]) -> set[str]:
    return {word for text in texts for word in re.findall(r"[a-z]+", text.lower())}


def sentence_count(story: str) -> int:
    """Sentences, counting a quoted line and its attribution ('"Hi!" said Lily.') as one."""
    quotes_folded = re.sub(r'"[^"]*"', "Q", story)
    return len(re.findall(r"[.!?](?=\s|$)", quotes_folded)) + len(re.findall(r", Q(?=\s|$)", quotes_folded))


def automated_readability_index(text: str) -> float:
    words = text.split()
    characters = sum(char.isalnum() for char in text)
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    return 4.71 * characters / len(words) + 0.5 * len(words) / sentences - 21.43


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def test_same_seed_gives_identical_corpus():
    assert corpus.generate_corpus(40, seed=11) == corpus.generate_corpus(40, seed=11)


def test_different_seeds_give_different_corpora():
    first, second = corpus.generate_corpus(40, seed=1), corpus.generate_corpus(40, seed=2)
    assert sum(a == b for a, b in zip(first, second)) == 0


def test_generate_story_uses_only_the_given_rng():
    global_state = random.getstate()
    random.seed(123)
    story = corpus.generate_story(random.Random(5))
    random.seed(456)
    assert corpus.generate_story(random.Random(5)) == story
    random.setstate(global_state)


def test_vocabulary_has_at_least_1500_word_types(stories):
    assert len(word_types(stories[:500])) >= 1500


def test_story_lengths(stories):
    sentences = [sentence_count(story) for story in stories]
    words = [len(story.split()) for story in stories]
    assert sum(5 <= n <= 20 for n in sentences) / len(stories) >= 0.97
    assert 100 <= quantile(words, 0.5) <= 300
    assert quantile(words, 0.05) >= 80 and quantile(words, 0.95) <= 350


def test_openings(stories):
    classic = sum(story.startswith(("Once upon a time,", "One ", "Long ago,", "There once")) for story in stories)
    prompt = sum(story.startswith(BOOK_PROMPT) for story in stories)
    assert classic == len(stories)
    assert 0.15 <= prompt / len(stories) <= 0.40


def test_dialogue_in_most_stories(stories):
    quoted_line = re.compile(r'"[A-Z][^"]*[,.!?]"')
    assert sum(bool(quoted_line.search(story)) for story in stories) / len(stories) >= 0.8


def test_readability_varies_between_stories(stories):
    ari = [automated_readability_index(story) for story in stories]
    assert quantile(ari, 0.95) - quantile(ari, 0.05) >= 3.0


def test_long_words_are_present_but_rare(stories):
    with_long_word = sum(any(len(word) >= 12 for word in re.findall(r"[A-Za-z]+", story)) for story in stories)
    assert 0.003 <= with_long_word / len(stories) <= 0.03


def test_run_on_sentences_are_present_but_rare(stories):
    def longest_sentence(story: str) -> int:
        quotes_folded = re.sub(r'"[^"]*"', "Q", story)
        return max(len(sentence.split()) for sentence in re.split(r"[.!?]", quotes_folded))

    run_ons = sum(longest_sentence(story) >= 80 for story in stories)
    assert 0.002 <= run_ons / len(stories) <= 0.03


def test_indefinite_articles_match_the_next_word(stories):
    for story in stories:
        for article, word in re.findall(r"\b([Aa]n?) ([A-Za-z]+)", story):
            word = word.lower()
            if article.lower() == "a":
                assert word[0] not in "aeiou" or word in CONSONANT_SOUND_VOWEL_WORDS, (article, word)
            else:
                assert word[0] in "aeiou" or word in VOWEL_SOUND_H_WORDS, (article, word)


def test_pronouns_agree_with_the_verb(stories):
    names = "|".join(vocabulary.GIRL_NAMES + vocabulary.BOY_NAMES + vocabulary.NEUTRAL_NAMES + vocabulary.PET_NAMES)
    wrong = re.compile(rf"\b(?:[Tt]hey was|[Hh]e were|[Ss]he were|(?<!and )(?:{names}) were)\b")
    assert not [match.group(0) for story in stories for match in wrong.finditer(story)]


def test_sentences_are_capitalised_and_punctuated(stories):
    for story in stories:
        for paragraph in story.split("\n\n"):
            assert re.match(r'"?[A-Z]', paragraph), paragraph[:60]
            assert paragraph[-1] in '.!?"', paragraph[-60:]
        assert not re.search(r"[.!?] [a-z]", story)
        assert story.count('"') % 2 == 0
        assert "  " not in story and " ," not in story and " ." not in story


def test_every_plot_shape_tells_a_story():
    rng = random.Random(3)
    assert len(grammar.PLOTS) >= 6
    for plot in grammar.PLOTS:
        cast = grammar.cast_story(rng)
        paragraphs = plot(rng, cast)
        assert len(paragraphs) == 3 and all(paragraphs)
        assert cast.hero.name in paragraphs[0][0].text


def test_write_and_read_round_trip(tmp_path):
    path = tmp_path / "stories.txt"
    meta = corpus.write_corpus(path, n_stories=25, seed=3)
    stories = corpus.generate_corpus(25, seed=3)
    assert corpus.read_corpus(path) == stories
    text = path.read_text(encoding="utf-8")
    assert text.count("<|endoftext|>") == 24
    assert meta["n_stories"] == 25 and meta["seed"] == 3
    assert meta["n_characters"] == len(text)
    assert meta["n_words"] == sum(len(story.split()) for story in stories)
    assert meta["n_word_types"] == len(word_types(stories))
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_read_corpus_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        corpus.read_corpus(tmp_path / "missing.txt")


@pytest.mark.parametrize("bad", [0, -5, 2.5, "10", True, None])
def test_bad_story_count_raises(bad):
    with pytest.raises(ValueError, match="n_stories"):
        corpus.generate_corpus(bad, seed=0)
