"""``python -m streams.cli``: the ``ccpulse`` console script."""

import sys

from streams.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
