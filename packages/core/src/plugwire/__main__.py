"""``python -m plugwire``: the ``plugwire`` command line (shipped by plugwire-core)."""

from plugwire.core.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="plugwire")
