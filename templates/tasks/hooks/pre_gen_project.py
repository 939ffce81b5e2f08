"""Refuse variables that would render a broken project (runs before rendering)."""

import re
import sys

values = {
    "project_name": {{ cookiecutter.project_name | tojson }},
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "package_name": {{ cookiecutter.package_name | tojson }},
    "plugin_name": {{ cookiecutter.plugin_name | tojson }},
    "payload_key": {{ cookiecutter.payload_key | tojson }},
    "env_prefix": {{ cookiecutter.env_prefix | tojson }},
    "description": {{ cookiecutter.description | tojson }},
    "author_name": {{ cookiecutter.author_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "version": {{ cookiecutter.version | tojson }},
}
patterns = {
    "project_slug": r"[a-z0-9][a-z0-9._-]{0,39}",
    "package_name": r"[a-z_][a-z0-9_]{0,29}",
    "plugin_name": r"[a-z][a-z0-9_-]{0,29}",
    "payload_key": r"[A-Za-z][A-Za-z0-9_]{0,29}",
    "env_prefix": r"[A-Z][A-Z0-9_]{0,19}",
    "version": r"[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)",
}
bad = [f"{k}={values[k]!r} must match {p}" for k, p in patterns.items() if not re.fullmatch(p, values[k])]
bad += [f"{k} must not contain quotes or backslashes" for k, v in values.items() if re.search(r"[\"\\]", v)]
if len(values["description"]) > 72:
    bad.append("description must be one line of at most 72 characters")
if values["plugin_name"] in {"disabled", "engine", "manager"}:
    bad.append("plugin_name must not be one of the reserved names disabled, engine, manager")
if values["payload_key"] in {"command", "workingDir", "env", "maxRunTime", "artifacts"}:
    bad.append("payload_key must not clash with the engine's or the built-in plugins' keys")
if values["package_name"] in {"plugwire", "tests", "test"}:
    bad.append("package_name must not shadow plugwire or the tests")
if bad:
    print("ERROR: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
