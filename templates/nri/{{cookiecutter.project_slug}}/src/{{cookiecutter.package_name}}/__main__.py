"""``python -m {{ cookiecutter.package_name }}`` runs the plugin."""

from .plugin import main

main()
