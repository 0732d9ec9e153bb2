"""A seeded probabilistic story grammar that writes TinyStories-like children's stories.

The corpus trains the project's small embedded language model (a stand-in for
TinyStories-8M). Every story has named characters, places, objects and feelings, quoted
dialogue, and one of six plot shapes: a problem solved with help, a new friendship, a lost
treasure found, a journey, a lesson learned, and a day that ends at bedtime. Each story is
told in one of four sentence styles (short and simple, plain, rich compound sentences, or a
rare child-like run-on), so readability varies from story to story; about one story in a
hundred also carries a rare long word or a long list, so the training data has tails.

All randomness flows through an explicit :class:`random.Random`: the same seed gives a
byte-identical corpus. The module reads top to bottom as word lists, grammar helpers,
sentence builders, plot shapes and the public API.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = ["STORY_SEPARATOR", "generate_story", "generate_corpus", "write_corpus", "read_corpus"]

STORY_SEPARATOR = "\n<|endoftext|>\n"

# ---------------------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------------------

GIRL_NAMES = (
    "Abby",
    "Ada",
    "Alice",
    "Amelia",
    "Amy",
    "Anna",
    "Annie",
    "Ava",
    "Bella",
    "Beth",
    "Becky",
    "Cara",
    "Chloe",
    "Clara",
    "Cora",
    "Daisy",
    "Daphne",
    "Dora",
    "Edith",
    "Elsie",
    "Ella",
    "Emily",
    "Emma",
    "Eva",
    "Evie",
    "Fern",
    "Fiona",
    "Flora",
    "Freya",
    "Gemma",
    "Gina",
    "Grace",
    "Greta",
    "Hannah",
    "Hazel",
    "Heidi",
    "Holly",
    "Iris",
    "Isla",
    "Ivy",
    "Jade",
    "Jane",
    "Jenny",
    "Josie",
    "Julia",
    "June",
    "Kate",
    "Katie",
    "Lena",
    "Libby",
    "Lila",
    "Lily",
    "Lola",
    "Lottie",
    "Lucy",
    "Luna",
    "Mabel",
    "Maggie",
    "Maya",
    "Megan",
    "Mia",
    "Mila",
    "Millie",
    "Molly",
    "Nell",
    "Nina",
    "Nora",
    "Olive",
    "Olivia",
    "Paige",
    "Pearl",
    "Penny",
    "Poppy",
    "Rita",
    "Rose",
    "Rosie",
    "Ruby",
    "Sadie",
    "Sally",
    "Sara",
    "Sophie",
    "Stella",
    "Susie",
    "Tess",
    "Tilly",
    "Tina",
    "Violet",
    "Wendy",
    "Willow",
    "Zoe",
)
BOY_NAMES = (
    "Adam",
    "Archie",
    "Arlo",
    "Ben",
    "Benny",
    "Billy",
    "Bobby",
    "Bruno",
    "Caleb",
    "Carl",
    "Danny",
    "Dave",
    "Dennis",
    "Dylan",
    "Eddie",
    "Eli",
    "Ethan",
    "Felix",
    "Finn",
    "Frank",
    "Freddie",
    "George",
    "Gus",
    "Harry",
    "Henry",
    "Hugo",
    "Ian",
    "Jack",
    "Jacob",
    "Jake",
    "James",
    "Jasper",
    "Joe",
    "Jonah",
    "Kai",
    "Kevin",
    "Kyle",
    "Leo",
    "Leon",
    "Liam",
    "Louis",
    "Luke",
    "Mark",
    "Matt",
    "Max",
    "Mike",
    "Milo",
    "Nate",
    "Ned",
    "Nick",
    "Noah",
    "Oliver",
    "Ollie",
    "Oscar",
    "Otis",
    "Owen",
    "Paul",
    "Percy",
    "Pete",
    "Ralph",
    "Ray",
    "Rex",
    "Rory",
    "Ryan",
    "Seth",
    "Simon",
    "Stanley",
    "Ted",
    "Teddy",
    "Theo",
    "Tim",
    "Timmy",
    "Toby",
    "Tom",
    "Tony",
    "Victor",
    "Walter",
    "Wesley",
    "Will",
    "Zack",
)
NEUTRAL_NAMES = (
    "Alex",
    "Ash",
    "Avery",
    "Casey",
    "Charlie",
    "Drew",
    "Frankie",
    "Jamie",
    "Jesse",
    "Jordan",
    "Kit",
    "Marley",
    "Morgan",
    "Parker",
    "Quinn",
    "Reese",
    "Remy",
    "Riley",
    "River",
    "Robin",
    "Rowan",
    "Sage",
    "Sam",
    "Sky",
    "Taylor",
)
PET_NAMES = (
    "Acorn",
    "Barnaby",
    "Bean",
    "Biscuit",
    "Bingo",
    "Bolt",
    "Bramble",
    "Bubbles",
    "Buddy",
    "Bumble",
    "Buttons",
    "Chester",
    "Cinnamon",
    "Clover",
    "Coco",
    "Cookie",
    "Cupcake",
    "Dash",
    "Dotty",
    "Dumpling",
    "Flick",
    "Fluffy",
    "Fuzzy",
    "Ginger",
    "Gizmo",
    "Hazelnut",
    "Honey",
    "Hopper",
    "Jellybean",
    "Lucky",
    "Maple",
    "Marble",
    "Mittens",
    "Mocha",
    "Moss",
    "Muffin",
    "Nibbles",
    "Noodle",
    "Nutmeg",
    "Patch",
    "Peanut",
    "Pebble",
    "Pepper",
    "Pickles",
    "Pip",
    "Puddle",
    "Puff",
    "Rusty",
    "Scout",
    "Shadow",
    "Snowy",
    "Socks",
    "Sparky",
    "Sprinkles",
    "Sprout",
    "Squeaky",
    "Sunny",
    "Taffy",
    "Thistle",
    "Toffee",
    "Tumble",
    "Twinkle",
    "Waddles",
    "Waffles",
    "Whiskers",
    "Wobble",
    "Ziggy",
    "Zippy",
)
ANIMALS = (
    "alligator",
    "alpaca",
    "ant",
    "anteater",
    "armadillo",
    "badger",
    "bat",
    "bear",
    "beaver",
    "bee",
    "beetle",
    "bird",
    "bison",
    "bluebird",
    "buffalo",
    "bunny",
    "butterfly",
    "calf",
    "camel",
    "canary",
    "cat",
    "caterpillar",
    "chameleon",
    "cheetah",
    "chick",
    "chicken",
    "chipmunk",
    "cow",
    "crab",
    "cricket",
    "crocodile",
    "crow",
    "deer",
    "dinosaur",
    "dog",
    "dolphin",
    "donkey",
    "dove",
    "dragon",
    "dragonfly",
    "duck",
    "duckling",
    "eagle",
    "elephant",
    "elk",
    "emu",
    "falcon",
    "fawn",
    "ferret",
    "finch",
    "firefly",
    "fish",
    "flamingo",
    "fox",
    "frog",
    "gecko",
    "gerbil",
    "giraffe",
    "goat",
    "goldfish",
    "goose",
    "gorilla",
    "grasshopper",
    "guinea pig",
    "hamster",
    "hare",
    "hawk",
    "hedgehog",
    "hen",
    "heron",
    "hippo",
    "horse",
    "hummingbird",
    "iguana",
    "jaguar",
    "jellyfish",
    "kangaroo",
    "kitten",
    "koala",
    "ladybug",
    "lamb",
    "lemur",
    "leopard",
    "lion",
    "lizard",
    "llama",
    "lobster",
    "lynx",
    "meerkat",
    "mole",
    "monkey",
    "moose",
    "moth",
    "mouse",
    "mule",
    "newt",
    "octopus",
    "ostrich",
    "otter",
    "owl",
    "ox",
    "panda",
    "panther",
    "parrot",
    "peacock",
    "pelican",
    "penguin",
    "pig",
    "pigeon",
    "pony",
    "porcupine",
    "possum",
    "puffin",
    "puppy",
    "rabbit",
    "raccoon",
    "reindeer",
    "rhino",
    "robin",
    "rooster",
    "seahorse",
    "seal",
    "shark",
    "sheep",
    "skunk",
    "sloth",
    "snail",
    "snake",
    "sparrow",
    "spider",
    "squirrel",
    "starfish",
    "stork",
    "swan",
    "tadpole",
    "tiger",
    "toad",
    "tortoise",
    "toucan",
    "turtle",
    "unicorn",
    "walrus",
    "weasel",
    "whale",
    "wolf",
    "woodpecker",
    "worm",
    "wren",
    "yak",
    "zebra",
)
GROWN_UP_ROLES = (  # (role, pronoun key, how the hero addresses them)
    ("mom", "she", "Mom"),
    ("dad", "he", "Dad"),
    ("grandma", "she", "Grandma"),
    ("grandpa", "he", "Grandpa"),
    ("aunt", "she", "Auntie"),
    ("uncle", "he", "Uncle"),
    ("granny", "she", "Granny"),
    ("mama", "she", "Mama"),
    ("papa", "he", "Papa"),
)


class Place(NamedTuple):
    """A place a character can be at: ``preposition`` + "the" + ``noun``."""

    preposition: str
    noun: str
    indoors: bool


def _places(indoors: bool, *pairs: str) -> tuple[Place, ...]:
    """Places from "preposition noun" strings such as "in forest" or "at pumpkin patch"."""
    return tuple(Place(*pair.split(" ", 1), indoors) for pair in pairs)


OUTDOOR_PLACES = _places(
    False,
    "in forest",
    "in woods",
    "in garden",
    "in park",
    "in meadow",
    "in field",
    "in jungle",
    "in village",
    "in backyard",
    "in orchard",
    "in valley",
    "on farm",
    "by pond",
    "by lake",
    "by river",
    "by sea",
    "at beach",
    "on hill",
    "on mountain",
    "on island",
    "at playground",
    "at zoo",
    "at market",
    "on bridge",
    "on path",
    "in swamp",
    "in marsh",
    "in desert",
    "on prairie",
    "in canyon",
    "in grove",
    "in clearing",
    "in pumpkin patch",
    "in vegetable patch",
    "in sandbox",
    "at pool",
    "on porch",
    "at fair",
    "at circus",
    "at carnival",
    "at festival",
    "by windmill",
    "by waterfall",
    "by stream",
    "by creek",
    "by brook",
    "in cove",
    "in town square",
    "at campsite",
    "in schoolyard",
    "in courtyard",
    "in rainforest",
    "on riverbank",
    "on seashore",
    "in barnyard",
    "in sunflower field",
    "in cornfield",
    "in wheat field",
    "by lighthouse",
    "at harbor",
    "on pier",
    "in lagoon",
    "by duck pond",
    "on soccer field",
    "at skating rink",
    "in bamboo forest",
    "on hillside",
    "in rose garden",
    "on boardwalk",
    "in tulip field",
)
INDOOR_PLACES = _places(
    True,
    "in kitchen",
    "in bedroom",
    "in living room",
    "in playroom",
    "in classroom",
    "in library",
    "in castle",
    "in cave",
    "in barn",
    "in attic",
    "in basement",
    "in treehouse",
    "in tent",
    "at museum",
    "at bakery",
    "in toy shop",
    "at cafe",
    "in hallway",
    "in nursery",
    "in reading nook",
    "in theater",
    "in bookshop",
    "in candy shop",
    "in flower shop",
    "in greenhouse",
    "in workshop",
    "in garage",
    "in farmhouse",
    "in cottage",
    "in palace",
    "in tower",
    "in stable",
    "in igloo",
    "in hut",
    "at aquarium",
    "in den",
    "in burrow",
)
HOMES = _places(  # where a hero "lived", as in "in a big forest"
    False,
    "in forest",
    "in village",
    "in town",
    "in house",
    "in jungle",
    "in valley",
    "on farm",
    "in meadow",
    "on hill",
    "in garden",
    "in castle",
    "on island",
    "in cottage",
    "in city",
    "by lake",
    "in kingdom",
    "in land",
    "by river",
    "on mountain",
    "in wood",
)
HOME_ADJECTIVES = (
    "big",
    "small",
    "little",
    "quiet",
    "sunny",
    "green",
    "busy",
    "peaceful",
    "faraway",
    "cozy",
    "old",
    "magical",
    "snowy",
    "happy",
    "pretty",
    "lovely",
    "tiny",
    "beautiful",
    "shady",
    "leafy",
    "sleepy",
    "friendly",
)
TOYS = (
    "ball",
    "kite",
    "doll",
    "teddy bear",
    "robot",
    "toy train",
    "toy truck",
    "toy car",
    "toy boat",
    "drum",
    "whistle",
    "puzzle",
    "marble",
    "balloon",
    "crayon",
    "paintbrush",
    "storybook",
    "picture book",
    "puppet",
    "rocking horse",
    "wagon",
    "scooter",
    "bike",
    "tricycle",
    "skateboard",
    "sled",
    "trumpet",
    "xylophone",
    "ukulele",
    "guitar",
    "flute",
    "harmonica",
    "tambourine",
    "rattle",
    "pinwheel",
    "spinning top",
    "toy soldier",
    "toy dinosaur",
    "airplane",
    "rocket",
    "helicopter",
    "tractor",
    "fire truck",
    "tea set",
    "dollhouse",
    "hula hoop",
    "jigsaw puzzle",
    "telescope",
    "magnifying glass",
    "compass",
    "flashlight",
    "lantern",
    "jump rope",
    "bubble wand",
    "beach ball",
    "bouncy ball",
    "race car",
    "sailboat",
    "music box",
    "snow globe",
    "toy piano",
    "wooden duck",
    "stuffed bunny",
    "paper crown",
    "magic wand",
    "treasure map",
    "toy castle",
    "action figure",
    "board game",
    "coloring book",
    "sticker book",
    "piggy bank",
    "bean bag",
    "kazoo",
    "banjo",
    "accordion",
    "pogo stick",
    "rubber duck",
    "paper boat",
    "toy horse",
)
FOODS = (
    "apple",
    "banana",
    "orange",
    "pear",
    "peach",
    "plum",
    "cherry",
    "grape",
    "strawberry",
    "blueberry",
    "raspberry",
    "watermelon",
    "melon",
    "pineapple",
    "mango",
    "lemon",
    "lime",
    "coconut",
    "apricot",
    "carrot",
    "pumpkin",
    "potato",
    "tomato",
    "cucumber",
    "radish",
    "turnip",
    "cake",
    "pie",
    "cookie",
    "muffin",
    "cupcake",
    "sandwich",
    "pancake",
    "waffle",
    "donut",
    "pretzel",
    "cracker",
    "bagel",
    "biscuit",
    "lollipop",
    "candy cane",
    "cinnamon roll",
    "ice cream cone",
    "popsicle",
    "gingerbread man",
    "acorn",
    "peanut",
    "walnut",
    "chestnut",
    "berry",
    "egg",
    "omelet",
    "pizza",
    "taco",
    "dumpling",
    "apple pie",
    "tart",
    "scone",
    "croissant",
    "sundae",
    "milkshake",
    "smoothie",
    "jelly bean",
    "gumdrop",
    "sugar cookie",
    "fig",
    "avocado",
    "nectarine",
    "tangerine",
    "grapefruit",
    "blackberry",
    "candy bar",
    "honey cake",
    "carrot cake",
    "bowl of soup",
    "bowl of porridge",
    "slice of bread",
    "piece of cheese",
    "bread roll",
    "hot dog",
    "meatball",
    "pickle",
    "cheese sandwich",
    "corn muffin",
    "baked potato",
    "jam tart",
)
VEGETABLES = (
    "carrot",
    "pea",
    "bean",
    "broccoli",
    "spinach",
    "cabbage",
    "beet",
    "zucchini",
    "cauliflower",
    "turnip",
    "celery",
    "asparagus",
    "squash",
    "kale",
    "lettuce",
    "eggplant",
)
DRINKS = (
    "milk",
    "juice",
    "tea",
    "cocoa",
    "hot chocolate",
    "lemonade",
    "water",
    "apple juice",
    "warm milk",
    "orange juice",
)
THINGS = (
    "hat",
    "scarf",
    "mitten",
    "glove",
    "boot",
    "shoe",
    "sock",
    "sweater",
    "coat",
    "jacket",
    "blanket",
    "pillow",
    "cup",
    "mug",
    "bowl",
    "plate",
    "spoon",
    "basket",
    "box",
    "bag",
    "bucket",
    "shovel",
    "key",
    "bell",
    "clock",
    "lamp",
    "candle",
    "mirror",
    "brush",
    "comb",
    "ribbon",
    "necklace",
    "bracelet",
    "ring",
    "locket",
    "feather",
    "leaf",
    "flower",
    "rose",
    "daisy",
    "sunflower",
    "tulip",
    "pinecone",
    "pebble",
    "stone",
    "rock",
    "shell",
    "seashell",
    "stick",
    "twig",
    "seed",
    "map",
    "letter",
    "note",
    "card",
    "picture",
    "painting",
    "drawing",
    "photo",
    "envelope",
    "present",
    "gift",
    "jar",
    "bottle",
    "coin",
    "button",
    "bead",
    "crystal",
    "gem",
    "jewel",
    "treasure chest",
    "watch",
    "umbrella",
    "backpack",
    "lunchbox",
    "pencil",
    "notebook",
    "eraser",
    "sticker",
    "badge",
    "medal",
    "trophy",
    "crown",
    "tiara",
    "cape",
    "mask",
    "costume",
    "flag",
    "banner",
    "rope",
    "ladder",
    "wheelbarrow",
    "watering can",
    "flowerpot",
    "birdhouse",
    "hairbrush",
    "toothbrush",
    "kettle",
    "teapot",
    "teacup",
    "quilt",
    "rug",
    "cushion",
    "vase",
    "horseshoe",
    "postcard",
    "scrapbook",
    "diary",
    "purse",
    "wallet",
    "apron",
    "bow",
    "hairclip",
    "sunhat",
    "raincoat",
    "sandal",
    "slipper",
    "ornament",
    "clover",
    "magnet",
    "fishing rod",
    "butterfly net",
    "sand dollar",
    "snowflake",
    "acorn cap",
    "owl feather",
    "paper fan",
    "pinwheel",
    "thimble",
    "spool",
    "yarn ball",
    "quill",
    "pocket watch",
)
CLOTHES = (
    "shirt",
    "dress",
    "sweater",
    "hat",
    "coat",
    "jacket",
    "scarf",
    "skirt",
    "hoodie",
    "cardigan",
    "vest",
    "raincoat",
    "cap",
    "beanie",
    "tutu",
    "cape",
    "apron",
    "sundress",
    "blouse",
    "tunic",
    "poncho",
    "bonnet",
)
PACKING_ITEMS = (
    "map",
    "flashlight",
    "water bottle",
    "compass",
    "blanket",
    "rope",
    "lantern",
    "umbrella",
    "raincoat",
    "whistle",
    "hat",
    "scarf",
    "magnifying glass",
    "notebook",
    "pencil",
    "telescope",
    "first aid kit",
    "sleeping bag",
    "warm sweater",
    "pair of boots",
)
SNACKS = (
    "apple",
    "banana",
    "sandwich",
    "cookie",
    "muffin",
    "pear",
    "orange",
    "peach",
    "plum",
    "cheese sandwich",
    "carrot",
    "pretzel",
    "cupcake",
    "bread roll",
    "bag of nuts",
    "granola bar",
)
TRAITS = (
    "kind",
    "brave",
    "shy",
    "curious",
    "clever",
    "silly",
    "playful",
    "gentle",
    "friendly",
    "happy",
    "cheerful",
    "grumpy",
    "lazy",
    "busy",
    "bold",
    "polite",
    "helpful",
    "honest",
    "generous",
    "proud",
    "quiet",
    "loud",
    "smart",
    "wise",
    "funny",
    "caring",
    "careful",
    "sleepy",
    "bouncy",
    "jolly",
    "merry",
    "sweet",
    "naughty",
    "stubborn",
    "patient",
    "fearless",
    "timid",
    "bossy",
    "cheeky",
    "chatty",
    "clumsy",
    "daring",
    "eager",
    "energetic",
    "fussy",
    "giggly",
    "hardworking",
    "adventurous",
    "imaginative",
    "thoughtful",
    "cheery",
    "lively",
    "nosy",
    "noisy",
    "peaceful",
    "picky",
    "restless",
    "sensible",
    "sneaky",
    "tidy",
    "messy",
    "loyal",
    "humble",
    "cautious",
    "creative",
    "goofy",
    "cuddly",
    "dreamy",
    "good",
    "spunky",
    "wiggly",
    "zany",
    "mischievous",
    "talkative",
    "forgetful",
    "fidgety",
    "lovable",
    "modest",
    "feisty",
    "plucky",
    "spirited",
    "bubbly",
    "perky",
    "chirpy",
    "kindhearted",
    "nimble",
    "quick",
    "speedy",
    "strong",
    "sporty",
    "brainy",
    "gallant",
    "hopeful",
    "jumpy",
    "artistic",
    "musical",
)
SIZE_ADJECTIVES = (
    "little",
    "small",
    "tiny",
    "big",
    "huge",
    "giant",
    "large",
    "tall",
    "short",
    "long",
    "round",
    "thin",
    "young",
    "old",
    "new",
    "ancient",
    "teeny",
    "enormous",
    "gigantic",
    "mighty",
    "wide",
    "narrow",
    "flat",
    "thick",
    "mini",
    "miniature",
)
LOOK_ADJECTIVES = (
    "shiny",
    "sparkly",
    "soft",
    "smooth",
    "bumpy",
    "fuzzy",
    "fluffy",
    "furry",
    "squishy",
    "sticky",
    "warm",
    "cold",
    "wet",
    "dry",
    "dusty",
    "muddy",
    "dirty",
    "clean",
    "heavy",
    "light",
    "bright",
    "dark",
    "glittery",
    "glowing",
    "twinkly",
    "colorful",
    "striped",
    "spotted",
    "dotted",
    "checkered",
    "plain",
    "fancy",
    "pretty",
    "beautiful",
    "lovely",
    "cute",
    "strange",
    "odd",
    "special",
    "magic",
    "magical",
    "secret",
    "mysterious",
    "precious",
    "favorite",
    "lucky",
    "wobbly",
    "squeaky",
    "rusty",
    "wooden",
    "woolly",
    "silky",
    "velvety",
    "crinkly",
    "sparkling",
    "gleaming",
    "polished",
    "painted",
    "patched",
    "knitted",
    "handmade",
    "shimmering",
    "glossy",
    "floppy",
    "lumpy",
    "jingly",
    "springy",
    "stretchy",
    "slippery",
    "prickly",
    "scratchy",
    "spiky",
    "feathery",
    "pointy",
    "curly",
    "wavy",
    "tangled",
    "shaggy",
    "sleek",
    "dainty",
    "neat",
    "cozy",
    "snug",
    "comfy",
    "flimsy",
    "sturdy",
    "tough",
    "fragile",
    "delicate",
    "bent",
    "cracked",
    "chipped",
    "faded",
    "spotless",
    "crooked",
    "lopsided",
    "splendid",
    "wonderful",
    "amazing",
    "fantastic",
    "terrific",
    "perfect",
    "brilliant",
    "gorgeous",
    "dazzling",
    "glorious",
    "fabulous",
    "incredible",
    "remarkable",
    "unusual",
    "ordinary",
    "simple",
    "charming",
    "marvelous",
    "noisy",
    "quiet",
    "glassy",
    "frosty",
)
TASTE_ADJECTIVES = (
    "sweet",
    "sour",
    "salty",
    "tasty",
    "yummy",
    "delicious",
    "fresh",
    "juicy",
    "crunchy",
    "crispy",
    "chewy",
    "gooey",
    "crumbly",
    "frosted",
    "sugary",
    "spicy",
    "creamy",
    "ripe",
    "warm",
    "toasty",
    "buttery",
    "fluffy",
    "big",
    "tiny",
    "giant",
    "plump",
    "sticky",
)
PLACE_ADJECTIVES = (
    "quiet",
    "peaceful",
    "busy",
    "sunny",
    "shady",
    "green",
    "leafy",
    "grassy",
    "sandy",
    "rocky",
    "snowy",
    "misty",
    "foggy",
    "dark",
    "deep",
    "wild",
    "faraway",
    "hidden",
    "cozy",
    "noisy",
    "crowded",
    "empty",
    "enchanted",
    "friendly",
    "lovely",
    "colorful",
    "muddy",
    "windy",
    "open",
    "secret",
    "big",
    "old",
    "beautiful",
    "magical",
    "sleepy",
    "bright",
    "mossy",
    "spooky",
    "grand",
    "pretty",
    "wide",
    "steep",
    "breezy",
    "calm",
    "dusty",
    "bustling",
    "tidy",
    "cheerful",
)
COLOURS = (
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "purple",
    "pink",
    "white",
    "black",
    "brown",
    "gray",
    "silver",
    "golden",
    "violet",
    "indigo",
    "turquoise",
    "crimson",
    "scarlet",
    "lavender",
    "lilac",
    "teal",
    "navy",
    "amber",
    "maroon",
    "cream",
    "peach",
    "mint",
    "coral",
    "bronze",
    "copper",
    "magenta",
    "ruby",
    "emerald",
    "olive",
    "rosy",
)
POSITIVE_FEELINGS = (
    "happy",
    "glad",
    "proud",
    "excited",
    "cheerful",
    "joyful",
    "thankful",
    "grateful",
    "delighted",
    "thrilled",
    "calm",
    "hopeful",
    "relieved",
    "content",
    "peaceful",
    "giddy",
    "amazed",
    "overjoyed",
    "pleased",
    "elated",
    "jolly",
)
NEGATIVE_FEELINGS = (
    "sad",
    "scared",
    "worried",
    "lonely",
    "grumpy",
    "upset",
    "afraid",
    "frightened",
    "nervous",
    "angry",
    "cross",
    "puzzled",
    "confused",
    "gloomy",
    "embarrassed",
    "frustrated",
    "miserable",
    "anxious",
    "unhappy",
    "helpless",
    "glum",
    "uneasy",
    "downhearted",
    "troubled",
)
REGRETFUL_FEELINGS = (
    "sorry",
    "ashamed",
    "guilty",
    "sad",
    "upset",
    "embarrassed",
    "unhappy",
    "miserable",
    "glum",
    "downhearted",
    "sheepish",
)
MOVEMENT_VERBS = (
    "went",
    "ran",
    "walked",
    "skipped",
    "hopped",
    "raced",
    "hurried",
    "dashed",
    "wandered",
    "strolled",
    "marched",
    "tiptoed",
    "waddled",
    "crawled",
    "rushed",
    "scampered",
    "scurried",
    "trotted",
    "galloped",
    "bounced",
    "zoomed",
    "darted",
    "jogged",
    "trudged",
    "shuffled",
    "stomped",
    "headed",
    "pranced",
    "crept",
    "hiked",
    "sprinted",
    "bounded",
    "plodded",
    "toddled",
    "ambled",
    "zipped",
    "whizzed",
    "traveled",
    "sped",
    "scooted",
    "tramped",
    "paraded",
    "set off",
)
CARING_VERBS = (  # what a child does with a treasured toy or object
    "held",
    "carried",
    "hugged",
    "polished",
    "cleaned",
    "washed",
    "lifted",
    "wrapped",
    "decorated",
    "squeezed",
    "patted",
    "admired",
    "studied",
    "inspected",
    "dusted",
    "examined",
    "cradled",
    "rocked",
    "guarded",
    "showed off",
    "brushed",
    "tidied",
    "cuddled",
    "treasured",
    "protected",
    "checked on",
    "looked after",
    "played with",
    "took care of",
    "smiled at",
    "talked to",
    "sang to",
    "kissed",
    "stroked",
    "wiped",
    "shined",
    "mended",
    "counted",
    "arranged",
    "carried around",
)
CARING_ADVERBS = (
    "tightly",
    "gently",
    "carefully",
    "proudly",
    "lovingly",
    "tenderly",
    "happily",
    "with great care",
    "every single day",
    "all day long",
)
EATING_VERBS = (
    "ate",
    "had",
    "munched",
    "nibbled",
    "gobbled up",
    "devoured",
    "enjoyed",
    "savored",
    "chomped on",
    "gulped down",
    "feasted on",
    "snacked on",
)
POSITIVE_REACTIONS = (
    "smiled",
    "grinned",
    "beamed",
    "giggled",
    "laughed",
    "clapped",
    "cheered",
    "nodded",
    "winked",
    "danced",
    "jumped for joy",
    "squealed with delight",
    "spun around",
    "did a happy dance",
    "hummed a little tune",
    "whooped",
    "chuckled",
)
NEGATIVE_REACTIONS = (
    "frowned",
    "pouted",
    "sniffled",
    "sobbed",
    "sighed",
    "shivered",
    "trembled",
    "gulped",
    "whimpered",
    "groaned",
    "sulked",
    "cried",
    "moaned",
    "stomped",
    "wept",
    "scowled",
)
STATEMENT_VERBS = (
    "whispered",
    "murmured",
    "mumbled",
    "sighed",
    "added",
    "announced",
    "declared",
    "chuckled",
    "giggled",
    "laughed",
    "smiled",
    "sniffed",
    "replied",
)
QUESTION_VERBS = ("whispered", "called", "inquired", "called out")
EXCLAMATION_VERBS = (
    "shouted",
    "cried",
    "exclaimed",
    "cheered",
    "yelled",
    "squealed",
    "called",
    "laughed",
    "giggled",
    "gasped",
    "shrieked",
    "hollered",
    "sang",
    "whooped",
    "blurted",
)
MOVEMENT_ADVERBS = (
    "happily",
    "quickly",
    "slowly",
    "quietly",
    "carefully",
    "proudly",
    "bravely",
    "eagerly",
    "excitedly",
    "cheerfully",
    "playfully",
    "curiously",
    "merrily",
    "joyfully",
    "gleefully",
    "busily",
    "lazily",
    "noisily",
    "silently",
    "smoothly",
    "swiftly",
    "boldly",
    "lightly",
    "gladly",
    "secretly",
    "hopefully",
    "cautiously",
    "gracefully",
    "clumsily",
    "steadily",
    "peacefully",
    "nimbly",
    "briskly",
    "hastily",
    "speedily",
    "confidently",
    "calmly",
    "bouncily",
    "sleepily",
    "dreamily",
)
PLAY_ADVERBS = (
    "happily",
    "merrily",
    "joyfully",
    "gleefully",
    "playfully",
    "for hours",
    "all morning",
    "all afternoon",
    "until lunchtime",
    "for a long time",
    "with big smiles",
    "again and again",
)
POSITIVE_REACTION_ADVERBS = ("happily", "brightly", "warmly", "shyly", "gladly", "proudly", "with joy")
NEGATIVE_REACTION_ADVERBS = ("sadly", "quietly", "softly", "miserably", "unhappily", "a little")
SPEECH_ADVERBS = (  # neutral enough for any calm line
    "softly",
    "kindly",
    "gently",
    "shyly",
    "politely",
    "warmly",
    "sweetly",
    "quietly",
    "calmly",
    "earnestly",
    "tenderly",
)
TIMES_OF_DAY = ("morning", "afternoon", "day", "evening")
WEATHER = {  # weather adjective -> scenery clauses for that weather
    "sunny": (
        "the sun was shining brightly",
        "the birds were singing in the trees",
        "the flowers were blooming everywhere",
        "bees buzzed from flower to flower",
    ),
    "rainy": (
        "raindrops pattered on the roof",
        "big puddles covered the ground",
        "the rain dripped from the leaves",
        "the worms wiggled out of the wet ground",
    ),
    "snowy": (
        "snowflakes drifted softly from the sky",
        "the ground was covered in white snow",
        "icicles sparkled on the rooftops",
        "the trees wore coats of snow",
    ),
    "windy": (
        "the wind whistled through the trees",
        "the leaves swirled in the air",
        "the clouds raced across the sky",
        "the tall grass swayed back and forth",
    ),
    "cloudy": (
        "big gray clouds floated across the sky",
        "the sky looked soft and gray",
        "the sun peeked out from behind a cloud now and then",
    ),
    "foggy": (
        "a thick fog covered the fields",
        "the trees looked like gray ghosts in the fog",
        "everything was quiet and hushed in the fog",
    ),
    "misty": ("a soft mist hung over the water", "dewdrops glittered on every leaf", "the hills were wrapped in mist"),
    "stormy": (
        "thunder rumbled far away",
        "lightning flashed across the sky",
        "the wind howled and the windows rattled",
    ),
    "chilly": ("the air was crisp and cold", "a chilly breeze nipped at noses", "frost covered the grass like sugar"),
    "warm": (
        "a warm breeze was blowing",
        "the air smelled like flowers and honey",
        "butterflies fluttered over the grass",
    ),
    "breezy": ("a gentle breeze rustled the leaves", "kites danced in the sky", "the clouds drifted slowly by"),
    "frosty": (
        "the windows were covered in frost",
        "the ground crunched under every step",
        "the puddles had turned to ice",
    ),
    "bright": ("the sky was clear and blue", "sunlight sparkled on the water", "the whole world seemed to glow"),
    "hot": (
        "the sun was hot and the air was still",
        "the ice cream truck jingled down the street",
        "everyone looked for a shady spot",
    ),
    "cool": (
        "the air was fresh and cool",
        "the leaves were turning red and gold",
        "squirrels were busy gathering acorns",
    ),
}
TRANSITIONS = (
    "Then",
    "Next",
    "Soon",
    "After a while",
    "Later",
    "Before long",
    "After that",
    "In a little while",
    "A moment later",
    "Soon after",
)
OUTDOOR_SEARCH_SPOTS = (
    "under the bench",
    "behind a big rock",
    "inside the sandbox",
    "under the slide",
    "behind the bushes",
    "in the tall grass",
    "under a pile of leaves",
    "beside the pond",
    "inside a hollow log",
    "under the picnic table",
    "behind the old shed",
    "near the fence",
    "under the swings",
    "behind a tree",
    "in the flower bed",
    "under the bridge",
)
INDOOR_SEARCH_SPOTS = (
    "under the table",
    "behind the sofa",
    "under a chair",
    "inside a cupboard",
    "behind the curtains",
    "under a pile of books",
    "in a laundry basket",
    "under the rug",
    "on a high shelf",
    "behind the door",
    "inside a drawer",
    "under the stairs",
)
SURPRISING_SPOTS = (
    "in a bird's nest",
    "inside a flowerpot",
    "under a sleeping cat",
    "in the puppy's bed",
    "on top of a mushroom",
    "inside a watering can",
    "in the pocket of {his} coat",
    "next to a snoozing turtle",
    "under a big green leaf",
    "in the mailbox",
)
RESTING_SPOTS = (
    "under a big tree",
    "on a bench",
    "by the pond",
    "near the swings",
    "behind a bush",
    "on a rock",
    "on the steps",
    "by the fence",
    "next to a puddle",
    "in the shade",
)
ANIMAL_DOINGS = (
    "taking a nap in the sun",
    "eating a snack",
    "splashing in a puddle",
    "hiding behind a bush",
    "sitting on a rock",
    "sniffing the flowers",
    "looking for food",
    "resting under a tree",
    "playing with a stick",
    "humming a little song",
    "dancing in the grass",
    "chasing its own tail",
    "building a nest",
    "washing its face",
    "munching on some leaves",
    "counting pebbles",
    "reading a tiny book",
    "stretching in the sunshine",
    "juggling acorns",
    "painting a picture of the sky",
)
DESTINATIONS = (
    "the top of the tall mountain",
    "the other side of the forest",
    "the big blue sea",
    "the old lighthouse",
    "the rainbow waterfall",
    "the castle on the hill",
    "the secret garden",
    "the island in the middle of the lake",
    "the tallest tree in the forest",
    "the land of snow",
    "the end of the rainbow",
    "the sunflower field beyond the hills",
    "the cave behind the waterfall",
    "the old windmill",
    "the faraway beach",
    "the village across the river",
    "the highest hill in the valley",
    "the edge of the meadow",
    "the giant's garden",
    "the lake where the swans lived",
)
SIGHTS = (
    "a beautiful rainbow over the water",
    "a field full of bright flowers",
    "the whole village far below",
    "a family of deer drinking from a stream",
    "a sparkling lake as blue as the sky",
    "a tree covered in pink blossoms",
    "hundreds of butterflies dancing in the air",
    "a castle with tall towers",
    "a waterfall that glittered in the sun",
    "a nest full of tiny speckled eggs",
    "the sun setting in orange and pink",
    "a huge field of golden wheat",
    "seals playing on the rocks",
    "an old stone bridge covered in moss",
    "a meadow where fireflies glowed like tiny lanterns",
    "a garden of giant pumpkins",
)
STORY_TOPICS = (
    "wanted to fly",
    "found a magic key",
    "lived on the moon",
    "could talk to the stars",
    "built a boat out of leaves",
    "was afraid of the dark",
    "went looking for the sun",
    "baked the biggest cake in the world",
    "made friends with a cloud",
    "lost a shoe in the snow",
    "learned to whistle",
    "sailed across the sea",
)
DREAMS = (
    "flying over the clouds",
    "a castle made of candy",
    "swimming with dolphins",
    "a picnic on the moon",
    "a garden full of talking flowers",
    "riding a friendly dragon",
    "a house made of pillows",
    "dancing with the stars",
    "a river of warm cocoa",
    "a forest where the trees sang",
    "a boat that sailed across the sky",
)
BATH_TOYS = ("rubber duck", "toy boat", "little sponge", "toy whale", "toy frog")
PRAISE_ADJECTIVES = (
    "wonderful",
    "amazing",
    "fantastic",
    "splendid",
    "terrific",
    "perfect",
    "brilliant",
    "gorgeous",
    "dazzling",
    "glorious",
    "fabulous",
    "incredible",
    "remarkable",
    "lovely",
    "beautiful",
    "special",
    "magical",
    "marvelous",
    "happy",
    "sunny",
)
RARE_ADVERBS = (
    "extraordinarily",
    "unbelievably",
    "astonishingly",
    "spectacularly",
    "tremendously",
    "breathtakingly",
    "magnificently",
    "wonderfully unusually",
)
RARE_ADJECTIVES = (
    "magnificent",
    "unbelievable",
    "spectacular",
    "extraordinary",
    "breathtaking",
    "unforgettable",
    "marvelous",
    "stupendous",
    "phenomenal",
    "astonishing",
)
RARE_NOUNS = (
    "hippopotamus",
    "kaleidoscope",
    "rhinoceros",
    "chrysanthemum",
    "tyrannosaurus",
    "brachiosaurus",
    "stegosaurus",
    "pterodactyl",
    "triceratops",
    "thermometer",
)
# Activities as (base form for dialogue, past tense for narration).
GENERAL_ACTIVITIES = (
    ("sing songs", "sang songs"),
    ("tell jokes", "told jokes"),
    ("read a book", "read a book"),
    ("draw pictures", "drew pictures"),
    ("play a game", "played a game"),
    ("make funny faces", "made funny faces"),
    ("play music", "played music"),
    ("paint a picture", "painted a picture"),
    ("play hide and seek", "played hide and seek"),
    ("play pretend", "played pretend"),
    ("have a tea party", "had a tea party"),
    ("whistle a tune", "whistled a tune"),
    ("hum a happy song", "hummed a happy song"),
    ("dance", "danced"),
    ("share a snack", "shared a snack"),
)
OUTDOOR_ACTIVITIES = GENERAL_ACTIVITIES + (
    ("play tag", "played tag"),
    ("play catch", "played catch"),
    ("fly a kite", "flew a kite"),
    ("blow bubbles", "blew bubbles"),
    ("build a sandcastle", "built a sandcastle"),
    ("pick flowers", "picked flowers"),
    ("chase butterflies", "chased butterflies"),
    ("roll down the hill", "rolled down the hill"),
    ("splash in the puddles", "splashed in the puddles"),
    ("have a picnic", "had a picnic"),
    ("plant seeds", "planted seeds"),
    ("watch the clouds", "watched the clouds"),
    ("collect shells", "collected shells"),
    ("skip stones", "skipped stones"),
    ("dance in the rain", "danced in the rain"),
    ("jump rope", "jumped rope"),
    ("ride bikes", "rode bikes"),
    ("swing on the swings", "swung on the swings"),
    ("climb trees", "climbed trees"),
    ("dig in the sand", "dug in the sand"),
    ("make mud pies", "made mud pies"),
    ("feed the ducks", "fed the ducks"),
    ("look for bugs", "looked for bugs"),
    ("race to the big tree", "raced to the big tree"),
    ("make paper boats", "made paper boats"),
    ("hop like frogs", "hopped like frogs"),
    ("march like soldiers", "marched like soldiers"),
    ("make daisy crowns", "made daisy crowns"),
    ("catch fireflies", "caught fireflies"),
    ("throw snowballs", "threw snowballs"),
    ("make a snowman", "made a snowman"),
    ("pick berries", "picked berries"),
    ("rake leaves into a pile", "raked leaves into a pile"),
    ("jump into the leaves", "jumped into the leaves"),
    ("sail a toy boat", "sailed a toy boat"),
    ("play soccer", "played soccer"),
    ("count the birds", "counted the birds"),
    ("gather acorns", "gathered acorns"),
    ("search for treasure", "searched for treasure"),
    ("explore", "explored"),
    ("look for four-leaf clovers", "looked for four-leaf clovers"),
)
INDOOR_ACTIVITIES = GENERAL_ACTIVITIES + (
    ("build a fort", "built a fort"),
    ("bake cookies", "baked cookies"),
    ("play dress up", "played dress up"),
    ("stack blocks", "stacked blocks"),
    ("do a puzzle", "did a puzzle"),
    ("play a board game", "played a board game"),
    ("build a tower of blocks", "built a tower of blocks"),
    ("play doctor", "played doctor"),
    ("make paper crowns", "made paper crowns"),
    ("put on a puppet show", "put on a puppet show"),
    ("color pictures", "colored pictures"),
    ("make a card", "made a card"),
    ("play with clay", "played with clay"),
    ("have a pillow fight", "had a pillow fight"),
)

MORALS = {
    "problem": (
        "it is okay to ask for help",
        "it is good to keep trying",
        "every problem is easier when you work together",
        "family and friends are always there to help",
    ),
    "friendship": (
        "a new friend can make any day better",
        "kindness is the best way to make a friend",
        "everything is more fun when you share it with a friend",
    ),
    "lost": (
        "it is important to take care of the things you love",
        "good friends help you look for what you have lost",
    ),
    "journey": (
        "big adventures are better with a friend",
        "being brave means going on even when you are scared",
        "the world is full of wonderful things to see",
    ),
}

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
