"""The {{ cookiecutter.provider_name }} dr-provision plugin provider.

dr-provision runs this executable as ``{{ cookiecutter.provider_name }} define``,
``unpack DIR`` and ``listen TO FROM`` (see README.md); :func:`main` is that command
line, built by plugwire from :data:`DEFINITION` and :class:`Greeter`.

Actions:

- ``greet`` on a machine: answers ``"<greeting>, <machine name>!"`` (in capitals
  when the action's ``{{ cookiecutter.provider_name }}/shout`` param is true) and
  publishes a ``machines``/``greeted`` event;
- ``{{ cookiecutter.provider_name }}-status`` (system): how many greetings so far.

The Plugin's ``{{ cookiecutter.provider_name }}/greeting`` param is required and
sent with the configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from plugwire.http.drp import (
    Action,
    AvailableAction,
    PluginProvider,
    Provider,
    ProviderContext,
    ProviderError,
    serve,
)

NAME = "{{ cookiecutter.provider_name }}"
VERSION = "{{ cookiecutter.version }}"
DESCRIPTION = "{{ cookiecutter.description }}"
GREETING_PARAM = f"{NAME}/greeting"
SHOUT_PARAM = f"{NAME}/shout"
STATUS_COMMAND = f"{NAME}-status"

DEFINITION = PluginProvider(
    name=NAME,
    version=VERSION,
    plugin_version=4,
    required_params=[GREETING_PARAM],
    available_actions=[
        AvailableAction(command="greet", model="machines", optional_params=[SHOUT_PARAM]),
        AvailableAction(command=STATUS_COMMAND),
    ],
    documentation=DESCRIPTION,
)


def _error(code: int, message: str) -> ProviderError:
    return ProviderError(message, code=code, model="plugin", key=NAME, type="plugin")


class Greeter(Provider):
    """Greets machines; configured with the Plugin's params."""

    def __init__(self) -> None:
        self.greeting = "{{ cookiecutter.default_greeting }}"
        self.greeted = 0

    def config(self, ctx: ProviderContext, params: dict[str, Any]) -> None:
        greeting = params.get(GREETING_PARAM)
        if not isinstance(greeting, str) or not greeting:
            raise _error(400, f"{GREETING_PARAM} must be a non-empty string")
        self.greeting = greeting
        ctx.logger.info("configured: greeting %r", greeting)  # sent to the server's log

    async def action(self, ctx: ProviderContext, action: Action) -> Any:
        if action.command == STATUS_COMMAND:
            return {"greeted": self.greeted}
        if action.command == "greet":
            machine = action.model
            if not isinstance(machine, dict) or not machine.get("Name"):
                raise _error(422, "greet needs a machine with a Name")
            text = f"{self.greeting}, {machine['Name']}!"
            if action.params.get(SHOUT_PARAM) is True:
                text = text.upper()
            self.greeted += 1
            await ctx.publish("machines", "greeted", str(machine.get("Uuid", "")), {"text": text})
            return text
        raise _error(404, f"Unknown command: {action.command}")

    def unpack(self, ctx: ProviderContext, directory: Path) -> None:
        # Files served by dr-provision under files/plugin_providers/<name>/.
        (directory / f"{NAME}.txt").write_text(DESCRIPTION + "\n")


def main() -> NoReturn:
    serve(Greeter, DEFINITION, version=VERSION, short=DESCRIPTION)
