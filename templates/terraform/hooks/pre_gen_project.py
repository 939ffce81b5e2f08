"""Refuse variables that would render a broken project (runs before rendering)."""

import re
import sys

values = {
    "project_name": {{ cookiecutter.project_name | tojson }},
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "package_name": {{ cookiecutter.package_name | tojson }},
    "provider_name": {{ cookiecutter.provider_name | tojson }},
    "namespace": {{ cookiecutter.namespace | tojson }},
    "description": {{ cookiecutter.description | tojson }},
    "author_name": {{ cookiecutter.author_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "version": {{ cookiecutter.version | tojson }},
    "default_greeting": {{ cookiecutter.default_greeting | tojson }},
}
patterns = {
    "project_slug": r"[a-z0-9][a-z0-9._-]{0,59}",
    "package_name": r"[a-z_][a-z0-9_]{0,39}",
    # Terraform's provider type name: the prefix of every resource and data source type
    # and the middle of `provider::<name>::<function>`; lower-case letters and digits.
    "provider_name": r"[a-z][a-z0-9]{0,29}",
    # The registry namespace of the source address `<namespace>/<provider_name>`.
    "namespace": r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
    "version": r"[0-9]+\.[0-9]+\.[0-9]+([a-z0-9.+-]*)",
    "default_greeting": r"[^\s\"\\$%{}][^\"\\$%{}]{0,19}",
}
bad = [f"{k}={values[k]!r} must match {p}" for k, p in patterns.items() if not re.fullmatch(p, values[k])]
bad += [f"{k} must not contain quotes or backslashes" for k, v in values.items() if re.search(r"[\"\\]", v)]
if len(values["description"]) > 72 or "\n" in values["description"]:
    bad.append("description must be one line of at most 72 characters")
if values["package_name"] in {"plugwire", "tests", "test"}:
    bad.append("package_name must not shadow plugwire or the tests")
if bad:
    print("ERROR: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
