"""``python -m rarelib``: the ``rarelib`` command (:mod:`rarelib.cli`)."""

import sys

from rarelib.cli import main

if __name__ == "__main__":
    sys.exit(main())
