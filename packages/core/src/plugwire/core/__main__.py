"""``python -m plugwire.core``: the ``plugwire`` command line."""

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="plugwire")
