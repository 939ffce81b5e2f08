"""``python -m {{ cookiecutter.package_name }}`` runs the plugin (a CIPD client launches it)."""

from .plugin import main

main()
