"""``python -m {{ cookiecutter.package_name }}`` serves the plugin to a task worker."""

from .plugin import main

main()
