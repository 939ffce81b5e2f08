"""docs/terraform.md: every code block is runnable or says why not, and the runnable
provider serves, plans, applies and reads over the real protocol."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from provider_support import anyio_backend, diag_texts, launch

from plugwire.grpc.terraform import cty

__all__ = ["anyio_backend"]

pytestmark = [pytest.mark.terraform, pytest.mark.anyio]

DOC = Path(__file__).resolve().parents[2] / "docs" / "terraform.md"
EXAMPLE = DOC.parent / "examples" / "terraform" / "hello_provider.py"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, str, bool]]:
    text = DOC.read_text()
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip().splitlines()
        marked = bool(before) and before[-1].startswith("<!-- not-runnable:")
        out.append((m.group(1), m.group(2), marked))
    return out


def test_every_block_is_runnable_python_or_marked() -> None:
    blocks = _blocks()
    assert len(blocks) >= 5
    for lang, body, marked in blocks:
        assert marked or lang == "python", f"unmarked {lang or 'plain'} block:\n{body[:200]}"
    # The provider block is the example program this module serves, word for word
    # (other python blocks, e.g. the actions/list resources one, run on their own).
    assert EXAMPLE.read_text() in [body for lang, body, _ in blocks if lang == "python"]


GREETING = cty.Object(
    {"id": cty.String, "name": cty.String, "size": cty.Number, "text": cty.String}
)


async def test_the_doc_provider_serves(tmp_path: Path) -> None:
    async with launch(6, cmd=[sys.executable, str(EXAMPLE)]) as tf:
        schema = await tf.call("GetProviderSchema")
        assert sorted(schema.resource_schemas) == ["hello_greeting"]
        config = {"id": None, "name": "bob", "size": None, "text": None}
        null = tf.dv(None, GREETING)
        plan = await tf.call(
            "PlanResourceChange",
            type_name="hello_greeting",
            prior_state=null,
            proposed_new_state=tf.dv(config, GREETING),
            config=tf.dv(config, GREETING),
        )
        assert not plan.diagnostics, diag_texts(plan.diagnostics)
        assert tf.value(plan.planned_state, GREETING) == {
            "id": cty.UNKNOWN,
            "name": "bob",
            "size": 1,
            "text": cty.UNKNOWN,
        }
        applied = await tf.call(
            "ApplyResourceChange",
            type_name="hello_greeting",
            prior_state=null,
            planned_state=plan.planned_state,
            config=tf.dv(config, GREETING),
        )
        state = tf.value(applied.new_state, GREETING)
        assert state == {"id": "bob", "name": "bob", "size": 1, "text": "hello, bob"}
        read = await tf.call(
            "ReadResource", type_name="hello_greeting", current_state=applied.new_state
        )
        assert tf.value(read.new_state, GREETING) == state
