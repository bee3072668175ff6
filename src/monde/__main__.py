"""``python -m monde`` (and ``torchrun -m monde``) runs the command line."""

from monde.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
