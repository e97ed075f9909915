"""``python -m tinygen``: the same CLI as the ``tinygen`` console script."""

from tinygen.cli import main

if __name__ == "__main__":
    main()
