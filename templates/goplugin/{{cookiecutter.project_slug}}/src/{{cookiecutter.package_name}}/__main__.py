"""``python -m {{ cookiecutter.package_name }}`` runs the plugin (a go-plugin host launches it)."""

from .plugin import main

main()
