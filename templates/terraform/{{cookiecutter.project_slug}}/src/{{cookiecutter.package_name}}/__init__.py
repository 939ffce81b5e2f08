"""{{ cookiecutter.description.rstrip(".") }}.

The provider lives in :mod:`.provider`. This package imports nothing else, so the
executable (:func:`main`) starts through :func:`plugwire.grpc.terraform.launch`, which
loads the provider and plugwire with the garbage collector paused: Terraform launches a
provider several times per command, and start-up is what a user waits for.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["ADDRESS", "main"]
__version__ = "{{ cookiecutter.version }}"

#: The provider's source address; configurations require it as
#: ``source = "{{ cookiecutter.namespace }}/{{ cookiecutter.provider_name }}"``.
ADDRESS = "registry.terraform.io/{{ cookiecutter.namespace }}/{{ cookiecutter.provider_name }}"


def main() -> NoReturn:
    """The provider executable (``--debug``: debug mode), installed as the console
    script ``terraform-provider-{{ cookiecutter.provider_name }}``."""
    from plugwire.grpc.terraform import launch

    launch(f"{__name__}.provider:provider", address=ADDRESS)
