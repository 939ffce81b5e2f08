"""Hypothesis strategies for JSON documents, shared by the fuzz tests."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

__all__ = ["DEEP", "json_text", "json_values"]

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)

#: Nesting deep enough to exhaust Python's recursion limit in ``json``.
DEEP = "[" * 100_000


def json_text(documents: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[str]:
    """JSON text of ``documents``, or arbitrary text, or hostile nesting."""
    return st.one_of(
        documents.map(json.dumps),
        st.text(max_size=80),
        st.integers(1, 5_000).map(lambda n: "[" * n),
        st.integers(1, 3_000).map(lambda n: '{"a":' * n),
    )
