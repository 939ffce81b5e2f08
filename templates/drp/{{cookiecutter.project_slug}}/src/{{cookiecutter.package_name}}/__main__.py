"""``python -m {{ cookiecutter.package_name }}`` runs the provider executable."""

from .provider import main

main()
