"""The story grammar: articles and characters, clauses and their rendering, sentence builders, plot shapes.

Every function takes an explicit :class:`random.Random`, so a seed gives the same story. Words come
from :mod:`rarelib.storymodel.vocabulary`; :mod:`rarelib.storymodel.corpus` turns plots into stories.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from rarelib.storymodel.vocabulary import (
    ANIMAL_DOINGS,
    ANIMALS,
    BATH_TOYS,
    BOY_NAMES,
    CARING_ADVERBS,
    CARING_VERBS,
    CLOTHES,
    COLOURS,
    DESTINATIONS,
    DREAMS,
    DRINKS,
    EATING_VERBS,
    EXCLAMATION_VERBS,
    FOODS,
    GIRL_NAMES,
    GROWN_UP_ROLES,
    HOME_ADJECTIVES,
    HOMES,
    INDOOR_ACTIVITIES,
    INDOOR_PLACES,
    INDOOR_SEARCH_SPOTS,
    LOOK_ADJECTIVES,
    MORALS,
    MOVEMENT_ADVERBS,
    MOVEMENT_VERBS,
    NEGATIVE_FEELINGS,
    NEGATIVE_REACTION_ADVERBS,
    NEGATIVE_REACTIONS,
    NEUTRAL_NAMES,
    OUTDOOR_ACTIVITIES,
    OUTDOOR_PLACES,
    OUTDOOR_SEARCH_SPOTS,
    PACKING_ITEMS,
    PET_NAMES,
    PLACE_ADJECTIVES,
    PLAY_ADVERBS,
    POSITIVE_FEELINGS,
    POSITIVE_REACTION_ADVERBS,
    POSITIVE_REACTIONS,
    PRAISE_ADJECTIVES,
    QUESTION_VERBS,
    RARE_ADJECTIVES,
    RARE_ADVERBS,
    RARE_NOUNS,
    REGRETFUL_FEELINGS,
    RESTING_SPOTS,
    SIGHTS,
    SIZE_ADJECTIVES,
    SNACKS,
    SPEECH_ADVERBS,
    STATEMENT_VERBS,
    STORY_TOPICS,
    SURPRISING_SPOTS,
    TASTE_ADJECTIVES,
    THINGS,
    TIMES_OF_DAY,
    TOYS,
    TRAITS,
    TRANSITIONS,
    VEGETABLES,
    WEATHER,
    Place,
)

__all__ = [
    "CLOSING_MARKS",
    "CONSONANT_SOUND_VOWEL_PREFIXES",
    "Cast",
    "Character",
    "Clause",
    "DATED_OPENING_PROBABILITY",
    "ENCOURAGEMENTS",
    "FRIENDLY_THANKS",
    "GOODNIGHTS",
    "GREETINGS",
    "INVITATIONS",
    "LESSONS",
    "LONG_LIST_PROBABILITY",
    "Lesson",
    "MORNING_ROUTINE",
    "OBSTACLES",
    "OFFERS_OF_HELP",
    "Obstacle",
    "PLOTS",
    "PRONOUNS",
    "Paragraphs",
    "Pronouns",
    "RARE_WORD_PROBABILITY",
    "SHY_ANSWERS",
    "STYLES",
    "STYLE_WEIGHTS",
    "Style",
    "THANKS",
    "TROUBLES",
    "Trouble",
    "VOWEL_SOUND_H_PREFIXES",
    "activities_for",
    "add_rarities",
    "adorn",
    "adverb",
    "animal_identity",
    "bedtime_plot",
    "can_append",
    "capitalise",
    "cast_story",
    "child_identity",
    "closing",
    "description",
    "detail",
    "exclaim",
    "feeling",
    "fill",
    "first_event_intro",
    "friendship_plot",
    "indefinite_article",
    "introduce_friend",
    "journey_plot",
    "lesson_plot",
    "listing",
    "long_list",
    "lost_and_found_plot",
    "marvel",
    "meal",
    "moral",
    "narrate",
    "opening",
    "outing",
    "play",
    "play_together",
    "problem_plot",
    "random_character",
    "random_grown_up",
    "reaction",
    "render_paragraph",
    "render_sentence",
    "scenery",
    "speech",
    "with_article",
]

# ---------------------------------------------------------------------------------------
# Grammar helpers: articles, characters, styles, clauses and their rendering
# ---------------------------------------------------------------------------------------

VOWEL_SOUND_H_PREFIXES = ("hour", "honest", "honor", "heir")
CONSONANT_SOUND_VOWEL_PREFIXES = ("uni", "uku", "use", "usu", "ute", "one")


def indefinite_article(phrase: str) -> str:
    """'a' or 'an' for the first word of ``phrase``, judged by its sound."""
    word = phrase.lower()
    if word.startswith(VOWEL_SOUND_H_PREFIXES):
        return "an"
    if word.startswith(CONSONANT_SOUND_VOWEL_PREFIXES):
        return "a"
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """``phrase`` preceded by its indefinite article: 'an old owl', 'a unicorn'."""
    return f"{indefinite_article(phrase)} {phrase}"


def listing(items: list[str]) -> str:
    """Join items as an English list with an Oxford comma: 'a, b, and c'."""
    if len(items) < 3:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def capitalise(text: str) -> str:
    """Upper-case the first letter of ``text`` (which may start with a quotation mark)."""
    for index, char in enumerate(text):
        if char.isalpha():
            return text[:index] + char.upper() + text[index + 1 :]
    return text


@dataclass(frozen=True)
class Pronouns:
    """Third-person pronouns and the matching past tense of 'to be'."""

    subject: str
    object: str
    possessive: str
    reflexive: str
    was: str


PRONOUNS = {
    "he": Pronouns("he", "him", "his", "himself", "was"),
    "she": Pronouns("she", "her", "her", "herself", "was"),
    "they": Pronouns("they", "them", "their", "themselves", "were"),
}


@dataclass(frozen=True)
class Character:
    """A story character: how narration names them and how others address them."""

    name: str  # "Lily", "her mom"
    kind: str  # "girl", "fox", "mom"
    pronouns: Pronouns
    vocative: str  # "Lily", "Mom"
    intro: str  # "a curious fox named Pip"
    trait: str  # "curious"

    def slots(self, prefix: str) -> dict[str, str]:
        """Template slots for this character, e.g. {name}, {he}, {his} with ``prefix``."""
        p = self.pronouns
        return {
            f"{prefix}name": self.name,
            f"{prefix}kind": self.kind,
            f"{prefix}voc": self.vocative,
            f"{prefix}intro": self.intro,
            f"{prefix}trait": self.trait,
            f"{prefix}he": p.subject,
            f"{prefix}him": p.object,
            f"{prefix}his": p.possessive,
            f"{prefix}himself": p.reflexive,
            f"{prefix}was": p.was,
        }


@dataclass(frozen=True)
class Style:
    """How a story is told: how often clauses join and how often details are added."""

    join_probability: float
    max_clauses: int
    detail_probability: float
    joins_intros: bool = False  # may a clause with an intro ('Soon, ...') be joined on?
    run_on: bool = False  # join with a bare 'and', without commas or a length limit


STYLES = (
    Style(join_probability=0.0, max_clauses=1, detail_probability=0.05),  # short and simple
    Style(join_probability=0.35, max_clauses=2, detail_probability=0.35),  # plain
    Style(join_probability=0.85, max_clauses=4, detail_probability=0.8, joins_intros=True),  # rich
    Style(join_probability=1.0, max_clauses=99, detail_probability=0.4, joins_intros=True, run_on=True),
)
STYLE_WEIGHTS = (0.30, 0.44, 0.25, 0.01)
DATED_OPENING_PROBABILITY = 0.15
RARE_WORD_PROBABILITY = 0.012
LONG_LIST_PROBABILITY = 0.01


@dataclass(frozen=True)
class Cast:
    """Everything fixed for one story: characters, place, weather, style, template slots."""

    hero: Character
    friend: Character
    grown_up: Character
    place: Place
    weather: str
    style: Style
    dated_opening: bool  # the first sentence already says when: "One day, ..."
    slots: dict[str, str]


@dataclass(frozen=True)
class Clause:
    """One clause of a story, written without a capital letter or full stop.

    Neighbouring clauses may be joined with 'and' into one sentence; ``intro`` is an
    opening phrase such as 'One day' rendered before a comma. A ``standalone`` clause
    (dialogue, an exclamation) is a sentence of its own, except in run-on stories.
    """

    text: str
    intro: str = ""
    standalone: bool = False

    @property
    def closed(self) -> bool:
        """Whether the clause ends in its own punctuation, so nothing may follow it in a sentence."""
        return self.text.endswith(CLOSING_MARKS)


CLOSING_MARKS = ('"', "!", "?", ".")


def fill(template: str, cast: Cast, **extra: str) -> str:
    """Fill a template's {slots} from the cast and ``extra``."""
    return template.format_map({**cast.slots, **extra}) if "{" in template else template


def narrate(cast: Cast, template: str, intro: str = "", **extra: str) -> Clause:
    """A narration clause from a template."""
    return Clause(fill(template, cast, **extra), intro)


def exclaim(cast: Cast, template: str, **extra: str) -> Clause:
    """A standalone exclamation from a template that ends in '!'."""
    return Clause(fill(template, cast, **extra), standalone=True)


def can_append(group: list[Clause], clause: Clause, style: Style) -> bool:
    """Whether ``clause`` may be joined onto the sentence being built."""
    if group[-1].closed:
        return False
    if style.run_on:
        return True
    if clause.standalone or group[-1].standalone:
        return False
    return len(group) < style.max_clauses and (style.joins_intros or not clause.intro)


def render_sentence(rng: random.Random, group: list[Clause], style: Style) -> str:
    """Join a group of clauses into one capitalised, punctuated sentence."""
    first, *rest = group
    text = f"{first.intro}, {first.text}" if first.intro else first.text
    plain_joint = " and " if style.run_on else ", and "
    joints = (" and ", " and then ", " and so ") if style.run_on else (", and ", ", and then ")
    for clause in rest:
        if clause.intro:
            text += f"{plain_joint}{clause.intro[0].lower()}{clause.intro[1:]} {clause.text}"
        else:
            text += rng.choice(joints) + clause.text
    return capitalise(text) if group[-1].closed else capitalise(text) + "."


def render_paragraph(rng: random.Random, clauses: list[Clause], style: Style) -> str:
    """Group clauses into sentences according to the style and render them."""
    groups: list[list[Clause]] = []
    for clause in clauses:
        if groups and can_append(groups[-1], clause, style) and rng.random() < style.join_probability:
            groups[-1].append(clause)
        else:
            groups.append([clause])
    return " ".join(render_sentence(rng, group, style) for group in groups)


# ---------------------------------------------------------------------------------------
# Characters and cast
# ---------------------------------------------------------------------------------------


def child_identity(rng: random.Random) -> tuple[str, str, Pronouns]:
    """Name, kind noun and pronouns of a girl, a boy, or a child with a gender-neutral name."""
    group = rng.choice(("girl", "girl", "boy", "boy", "neutral"))
    if group == "girl":
        return rng.choice(GIRL_NAMES), "girl", PRONOUNS["she"]
    if group == "boy":
        return rng.choice(BOY_NAMES), "boy", PRONOUNS["he"]
    key = rng.choice(("he", "she", "they"))
    return rng.choice(NEUTRAL_NAMES), {"he": "boy", "she": "girl", "they": "kid"}[key], PRONOUNS[key]


def animal_identity(rng: random.Random) -> tuple[str, str, Pronouns]:
    """Name, species and pronouns of an animal character."""
    key = rng.choices(("he", "she", "they"), weights=(45, 45, 10))[0]
    return rng.choice(PET_NAMES), rng.choice(ANIMALS), PRONOUNS[key]


def random_character(rng: random.Random, avoid_name: str = "") -> Character:
    """A named child (55%) or named animal (45%), not called ``avoid_name``."""
    identity = child_identity if rng.random() < 0.55 else animal_identity
    name, kind, pronouns = identity(rng)
    while name == avoid_name:
        name, kind, pronouns = identity(rng)
    trait = rng.choice(TRAITS)
    looks = rng.choices(("little", rng.choice(("young", "small", "tiny", "big", "old")), trait), weights=(35, 25, 40))[
        0
    ]
    return Character(name, kind, pronouns, name, f"{with_article(f'{looks} {kind}')} named {name}", trait)


def random_grown_up(rng: random.Random, hero: Character) -> Character:
    """A grown-up of the hero's family, named from the hero's side: 'her mom'."""
    role, pronoun_key, vocative = rng.choice(GROWN_UP_ROLES)
    name = f"{hero.pronouns.possessive} {role}"
    return Character(name, role, PRONOUNS[pronoun_key], vocative, name, rng.choice(TRAITS))


def cast_story(rng: random.Random) -> Cast:
    """Draw the characters, place, weather and style of one story."""
    hero = random_character(rng)
    friend = random_character(rng, avoid_name=hero.name)
    grown_up = random_grown_up(rng, hero)
    place = rng.choice(OUTDOOR_PLACES) if rng.random() < 0.8 else rng.choice(INDOOR_PLACES)
    weather = rng.choice(tuple(WEATHER))
    style = rng.choices(STYLES, weights=STYLE_WEIGHTS)[0]
    dated_opening = rng.random() < DATED_OPENING_PROBABILITY
    slots = {
        **hero.slots(""),
        **friend.slots("f_"),
        **grown_up.slots("h_"),
        "place": place.noun,
        "at_place": f"{place.preposition} the {place.noun}",
        "weather": weather,
        "both": f"{hero.name} and {friend.name}",
    }
    return Cast(hero, friend, grown_up, place, weather, style, dated_opening, slots)


# ---------------------------------------------------------------------------------------
# Sentence builders
# ---------------------------------------------------------------------------------------


def detail(rng: random.Random, cast: Cast) -> bool:
    """Whether to add an optional detail, at the style's rate."""
    return rng.random() < cast.style.detail_probability


def adorn(rng: random.Random, cast: Cast, noun: str, *pools: tuple[str, ...]) -> str:
    """``noun`` with adjectives drawn from each pool in turn, each at the style's rate."""
    adjectives = [rng.choice(pool) for pool in pools if detail(rng, cast)]
    return " ".join([*dict.fromkeys(adjectives), noun])


def adverb(rng: random.Random, cast: Cast, pool: tuple[str, ...] = MOVEMENT_ADVERBS) -> str:
    """' happily' (with a leading space) at the style's rate, else ''."""
    return f" {rng.choice(pool)}" if detail(rng, cast) else ""


def speech(rng: random.Random, cast: Cast, speaker: Character, template: str, **extra: str) -> Clause:
    """A line of quoted dialogue with an attribution matching its punctuation."""
    words = capitalise(fill(template, cast, **extra))
    plain_verb, alternatives = {
        ".": ("said", STATEMENT_VERBS),
        "!": ("said", EXCLAMATION_VERBS),
        "?": ("asked", QUESTION_VERBS),
    }[words[-1]]
    verb = plain_verb if rng.random() < 0.55 else rng.choice(alternatives)
    manner = adverb(rng, cast, SPEECH_ADVERBS) if words[-1] == "." and rng.random() < 0.5 else ""
    quoted = words[:-1] + "," if words.endswith(".") else words
    form = rng.random()
    if form < 0.5:
        text = f'"{quoted}" {verb} {speaker.name}{manner}'
    elif form < 0.75:
        text = f'"{quoted}" {speaker.name} {verb}{manner}'
    elif form < 0.9:
        text = f'"{quoted}" {speaker.pronouns.subject} {verb}{manner}'
    else:
        text = f'{speaker.name} {verb}{manner}, "{words}"'
    return Clause(text, standalone=True)


def feeling(rng: random.Random, cast: Cast, who: Character, feelings: tuple[str, ...], reason: str = "") -> Clause:
    """'Lily felt sad' with a feeling from ``feelings``, and a 'because ...' reason in detailed styles."""
    adjective = rng.choice(feelings)
    degree = rng.choice(("", "very ", "so ", "really "))
    verb = rng.choice(("felt", "was"))
    because = f" because {reason}" if reason and detail(rng, cast) else ""
    return Clause(f"{who.name} {verb} {degree}{adjective}{because}")


def reaction(rng: random.Random, cast: Cast, who: Character, positive: bool) -> Clause:
    """A visible reaction: 'Lily grinned happily', 'Pip sniffled'."""
    verb = rng.choice(POSITIVE_REACTIONS if positive else NEGATIVE_REACTIONS)
    manner = adverb(rng, cast, POSITIVE_REACTION_ADVERBS if positive else NEGATIVE_REACTION_ADVERBS)
    return Clause(f"{who.name} {verb}{manner}")


def opening(rng: random.Random, cast: Cast) -> list[Clause]:
    """The first sentence, introducing the hero; 'in a big forest' about a quarter of the time."""
    intro = cast.hero.intro
    if cast.dated_opening:
        when = rng.choice(("One day", f"One {cast.weather} morning"))
        return [Clause(f"{intro} woke up with a big smile", when)]
    prep, home, _ = rng.choice(HOMES)
    setting = f"{prep} {with_article(f'{rng.choice(HOME_ADJECTIVES)} {home}')}"
    roll = rng.random()
    if roll < 0.30:
        return [Clause(f"in a big forest, there lived {intro}", "Once upon a time")]
    if roll < 0.50:
        return [Clause(f"{setting}, there lived {intro}", "Once upon a time")]
    if roll < 0.75:
        return [Clause(f"there was {intro}", "Once upon a time")]
    if roll < 0.90:
        return [Clause(f"there once was {intro} who lived {setting}")]
    return [Clause(f"{setting}, there lived {intro}", "Long ago")]


def first_event_intro(rng: random.Random, cast: Cast) -> str:
    """When the story's events begin: 'One day', unless the opening already said so."""
    if cast.dated_opening:
        return rng.choice(("That day", "After breakfast", "Later that day"))
    return "One day" if rng.random() < 0.65 else f"One {cast.weather} {rng.choice(TIMES_OF_DAY)}"


def description(rng: random.Random, cast: Cast) -> Clause:
    """One sentence about who the hero is or what the hero loves."""
    templates = (
        "{name} was very {trait}",
        "{he} {was} {a_trait} {kind} who loved to {activity}",
        "{name} loved {his} {toy} more than anything",
        "{name} had {a_thing} that {he} took everywhere",
        "{his} favorite snack was {a_food}",
        "{name} lived with {h_name} in {a_house}",
        "{name} liked to {activity} every day",
        "{name} {cared_for} {his} {toy}{manner}",
    )
    return narrate(
        cast,
        rng.choice(templates),
        a_trait=with_article(cast.hero.trait),
        activity=rng.choice(activities_for(cast.place))[0],
        toy=adorn(rng, cast, rng.choice(TOYS), SIZE_ADJECTIVES, LOOK_ADJECTIVES, COLOURS),
        a_thing=with_article(adorn(rng, cast, rng.choice(THINGS), SIZE_ADJECTIVES, LOOK_ADJECTIVES, COLOURS)),
        cared_for=rng.choice(CARING_VERBS),
        manner=adverb(rng, cast, CARING_ADVERBS),
        a_food=with_article(adorn(rng, cast, rng.choice(FOODS), TASTE_ADJECTIVES)),
        a_house=with_article(f"{rng.choice(HOME_ADJECTIVES)} house"),
    )


def scenery(rng: random.Random, cast: Cast) -> Clause:
    """A clause about the weather of the day."""
    return Clause(rng.choice(WEATHER[cast.weather]))


def outing(rng: random.Random, cast: Cast) -> Clause:
    """'One day, Lily skipped happily to the park.'"""
    return narrate(
        cast,
        "{name} {verb}{manner} to the {place}",
        first_event_intro(rng, cast),
        verb=rng.choice(MOVEMENT_VERBS),
        manner=adverb(rng, cast),
        place=adorn(rng, cast, cast.place.noun, PLACE_ADJECTIVES),
    )


def activities_for(place: Place) -> tuple[tuple[str, str], ...]:
    """Activities (base form, past tense) that fit indoors or outdoors."""
    return INDOOR_ACTIVITIES if place.indoors else OUTDOOR_ACTIVITIES


def play(rng: random.Random, cast: Cast, who: str, intro: str = "", say_where: bool = True) -> Clause:
    """'Lily and Pip flew a kite together in the park.'"""
    _, past = rng.choice(activities_for(cast.place))
    where = " {at_place}" if say_where and detail(rng, cast) else ""
    together = " together" if who != "{name}" and rng.random() < 0.3 else ""
    return narrate(cast, f"{who} {past}{together}{adverb(rng, cast, PLAY_ADVERBS)}{where}", intro)


def play_together(rng: random.Random, cast: Cast, rounds: int) -> list[Clause]:
    """Rounds of play: the first names both friends, later ones just say 'they'."""
    return [
        play(rng, cast, "they" if index else "{both}", intro, say_where=not index)
        for index, intro in enumerate(rng.sample(TRANSITIONS, rounds))
    ]


def meal(rng: random.Random, cast: Cast, occasion: str) -> Clause:
    """'Lily ate a juicy pear for breakfast.'"""
    food = with_article(adorn(rng, cast, rng.choice(FOODS), TASTE_ADJECTIVES))
    return narrate(
        cast, "{name} {verb} {food} for {occasion}", verb=rng.choice(EATING_VERBS), food=food, occasion=occasion
    )


def introduce_friend(rng: random.Random, cast: Cast) -> Clause:
    """Bring the friend into the story."""
    templates = (
        "{f_intro} often came over to play",
        "{name}'s best friend was {f_intro}",
        "{name} had a best friend, {f_intro}",
        "{f_intro} lived next door",
    )
    return narrate(cast, rng.choice(templates))


def closing(rng: random.Random, cast: Cast, with_friend: bool) -> Clause:
    """A last line that settles the story."""
    templates = [
        ("{name} went home with a big smile on {his} face", "In the end"),
        ("{name} fell asleep with a happy heart", "That night"),
        ("it was the best day ever", ""),
        ("{name} would always remember that {adjective} day", ""),
        ("{name} lived happily ever after", ""),
    ]
    if with_friend:
        templates += [
            ("{both} were the best of friends", "From that day on"),
            ("{both} played together every day", "After that"),
        ]
    template, intro = rng.choice(templates)
    return narrate(cast, template, intro, adjective=rng.choice(PRAISE_ADJECTIVES))


def moral(rng: random.Random, cast: Cast, lesson: str) -> Clause:
    """'Lily learned that it is good to keep trying.'"""
    return narrate(cast, "{name} learned that {lesson}", lesson=lesson)


def marvel(rng: random.Random, cast: Cast) -> Clause:
    """A rare clause built from long words (the corpus's lexical tail)."""
    templates = (
        "{name} saw {a_noun}, and it was the most {adverb} {adjective} thing {he} had ever seen",
        "it was {an_adverb} {adjective} day",
        "{name} drew {a_noun} that was simply {adjective}",
    )
    rare_adverb = rng.choice(RARE_ADVERBS)
    return narrate(
        cast,
        rng.choice(templates),
        adverb=rare_adverb,
        adjective=rng.choice(RARE_ADJECTIVES),
        a_noun=with_article(rng.choice(RARE_NOUNS)),
        an_adverb=with_article(rare_adverb),
    )


def long_list(rng: random.Random, cast: Cast) -> Clause:
    """A rare long inventory: 'In his toy box, Tom kept a ball, a kite, ..., and a drum'."""
    items = [with_article(toy) for toy in rng.sample(TOYS, rng.randint(6, 9))]
    return narrate(cast, "in {his} toy box, {name} kept {items}", items=listing(items))


# ---------------------------------------------------------------------------------------
# Plot shapes
# ---------------------------------------------------------------------------------------

Paragraphs = list[list[Clause]]


@dataclass(frozen=True)
class Trouble:
    """A trouble the hero cannot fix alone: setup, failed attempts, a plea, remedies."""

    things: tuple[str, ...]
    setup: str
    trouble: str
    reason: str
    attempts: tuple[str, ...]
    plea: str
    remedies: tuple[str, ...]
    owned: bool = True
    needs_grown_up: bool = False
    sudden: bool = True
    when: str = ""


TROUBLES = (
    Trouble(
        things=("kite", "balloon", "paper airplane", "hat", "scarf", "ribbon"),
        setup="{name} took {his} {thing} to the top of the hill",
        trouble="a big gust of wind blew the {thing} into the branches of a tall tree",
        reason="{his} {thing} was stuck in the tree",
        attempts=(
            "{name} jumped as high as {he} could, but {he} could not reach it",
            "{he} stretched up on {his} tiptoes, but the {thing} was still too high",
            "{he} shook the tree, but the {thing} did not fall",
            "{he} threw a pinecone at the branch, but it missed",
        ),
        plea="My {thing} is stuck in the tree! Can you help me?",
        remedies=(
            "{r_name} found a long stick and gently pushed the {thing} off the branch",
            "{r_name} lifted {name} up high, and {name} grabbed the {thing}",
            "{r_name} climbed up the tree and brought the {thing} back down",
        ),
    ),
    Trouble(
        things=("toy car", "robot", "toy train", "wagon", "music box", "toy boat", "airplane"),
        setup="{name} was playing with {his} {thing} in {his} room",
        trouble="the {thing} fell off the table and broke into pieces",
        reason="{his} {thing} was broken",
        attempts=(
            "{name} tried to put the pieces back together, but they kept falling apart",
            "{he} wrapped the {thing} with tape, but the tape would not stick",
            "{he} looked for the missing wheel, but {he} could not find it",
        ),
        plea="My {thing} is broken! Can you fix it?",
        remedies=(
            "{r_name} found some strong glue and carefully fixed the {thing}",
            "{r_name} found the missing piece under the bed and snapped it back into place",
            "{r_name} fixed the {thing} with a tiny screwdriver",
        ),
    ),
    Trouble(
        things=("ball", "toy boat", "sandal", "hat", "rubber duck"),
        setup="{name} was playing with {his} {thing} by the pond",
        trouble="the {thing} fell into the water and floated away from the shore",
        reason="{his} {thing} was floating away",
        attempts=(
            "{name} reached out as far as {he} could, but the {thing} was too far away",
            "{he} threw a pebble near it to push it back, but it only drifted farther",
            "{he} called to the {thing}, but of course it did not listen",
        ),
        plea="Help! My {thing} is floating away!",
        remedies=(
            "{r_name} found a long branch and gently pulled the {thing} back to the shore",
            "{r_name} waded into the shallow water and picked up the {thing}",
            "{r_name} asked a friendly duck to push the {thing} back with its beak",
        ),
    ),
    Trouble(
        things=("shadow", "shape"),
        setup="{name} was lying in bed with the lights off",
        trouble="{he} saw a big, spooky {thing} on the wall",
        reason="the {thing} looked like a monster",
        attempts=(
            "{name} pulled the blanket over {his} head, but {he} still felt scared",
            "{he} squeezed {his} eyes shut, but {he} could not fall asleep",
            "{he} hugged {his} teddy bear tightly, but {his} heart was still beating fast",
        ),
        plea="There is a monster on my wall!",
        remedies=(
            "{r_name} turned on the lamp and showed {name} that the {thing} was only a coat on the door",
            "{r_name} opened the curtains, and they saw that the {thing} was just a branch swaying in the wind",
        ),
        owned=False,
        needs_grown_up=True,
        when="One night",
    ),
    Trouble(
        things=("cookie jar", "storybook", "box of crayons", "jar of honey", "puzzle", "paint set"),
        setup="{name} wanted the {thing} from the top shelf",
        trouble="the shelf was much too high for {him}",
        reason="{he} could not reach the {thing}",
        attempts=(
            "{he} stood on {his} tiptoes, but {he} could not reach it",
            "{he} stacked some pillows and climbed on top, but they wobbled and fell",
            "{he} jumped up and down, but the shelf was still too high",
        ),
        plea="Can you help me reach the {thing}?",
        remedies=(
            "{r_name} brought a little stool and held it steady while {name} climbed up",
            "{r_name} reached up and gave the {thing} to {name}",
        ),
        owned=False,
        sudden=False,
    ),
    Trouble(
        things=("picnic", "kite party", "bike ride", "soccer game", "trip to the beach"),
        setup="{name} had planned {a_thing} for the whole afternoon",
        trouble="dark clouds filled the sky, and it began to rain",
        reason="the rain had spoiled {his} {thing}",
        attempts=(
            "{name} waited by the window, but the rain did not stop",
            "{he} asked the clouds to go away, but they stayed",
            "{he} put on {his} boots, but the rain was too heavy",
        ),
        plea="The rain ruined everything! What can we do now?",
        remedies=(
            "{r_name} spread a blanket on the living room floor, and they had an indoor picnic",
            "{r_name} built a cozy fort out of chairs and blankets, and they played inside all afternoon",
            "{r_name} showed {name} how to make paper boats to float in the puddles",
        ),
        owned=False,
    ),
    Trouble(
        things=("bike", "scooter", "skateboard", "sled"),
        setup="{name} wanted to ride {his} new {thing}",
        trouble="every time {he} tried, {he} wobbled and fell over",
        reason="{he} kept falling off {his} {thing}",
        attempts=(
            "{he} pushed off, but the {thing} tipped over and {he} tumbled onto the grass",
            "{he} tried again, but {he} fell and scraped {his} knee",
            "{he} went very slowly, but {he} still lost {his} balance",
        ),
        plea="I keep falling! Can you help me?",
        remedies=(
            "{r_name} held the {thing} steady and walked beside {name} until {he} found {his} balance",
            "{r_name} told {name} to look straight ahead and keep going, and soon {he} {was} riding all by {himself}",
        ),
        sudden=False,
    ),
    Trouble(
        things=("bird", "robin", "sparrow", "bluebird", "finch", "chick"),
        setup="{name} was walking through the garden",
        trouble="{he} found a tiny {thing} on the ground that had fallen out of its nest",
        reason="the little {thing} was all alone",
        attempts=(
            "{name} tried to reach the nest, but it was too high",
            "{he} made a soft bed of leaves, but the little {thing} still chirped for its mother",
            "{he} looked for the mother bird, but {he} could not see her",
        ),
        plea="A baby {thing} fell out of its nest! Can you help it?",
        remedies=(
            "{r_name} brought a ladder and carefully put the little {thing} back in its nest",
            "{r_name} lifted {name} up high, and {name} gently placed the {thing} back in its nest",
        ),
        owned=False,
    ),
    Trouble(
        things=("butterfly",),
        setup="{name} was chasing a yellow {thing} through the tall grass",
        trouble="soon {he} had wandered too far, and {he} could not find the way home",
        reason="{he} {was} lost",
        attempts=(
            "{he} walked one way, but everything looked the same",
            "{he} climbed a small hill, but {he} could not see {his} house",
            "{he} called for help, but nobody answered",
        ),
        plea="I am lost! Can you help me find my way home?",
        remedies=(
            "{r_name} heard the call and came running, and together they followed the stream back home",
            "{r_name} found {name} and showed {him} the path back to the village",
        ),
        owned=False,
    ),
    Trouble(
        things=("sandcastle", "sand tower"),
        setup="{name} was building a big {thing} at the beach",
        trouble="a big wave crashed onto the sand and washed the {thing} away",
        reason="{his} {thing} was gone",
        attempts=(
            "{he} built it again, but another wave knocked it down",
            "{he} piled up more sand, but the water washed it away too",
            "{he} tried to stop the waves with {his} hands, but the water was too strong",
        ),
        plea="The waves keep knocking down my {thing}!",
        remedies=(
            "{r_name} helped {name} build a new {thing} far away from the water",
            "{r_name} dug a deep moat around the {thing} to keep the waves away",
        ),
        owned=False,
    ),
    Trouble(
        things=("sweater", "dress", "shirt", "jacket", "scarf", "hoodie"),
        setup="{name} was wearing {his} favorite {thing}",
        trouble="{he} slipped in a puddle, and the {thing} got covered in mud",
        reason="{his} favorite {thing} was dirty",
        attempts=(
            "{he} rubbed the mud with a leaf, but it only spread more",
            "{he} shook the {thing}, but the mud stayed",
            "{he} splashed it with puddle water, but that made it even muddier",
        ),
        plea="My {thing} is all muddy! What do I do?",
        remedies=(
            "{r_name} washed the {thing} in warm, soapy water until it was clean again",
            "{r_name} scrubbed the mud away and hung the {thing} in the sun to dry",
        ),
    ),
)
OFFERS_OF_HELP = (
    "Don't worry, {name}. I will help you!",
    "I know what to do!",
    "Let's fix this together.",
    "Don't cry, {name}. I am here.",
    "We can do it if we try together.",
)
THANKS = (
    "Thank you, {voc}!",
    "Thank you so much, {voc}!",
    "You are the best, {voc}!",
    "Thank you for helping me!",
    "I could not have done it without you!",
)


def problem_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """Trouble → failed attempts → help → resolution."""
    problem = rng.choice(TROUBLES)
    thing = rng.choice(problem.things)
    rescuer = cast.grown_up if problem.needs_grown_up or rng.random() < 0.5 else cast.friend
    extra = {"thing": thing, "a_thing": with_article(thing), **rescuer.slots("r_")}
    beginning = [*opening(rng, cast), description(rng, cast)]
    if problem.owned:
        beginning.append(
            narrate(
                cast, "{name} had {a_fancy} {thing}", a_fancy=with_article(rng.choice(LOOK_ADJECTIVES)), thing=thing
            )
        )
    beginning.append(narrate(cast, problem.setup, problem.when or first_event_intro(rng, cast), **extra))
    if not problem.when and detail(rng, cast):
        beginning.append(scenery(rng, cast))
    attempts = rng.sample(problem.attempts, rng.randint(1, len(problem.attempts)))
    middle = [
        narrate(cast, problem.trouble, "Suddenly" if problem.sudden and rng.random() < 0.5 else "", **extra),
        feeling(rng, cast, cast.hero, NEGATIVE_FEELINGS, reason=fill(problem.reason, cast, **extra)),
        *(narrate(cast, attempt, **extra) for attempt in attempts),
        reaction(rng, cast, cast.hero, positive=False),
    ]
    summons = "{r_name} came to see what was wrong" if rescuer is cast.grown_up else "{r_intro} came along"
    middle += [narrate(cast, summons, "Just then", **extra), speech(rng, cast, cast.hero, problem.plea, **extra)]
    ending = [
        speech(rng, cast, rescuer, rng.choice(OFFERS_OF_HELP)),
        narrate(cast, rng.choice(problem.remedies), **extra),
        feeling(rng, cast, cast.hero, POSITIVE_FEELINGS),
        speech(rng, cast, cast.hero, rng.choice(THANKS), voc=rescuer.vocative),
    ]
    ending.append(
        moral(rng, cast, rng.choice(MORALS["problem"]))
        if rng.random() < 0.5
        else closing(rng, cast, with_friend=rescuer is cast.friend)
    )
    return [beginning, middle, ending]


GREETINGS = (
    "Hi! My name is {name}. What is your name?",
    "Hello! Why are you all alone?",
    "Hi there! Do you want to play with me?",
    "Hello! Are you new here?",
)
SHY_ANSWERS = (
    "I am {f_name}. I am new here, and I do not have any friends yet.",
    "My name is {f_name}. Nobody wants to play with me.",
    "I am {f_name}. I am too shy to ask anyone to play.",
)
INVITATIONS = (
    "You can play with me! Let's {activity}!",
    "Do you want to be my friend?",
    "Come on, {f_name}! Let's {activity} together!",
    "Would you like to {activity} with me?",
)
FRIENDLY_THANKS = (
    "Thank you for playing with me, {name}!",
    "This is the best day ever!",
    "I am so glad I met you, {name}.",
    "Can we play again tomorrow?",
)


def friendship_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """A lonely newcomer, an invitation, play, and a new friendship."""
    base_activity, _ = rng.choice(activities_for(cast.place))
    stranger = with_article(f"{rng.choice(('little', cast.friend.trait))} {cast.friend.kind}")
    beginning = [*opening(rng, cast), description(rng, cast), outing(rng, cast)]
    if detail(rng, cast):
        beginning.append(scenery(rng, cast))
    middle = [
        narrate(
            cast,
            "{he} saw {stranger} sitting all alone {spot}",
            "There",
            stranger=stranger,
            spot=rng.choice(RESTING_SPOTS),
        ),
        narrate(cast, "the {f_kind} looked {feeling}", feeling=rng.choice(("lonely", "sad", "shy", "glum"))),
        speech(rng, cast, cast.hero, rng.choice(GREETINGS)),
        speech(rng, cast, cast.friend, rng.choice(SHY_ANSWERS)),
        speech(rng, cast, cast.hero, rng.choice(INVITATIONS), activity=base_activity),
        reaction(rng, cast, cast.friend, positive=True),
    ]
    ending = play_together(rng, cast, rng.randint(1, 3))
    if rng.random() < 0.4:
        ending += [
            narrate(cast, "they both wanted to play with the same {toy}", "All of a sudden", toy=rng.choice(TOYS)),
            narrate(cast, "{name} let {f_name} have the first turn, and then they took turns"),
        ]
    ending += [
        narrate(cast, "{f_name} was not lonely anymore"),
        speech(rng, cast, cast.friend, rng.choice(FRIENDLY_THANKS)),
        moral(rng, cast, rng.choice(MORALS["friendship"]))
        if rng.random() < 0.4
        else closing(rng, cast, with_friend=True),
    ]
    return [beginning, middle, ending]


def lost_and_found_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """A treasured object goes missing, a search, and a happy discovery."""
    colour = rng.choice(COLOURS)
    treasure = rng.choice(TOYS + THINGS)
    extra = {
        "treasure": treasure,
        "colour": colour,
        "a_treasure": with_article(adorn(rng, cast, f"{colour} {treasure}", LOOK_ADJECTIVES)),
    }
    beginning = [
        *opening(rng, cast),
        narrate(cast, "{name} had {a_treasure} that {he} loved very much", **extra),
        narrate(
            cast,
            rng.choice(
                (
                    "{he} took it everywhere {he} went",
                    "{h_name} had given it to {him} on {his} birthday",
                    "{he} kept it safe every single day",
                )
            ),
            **extra,
        ),
        narrate(cast, "{name} took {his} {treasure} to the {place}", first_event_intro(rng, cast), **extra),
    ]
    search_spots = INDOOR_SEARCH_SPOTS if cast.place.indoors else OUTDOOR_SEARCH_SPOTS
    spots = rng.sample(search_spots, rng.randint(1, 3))
    middle = [
        play(rng, cast, who="{name}", intro="There"),
        narrate(cast, "{he} put the {treasure} down {spot} for a moment", spot=spots[0], **extra),
        narrate(cast, "when {he} came back, the {treasure} was gone", **extra),
        speech(rng, cast, cast.hero, "Oh no! Where is my {treasure}?", **extra),
        feeling(rng, cast, cast.hero, NEGATIVE_FEELINGS, reason=fill("{his} {treasure} was lost", cast, **extra)),
        *(narrate(cast, "{he} looked {spot}, but it was not there", spot=spot) for spot in spots),
    ]
    ending = [
        narrate(cast, "{f_intro} came to help", "Just then"),
        speech(rng, cast, cast.friend, "Don't worry, {name}. I will help you look!"),
        narrate(
            cast,
            "{f_name} spotted something {colour} {spot}",
            "Soon",
            spot=fill(rng.choice(SURPRISING_SPOTS), cast),
            **extra,
        ),
        exclaim(cast, "it was the {treasure}!", **extra),
        reaction(rng, cast, cast.hero, positive=True),
        speech(rng, cast, cast.hero, rng.choice(THANKS), voc=cast.friend.vocative),
        narrate(
            cast,
            rng.choice(
                (
                    "{name} {cared_for} {his} {treasure}{manner}",
                    "{name} promised to always take good care of {his} {treasure}",
                )
            ),
            cared_for=rng.choice(CARING_VERBS),
            manner=adverb(rng, cast, CARING_ADVERBS),
            **extra,
        ),
        moral(rng, cast, rng.choice(MORALS["lost"])) if rng.random() < 0.4 else closing(rng, cast, with_friend=True),
    ]
    return [beginning, middle, ending]


@dataclass(frozen=True)
class Obstacle:
    """Something in the way on a journey, why it is hard, and how it is overcome."""

    sight: str
    difficulty: str
    way_through: str


OBSTACLES = (
    Obstacle(
        "a wide river blocked their path",
        "the water was too deep to walk through",
        "they found some big flat stepping stones and hopped across one by one",
    ),
    Obstacle(
        "a big dark cave stood in their way",
        "it was very dark inside",
        "they held hands, turned on a flashlight, and walked through together",
    ),
    Obstacle(
        "a huge fallen tree lay across the path",
        "it was too big to climb over alone",
        "{f_name} gave {name} a boost, and then {name} pulled {f_name} up",
    ),
    Obstacle(
        "a thick gray fog rolled in",
        "they could not see the path",
        "they followed the sound of the river until the fog lifted",
    ),
    Obstacle(
        "dark clouds filled the sky and it began to rain",
        "they were getting very wet",
        "they hid under a giant leaf until the rain stopped",
    ),
    Obstacle(
        "the path split into two",
        "they did not know which way to go",
        "a wise old owl told them to take the path with the flowers",
    ),
    Obstacle(
        "a steep hill rose in front of them",
        "their legs were tired",
        "they sang a marching song and climbed one step at a time",
    ),
)


ENCOURAGEMENTS = ("We can do it!", "Don't give up!", "Let's think of a plan.", "Be brave! I am right here.")


def journey_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """Two friends travel to a faraway place, pass an obstacle, and see a wonder."""
    destination = rng.choice(DESTINATIONS)
    obstacle = rng.choice(OBSTACLES)
    packed = [with_article(item) for item in [*rng.sample(PACKING_ITEMS, 2), rng.choice(SNACKS)]]
    path = rng.sample(OUTDOOR_PLACES, 2)
    beginning = [
        *opening(rng, cast),
        introduce_friend(rng, cast),
        narrate(cast, "{name} had always wanted to see {destination}", destination=destination),
        speech(rng, cast, cast.hero, "{f_name}, let's go to {destination}!", destination=destination),
        speech(
            rng,
            cast,
            cast.friend,
            rng.choice(
                ("Yes! That sounds like a big adventure!", "Okay! But we must be brave.", "Let's go right now!")
            ),
        ),
        narrate(cast, "they packed {items}", "So", items=listing(packed)),
    ]
    middle = [
        narrate(
            cast,
            "{both} {verb}{manner} past the {place}",
            "First",
            verb=rng.choice(MOVEMENT_VERBS),
            manner=adverb(rng, cast),
            place=adorn(rng, cast, path[0].noun, PLACE_ADJECTIVES),
        ),
        narrate(
            cast,
            "they saw {animal} {doing} {at}",
            "Along the way",
            animal=with_article(adorn(rng, cast, rng.choice(ANIMALS), SIZE_ADJECTIVES)),
            doing=rng.choice(ANIMAL_DOINGS),
            at=f"{path[1].preposition} the {path[1].noun}",
        ),
        narrate(cast, obstacle.sight, "Then"),
        narrate(cast, obstacle.difficulty),
        feeling(rng, cast, cast.friend, NEGATIVE_FEELINGS),
        speech(rng, cast, cast.hero, rng.choice(ENCOURAGEMENTS)),
        narrate(cast, obstacle.way_through, "Finally"),
    ]
    ending = [
        narrate(cast, "they reached {destination}", "At last", destination=destination),
        narrate(cast, "they saw {sight}", "There", sight=rng.choice(SIGHTS)),
        speech(rng, cast, cast.friend, "Wow! It is so {adjective}!", adjective=rng.choice(PRAISE_ADJECTIVES)),
        narrate(cast, "they ate {food} and rested for a while", food=with_article(rng.choice(FOODS))),
        narrate(
            cast,
            "they {verb} home{manner}",
            "When the sun began to set",
            verb=rng.choice(MOVEMENT_VERBS),
            manner=adverb(rng, cast),
        ),
        moral(rng, cast, rng.choice(MORALS["journey"])) if rng.random() < 0.5 else closing(rng, cast, with_friend=True),
    ]
    return [beginning, middle, ending]


@dataclass(frozen=True)
class Lesson:
    """A misstep, its consequence, an apology and the lesson learned."""

    setup: str
    misdeed: str
    outburst: str
    consequence: str
    realisation: str
    apology: str
    forgiveness: str
    lesson: str
    habit: str


LESSONS = (
    Lesson(
        setup="{name} got a new {toy} and played with it all morning",
        misdeed="when {f_name} asked to play with it, {name} held it tight",
        outburst="No! It is mine!",
        consequence="{f_name} looked sad and walked away",
        realisation="playing alone was not much fun, and {name} began to feel lonely",
        apology="I am sorry, {f_name}. Do you want to play with my {toy} too?",
        forgiveness="{f_name} smiled, and they played with the {toy} together",
        lesson="sharing makes playing more fun",
        habit="shared {his} toys",
    ),
    Lesson(
        setup="{h_name} told {name} not to go near the muddy pond",
        misdeed="{name} did not listen and ran to the pond anyway",
        outburst="I just want to see the frogs!",
        consequence="{he} slipped and fell in the mud, and {his} new {cloth} got all dirty",
        realisation="{name} knew {he} should have listened",
        apology="I am sorry I did not listen, {h_voc}.",
        forgiveness="{h_name} gave {him} a warm hug and helped {him} get clean",
        lesson="it is important to listen to the people who love you",
        habit="listened to {h_name}",
    ),
    Lesson(
        setup="{name} was playing ball in the house",
        misdeed="the ball hit {h_name}'s favorite vase, and it broke, but {name} said the cat did it",
        outburst="It was not me!",
        consequence="all day, {name} had a heavy feeling in {his} tummy",
        realisation="{he} knew that telling a fib was wrong",
        apology="I am sorry, {h_voc}. I broke the vase.",
        forgiveness="{h_name} hugged {him} and said that telling the truth was very brave",
        lesson="telling the truth is always the right thing to do",
        habit="told the truth",
    ),
    Lesson(
        setup="{name} planted a little seed in the garden",
        misdeed="the next morning, {he} dug it up to see if it had grown",
        outburst="Why is it not a flower yet?",
        consequence="the tiny seed had not even had time to sprout",
        realisation="{name} understood that seeds need time, water, and sunshine",
        apology="I will wait this time, little seed.",
        forgiveness="{he} planted the seed again and watered it every day until a flower bloomed",
        lesson="good things take time",
        habit="waited patiently",
    ),
    Lesson(
        setup="{f_name} came to school wearing a funny {cloth}",
        misdeed="{name} pointed and laughed at it",
        outburst="That {cloth} looks so silly!",
        consequence="{f_name}'s eyes filled with tears",
        realisation="{name} remembered how bad it felt when someone laughed at {him}",
        apology="I am sorry, {f_name}. Your {cloth} is actually very nice.",
        forgiveness="{f_name} wiped {f_his} eyes and smiled again",
        lesson="kind words make everyone feel happy",
        habit="used kind words",
    ),
    Lesson(
        setup="{h_name} asked {name} to carry a basket of eggs home carefully",
        misdeed="{name} was in a hurry and ran as fast as {he} could",
        outburst="I am the fastest runner in the world!",
        consequence="{he} tripped over a rock, and some of the eggs cracked",
        realisation="{name} knew that rushing had made things worse",
        apology="I am sorry, {h_voc}. I should have been careful.",
        forgiveness="{h_name} said that mistakes help us learn, and they made an omelet with the eggs",
        lesson="it is better to be careful than to rush",
        habit="walked carefully",
    ),
    Lesson(
        setup="{name}'s room was full of toys on the floor",
        misdeed="{he} did not want to tidy up and went outside to play instead",
        outburst="I will clean up later!",
        consequence="that evening, {he} tripped over {a_toy} and could not find {his} favorite book",
        realisation="{name} saw that the mess made everything harder",
        apology="{h_voc}, can you help me tidy up?",
        forgiveness="together they put every toy back in its place",
        lesson="a tidy room makes life easier",
        habit="put {his} toys away",
    ),
    Lesson(
        setup="{h_name} made a big bowl of {veg} soup for dinner",
        misdeed="{name} crossed {his} arms and would not try a single spoonful",
        outburst="Yuck! I do not like {veg} soup!",
        consequence="{name} was still hungry at bedtime",
        realisation="{he} wondered if the soup might taste good after all",
        apology="Can I try a little bit of the soup, {h_voc}?",
        forgiveness="{name} tasted it, and it was warm and delicious",
        lesson="it is good to try new things",
        habit="tried new foods",
    ),
    Lesson(
        setup="{h_name} baked a plate of cookies for the whole family",
        misdeed="{name} sneaked into the kitchen and ate almost all of them",
        outburst="Just one more cookie!",
        consequence="soon {name} had a tummy ache, and there were no cookies left for anyone else",
        realisation="{name} knew {he} had been greedy",
        apology="I am sorry I ate the cookies. Can I help you bake some more?",
        forgiveness="{h_name} smiled, and they baked a new batch together",
        lesson="it is kind to save some for others",
        habit="saved some treats for others",
    ),
    Lesson(
        setup="{name} was building a big puzzle of {a_animal}",
        misdeed="when a piece did not fit, {he} threw the puzzle on the floor",
        outburst="This is too hard! I give up!",
        consequence="the pieces scattered all over the room",
        realisation="{name} knew that giving up would never finish the puzzle",
        apology="I will try again, one piece at a time.",
        forgiveness="{f_name} helped {him} pick up the pieces, and soon the puzzle was finished",
        lesson="you should never give up",
        habit="kept trying",
    ),
)


def lesson_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """A misstep, its consequence, an apology, and a lesson learned."""
    lesson = rng.choice(LESSONS)
    toy = rng.choice(TOYS)
    extra = {
        "toy": toy,
        "a_toy": with_article(toy),
        "cloth": rng.choice(CLOTHES),
        "veg": rng.choice(VEGETABLES),
        "a_animal": with_article(rng.choice(ANIMALS)),
    }
    beginning = [
        *opening(rng, cast),
        description(rng, cast),
        introduce_friend(rng, cast),
        narrate(cast, lesson.setup, first_event_intro(rng, cast), **extra),
    ]
    middle = [
        narrate(cast, lesson.misdeed, **extra),
        speech(rng, cast, cast.hero, lesson.outburst, **extra),
        narrate(cast, lesson.consequence, **extra),
        feeling(rng, cast, cast.hero, REGRETFUL_FEELINGS),
        narrate(cast, lesson.realisation, **extra),
    ]
    ending = [
        speech(rng, cast, cast.hero, lesson.apology, **extra),
        narrate(cast, lesson.forgiveness, **extra),
        feeling(rng, cast, cast.hero, POSITIVE_FEELINGS),
        moral(rng, cast, lesson.lesson),
        narrate(cast, "{name} always {habit}", "From that day on", habit=fill(lesson.habit, cast)),
    ]
    return [beginning, middle, ending]


MORNING_ROUTINE = (
    "{he} stretched {his} arms and yawned",
    "{he} brushed {his} teeth",
    "{he} washed {his} face with cold water",
    "{he} put on {his} {colour} {cloth}",
    "{he} made {his} bed",
    "{he} combed {his} hair",
    "{he} drank a cup of {drink}",
    "{he} fed {his} pet {animal}",
    "{he} opened the window to say good morning to the sun",
)
GOODNIGHTS = ("Good night, {h_voc}. I love you.", "Good night, {h_voc}!", "Can you read it again tomorrow, {h_voc}?")


def bedtime_plot(rng: random.Random, cast: Cast) -> Paragraphs:
    """A whole day, from waking up to a bedtime story and sweet dreams."""
    morning = [
        *opening(rng, cast),
        narrate(cast, "{name} jumped out of bed and opened the curtains"),
        *(
            narrate(
                cast,
                step,
                colour=rng.choice(COLOURS),
                cloth=rng.choice(CLOTHES),
                drink=rng.choice(DRINKS),
                animal=rng.choice(ANIMALS),
            )
            for step in rng.sample(MORNING_ROUTINE, rng.randint(2, 4))
        ),
        meal(rng, cast, "breakfast"),
    ]
    day = [
        outing(rng, cast),
        scenery(rng, cast),
        narrate(cast, "{he} met {f_intro} there", "Soon"),
        *play_together(rng, cast, rng.randint(1, 2)),
    ]
    evening = [
        narrate(cast, "{name} came home", "In the evening"),
        meal(rng, cast, "dinner"),
        narrate(cast, "{he} took a warm bath with {his} {toy}", "After dinner", toy=rng.choice(BATH_TOYS)),
        narrate(
            cast,
            "{h_name} read {him} a story about {animal} who {topic}",
            "Then",
            animal=with_article(rng.choice(ANIMALS)),
            topic=rng.choice(STORY_TOPICS),
        ),
        speech(rng, cast, cast.hero, rng.choice(GOODNIGHTS)),
        speech(
            rng,
            cast,
            cast.grown_up,
            rng.choice(("Good night, sleep tight.", "Sweet dreams, {voc}.", "I love you too.")),
        ),
        narrate(cast, "{name} closed {his} eyes and dreamed about {dream}", dream=rng.choice(DREAMS)),
    ]
    return [morning, day, evening]


PLOTS: tuple[Callable[[random.Random, Cast], Paragraphs], ...] = (
    problem_plot,
    friendship_plot,
    lost_and_found_plot,
    journey_plot,
    lesson_plot,
    bedtime_plot,
)


def add_rarities(rng: random.Random, cast: Cast, paragraphs: Paragraphs) -> Paragraphs:
    """Occasionally insert a long-word clause or a long list (the corpus's tails)."""
    if rng.random() < RARE_WORD_PROBABILITY:
        middle = paragraphs[1]
        middle.insert(rng.randint(1, len(middle)), marvel(rng, cast))
    if rng.random() < LONG_LIST_PROBABILITY:
        paragraphs[0].insert(1, long_list(rng, cast))
    return paragraphs
