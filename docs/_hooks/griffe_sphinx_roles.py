"""griffe extension: render the Sphinx roles of plugwire's docstrings as code spans.

plugwire's docstrings are reStructuredText-flavoured prose (``:class:`Host```,
``:func:`~plugwire.grpc.cipd.plugin.serve```); mkdocstrings renders Markdown, where such
a role would show up verbatim. ``:role:`~a.b.C``` becomes ```C``` (the tilde keeps the
last component, as in Sphinx), ``:role:`a.b.C``` becomes ```a.b.C```, and a paragraph
ending in ``::`` before an indented literal block ends in ``:``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj|const):`([^`]+)`")
_LITERAL = re.compile(r"::(\n\s*\n)")


def _role(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    if "<" in target and target.endswith(">"):  # :role:`text <target>`
        target = target[: target.index("<")].strip()
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def convert(text: str) -> str:
    """The docstring ``text`` with Sphinx roles as Markdown code spans."""
    return _LITERAL.sub(r":\1", _ROLE.sub(_role, text))


class SphinxRoles(griffe.Extension):
    """Rewrites every loaded object's docstring with :func:`convert`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)
