"""``python -m {{ cookiecutter.package_name }}`` is the provider executable."""

from . import main

main()
