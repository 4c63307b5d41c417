"""``python -m streams.cli``: the ``ccpulse`` console script."""

from streams.cli.main import main

if __name__ == "__main__":
    main()
