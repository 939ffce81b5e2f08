"""Refuse variables that would render a broken project (runs before rendering)."""

import re
import sys

values = {
    "project_name": {{ cookiecutter.project_name | tojson }},
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "package_name": {{ cookiecutter.package_name | tojson }},
    "plugin_key": {{ cookiecutter.plugin_key | tojson }},
    "magic_cookie_key": {{ cookiecutter.magic_cookie_key | tojson }},
    "magic_cookie_value": {{ cookiecutter.magic_cookie_value | tojson }},
    "protocol_version": {{ cookiecutter.protocol_version | tojson }},
    "description": {{ cookiecutter.description | tojson }},
    "author_name": {{ cookiecutter.author_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "version": {{ cookiecutter.version | tojson }},
}
patterns = {
    "project_slug": r"[a-z0-9][a-z0-9._-]{0,39}",
    "package_name": r"[a-z_][a-z0-9_]{0,29}",
    "plugin_key": r"[A-Za-z0-9_-]{1,40}",
    "magic_cookie_key": r"[A-Za-z_][A-Za-z0-9_]{0,59}",
    "magic_cookie_value": r"[A-Za-z0-9_.:/+=-]{1,80}",
    "protocol_version": r"[1-9][0-9]{0,3}",
    "version": r"[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)",
}
bad = [f"{k}={values[k]!r} must match {p}" for k, p in patterns.items() if not re.fullmatch(p, values[k])]
bad += [f"{k} must not contain quotes or backslashes" for k, v in values.items() if re.search(r"[\"\\]", v)]
if len(values["description"]) > 72:
    bad.append("description must be one line of at most 72 characters")
if values["package_name"] in {"plugwire", "tests", "test"}:
    bad.append("package_name must not shadow plugwire or the tests")
if bad:
    print("ERROR: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
