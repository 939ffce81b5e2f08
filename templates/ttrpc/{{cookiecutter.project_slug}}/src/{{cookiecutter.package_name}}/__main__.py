"""``python -m {{ cookiecutter.package_name }} ADDRESS`` serves the service."""

from .server import main

main()
