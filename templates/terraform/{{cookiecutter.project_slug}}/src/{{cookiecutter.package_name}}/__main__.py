"""``python -m {{ cookiecutter.package_name }}`` is the provider executable."""

from .provider import main

main()
