"""The server side API a provider calls back: ``/api-server-plugin/v4/*``.

dr-provision serves it on the ``FROM`` socket of each provider. What a provider may
call is granted through its :class:`~plugwire.core.controller.Controller`:

============  ==========================================  =====================================
capability    endpoint                                    granted object
============  ==========================================  =====================================
``publish``   ``POST /publish`` (a ``models.Event``)      ``Callable[[Event], object]``
``log``       ``POST /log`` (a ``logger.Line``)           ``Callable[[LogLine], object]``
``objects``   ``GET /objects/<prefix>``                   an :data:`ObjectSource`
============  ==========================================  =====================================

(callables may be ``async``). A call to a capability the controller does not grant
is answered ``403`` with a ``models.Error`` whose message is the
:class:`~plugwire.core.controller.CapabilityDeniedError` text (naming the plugin and
the capability); the host keeps running. ``POST /leaving`` (the provider says it is
about to exit) is part of the lifecycle, not a capability: it is always accepted.
Bad requests get ``400``/``404`` answers as dr-provision gives them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from plugwire.core.controller import CapabilityDeniedError, Controller
from plugwire.core.errors import PlugwireError

from ..messages import Request, Response
from .models import Error, Event, LogLine, PluginProvider, go_json_pairs
from .provider import SERVER_API, call_maybe_async

__all__ = ["DRP_CAPABILITIES", "ObjectSource", "ServerApi"]

#: Objects served on ``GET /objects/<prefix>``: a mapping prefix -> list, or a
#: function of the prefix (plain or async).
ObjectSource = (
    Mapping[str, Sequence[Any]] | Callable[[str], Sequence[Any] | Awaitable[Sequence[Any]]]
)

#: The capabilities a provider can be granted (see the module docs).
DRP_CAPABILITIES = ("publish", "log", "objects")


def error_response(error: Error) -> Response:
    error = error.with_code()
    return Response.json(error.to_json(), error.code)


class ServerApi:
    """The HTTP application serving one provider's callbacks (see module docs).

    Arguments:
        controller: a function returning the provider's controller (asked per call,
            so a controller replaced later applies at once).
        definition: a function returning the provider's definition (its
            ``StoreObjects`` limit ``/objects``).
        on_leaving: called with the ``models.Error`` of ``POST /leaving``.
        logger: where denied calls are logged.
    """

    def __init__(
        self,
        *,
        controller: Callable[[], Controller],
        definition: Callable[[], PluginProvider | None],
        on_leaving: Callable[[Error], None],
        logger: logging.Logger,
    ) -> None:
        self._controller = controller
        self._definition = definition
        self._leaving = on_leaving
        self._logger = logger

    async def __call__(self, request: Request) -> Response:
        path = request.path
        if not path.startswith(SERVER_API + "/"):
            return error_response(Error(code=404, type=request.method, key=path))
        what = path[len(SERVER_API) + 1 :]
        try:
            if request.method == "GET" and what.startswith("objects/"):
                return await self._objects(what[len("objects/") :])
            if request.method != "POST" or what not in ("publish", "leaving", "log"):
                return error_response(Error(code=404, type=request.method, key=path))
            return await self._post(request, what)
        except CapabilityDeniedError as exc:
            self._logger.warning("denied: %s", exc)
            return error_response(
                Error(code=403, type=request.method, key=path, messages=(str(exc),))
            )

    async def _post(self, request: Request, what: str) -> Response:
        # Check the grant before reading the body: a denied call learns nothing more.
        capability: Callable[[Any], object] = (
            self._leaving if what == "leaving" else self._controller().require(what)
        )
        ctype = request.content_type
        if "APPLICATION/JSON" not in ctype.upper():
            return error_response(
                Error(code=400, type=request.method, messages=(f"Invalid content type: {ctype}",))
            )
        try:
            doc = (
                json.loads(request.body, object_pairs_hook=go_json_pairs) if request.body else None
            )
            if what == "publish":
                await call_maybe_async(capability, Event.from_json(doc or {}))
            elif what == "log":
                await call_maybe_async(capability, LogLine.from_json(doc or {}))
            else:
                capability(Error.from_json(doc) if isinstance(doc, dict) else Error(code=200))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, PlugwireError) as exc:
            return error_response(Error(code=400, type=request.method, messages=(str(exc),)))
        return Response.json(Error(code=200).to_json(), 200)

    async def _objects(self, prefix: str) -> Response:
        source: ObjectSource = self._controller().require("objects")
        definition = self._definition()
        declared = definition.store_objects if definition else {}
        if declared and prefix not in declared:
            return error_response(
                Error(
                    code=403,
                    type="GET",
                    key=prefix,
                    messages=(f"{prefix} is not in the provider's StoreObjects",),
                )
            )
        items: Sequence[Any]
        if isinstance(source, Mapping):
            items = source.get(prefix, [])
        else:
            items = await call_maybe_async(source, prefix)
        return Response.json(list(items), 200)
