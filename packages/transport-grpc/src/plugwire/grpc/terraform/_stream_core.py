"""The streaming RPCs: actions (Validate/Plan/InvokeAction) and list resources
(ValidateListResourceConfig/ListResource), for protocol 5 and 6 alike.

:class:`StreamCore` works beside :class:`~._core.ProviderCore` (it reuses its
decoding, diagnostics and StopProvider bookkeeping): every provider call runs through
``ProviderCore._run``, so StopProvider cancels a running ``invoke`` or a ``list``
between two results, and the stream ends with a diagnostic, never an RPC error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from . import _values, cty
from ._core import ProviderCore, _Failed
from .action import Action, ActionContext
from .context import ClientCapabilities
from .cty import AttributePath, CtyError
from .diagnostics import Diagnostics
from .list_resource import ListContext, ListResource, ListResult
from .schema import IdentitySchema, Schema

__all__ = ["StreamCore"]

_log = logging.getLogger("plugwire.grpc.terraform")

_END = object()


def _check_required(schema: Schema, config: Any, diagnostics: Diagnostics) -> None:
    """Required attributes must be set (Terraform checks this before calling; a
    client that does not still gets a diagnostic naming the attribute)."""

    def visit(node: Any, path: AttributePath, c: Any, _s: Any, value: Any) -> Any:
        if getattr(node, "required", False) and value is None:
            diagnostics.error("Missing required argument", f"{path} is required", path)
        return value

    _values.transform(schema.block(), config, None, config, AttributePath(), visit)


class StreamCore:
    """Actions and list resources of ``core.provider`` over ``core``'s protocol."""

    def __init__(self, core: ProviderCore) -> None:
        self.core = core
        self._types: dict[int, cty.Object] = {}

    @property
    def _actions(self) -> dict[str, Action]:
        return getattr(self.core.provider, "actions", {})

    @property
    def _lists(self) -> dict[str, ListResource]:
        return getattr(self.core.provider, "list_resources", {})

    def _identity_type(self, identity: IdentitySchema) -> cty.Object:
        key = id(identity)
        found = self._types.get(key)
        if found is None:
            found = self._types[key] = identity.cty_type()
        return found

    # -- schemas ---------------------------------------------------------------------

    def add_identity_schemas(self, response: Any) -> Any:
        """Fill ``GetResourceIdentitySchemas.Response`` with list resources' identities
        (a type already there is left as it is)."""
        pb = self.core.pb
        for name, item in self._lists.items():
            if item.identity is not None and name not in response.identity_schemas:
                response.identity_schemas[name].CopyFrom(item.identity.to_proto(pb))
        return response

    # -- actions ---------------------------------------------------------------------

    def _action_ctx(self, type_name: str, caps: Any, queue: asyncio.Queue[str] | None) -> Any:
        core = self.core
        ctx = ActionContext(
            provider=core.provider,
            type_name=type_name,
            protocol_version=core.version,
            client_capabilities=ClientCapabilities.from_proto(caps),
            terraform_version=core._terraform_version,
        )
        if queue is not None:
            ctx.on_progress = queue.put_nowait
        return ctx

    async def validate_action_config(self, request: Any, response_type: Any) -> Any:
        core = self.core
        ctx = self._action_ctx(request.action_type, None, None)
        try:
            action = core._lookup(self._actions, "action", request.action_type, ctx)
            await core._validate(
                action.schema, request.config, ctx, "action configuration", action.validate
            )
        except _Failed:
            pass
        return response_type(diagnostics=core._diags(ctx))

    async def plan_action(self, request: Any, response_type: Any) -> Any:
        core = self.core
        name = request.action_type
        ctx = self._action_ctx(name, request.client_capabilities, None)
        response = response_type()
        try:
            action = core._lookup(self._actions, "action", name, ctx)
            config = core._decode(request.config, action.schema, ctx, "action configuration")
            # Deferral as for resources: provider-wide (configure deferred) or ctx.defer()
            # in plan; an error when the client does not allow deferral.
            if not core._deferral(ctx, response, ctx.client_capabilities):
                await core._run(ctx, f"{name} plan", lambda: action.plan(config or {}, ctx))
                core._deferral(ctx, response, ctx.client_capabilities)
        except _Failed:
            pass
        response.diagnostics.extend(core._diags(ctx))
        return response

    async def invoke_action(self, request: Any, event_type: Any) -> AsyncIterator[Any]:
        """InvokeAction: a Progress event per ``ctx.progress``, then one Completed."""
        core = self.core
        name = request.action_type
        queue: asyncio.Queue[str] = asyncio.Queue()
        ctx = self._action_ctx(name, request.client_capabilities, queue)
        try:
            action = core._lookup(self._actions, "action", name, ctx)
            config = core._decode(request.config, action.schema, ctx, "action configuration")
            _values.validate(action.schema.block(), config, ctx.diagnostics)
            _check_required(action.schema, config, ctx.diagnostics)
            unknown = _values.find_unknown(config)
            if unknown is not None:
                where = str(unknown) or "the root"
                ctx.diagnostics.error(
                    "Invalid action configuration",
                    f"{name} was invoked with a value not known yet at {where}",
                    unknown,
                )
            if ctx.diagnostics.has_errors:
                raise _Failed
        except _Failed:
            yield event_type(completed=event_type.Completed(diagnostics=core._diags(ctx)))
            return

        async def run() -> None:
            await core._run(ctx, f"{name} invoke", lambda: action.invoke(config or {}, ctx))

        runner = asyncio.ensure_future(run())
        getter: asyncio.Future[str] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, runner}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield event_type(progress=event_type.Progress(message=getter.result()))
                    continue
                getter.cancel()
                break
            while not queue.empty():
                yield event_type(progress=event_type.Progress(message=queue.get_nowait()))
            try:
                runner.result()
            except _Failed:
                pass
            yield event_type(completed=event_type.Completed(diagnostics=core._diags(ctx)))
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
            if not runner.done():
                runner.cancel()  # the client went away: stop the action too

    # -- list resources --------------------------------------------------------------

    def _list_ctx(self, type_name: str, include: bool = False, limit: int = 0) -> ListContext:
        core = self.core
        return ListContext(
            provider=core.provider,
            type_name=type_name,
            protocol_version=core.version,
            terraform_version=core._terraform_version,
            include_resource=include,
            limit=limit,
        )

    def _optional(self, dv: Any, type_: cty.Type, ctx: Any, what: str) -> Any:
        if dv is None or not (dv.msgpack or dv.json):
            return None
        try:
            return (
                cty.decode_msgpack(dv.msgpack, type_)
                if dv.msgpack
                else cty.decode_json(dv.json, type_)
            )
        except (CtyError, ValueError, TypeError) as exc:
            ctx.diagnostics.error(
                f"Invalid {what}", f"cannot decode it: {exc}", AttributePath().attr(what)
            )
            return None

    async def validate_list_resource_config(self, request: Any, response_type: Any) -> Any:
        core = self.core
        name = request.type_name
        ctx = self._list_ctx(name)
        try:
            item = core._lookup(self._lists, "list resource", name, ctx)
            await core._validate(
                item.schema, request.config, ctx, "list resource configuration", item.validate
            )
        except _Failed:
            pass
        if request.HasField("limit"):
            limit = self._optional(request.limit, cty.Number, ctx, "limit")
            if limit is not None and not isinstance(limit, cty.Unknown):
                whole = isinstance(limit, (int, Decimal)) and limit == int(limit)
                if not whole or limit < 0:
                    ctx.diagnostics.error(
                        "Invalid list limit",
                        f"limit must be a whole number >= 0, got {limit}",
                        AttributePath().attr("limit"),
                    )
        if request.HasField("include_resource_object"):
            self._optional(request.include_resource_object, cty.Bool, ctx, "include_resource")
        return response_type(diagnostics=core._diags(ctx))

    async def list_resource(self, request: Any, event_type: Any) -> AsyncIterator[Any]:
        """ListResource: one event per result, at most ``request.limit`` (when > 0)."""
        core = self.core
        pb = core.pb
        name = request.type_name
        limit = max(0, request.limit)
        include = request.include_resource_object
        ctx = self._list_ctx(name, include, limit)
        try:
            item = core._lookup(self._lists, "list resource", name, ctx)
            managed = core.provider.resources.get(name)
            identity = item.identity or (managed.identity_schema if managed else None)
            if identity is None:
                ctx.diagnostics.error(
                    "List resource without an identity",
                    f"list resource {name} declares no identity schema (set `identity`)",
                )
                raise _Failed
            resource = core.provider.resources.get(name)
            if include and resource is None:
                ctx.diagnostics.error(
                    "Unknown resource type",
                    f"list resource {name} has no managed resource {name} for full objects",
                )
                raise _Failed
            config = core._decode(request.config, item.schema, ctx, "list resource configuration")
            _check_required(item.schema, config, ctx.diagnostics)
            if ctx.diagnostics.has_errors:
                raise _Failed
        except _Failed:
            yield event_type(diagnostic=core._diags(ctx))
            return

        identity_type = self._identity_type(identity)
        results: AsyncIterator[ListResult] = item.list(config or {}, ctx)
        sent_diags = 0

        async def step() -> Any:
            try:
                return await anext(results)
            except StopAsyncIteration:
                return _END

        def pending() -> list[Any]:
            nonlocal sent_diags
            diags = list(ctx.diagnostics)[sent_diags:]
            sent_diags = len(ctx.diagnostics)
            return Diagnostics(diags).to_proto(pb)

        # StopProvider cancels what is in core._inflight: this marker too, so a stop that
        # arrives while no step runs (the last result on its way to Terraform) still
        # ends the listing before the next step.
        stopped: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        core._inflight.add(stopped)
        count = 0
        try:
            while limit == 0 or count < limit:
                if stopped.cancelled():
                    ctx.diagnostics.error(
                        "Operation cancelled",
                        f"{name} list was cancelled: Terraform stopped the provider (StopProvider)",
                    )
                    break
                try:
                    result = await core._run(ctx, f"{name} list", step)
                except _Failed:
                    break
                if result is _END:
                    break
                if not isinstance(result, ListResult):
                    ctx.diagnostics.error(
                        "Invalid list result",
                        f"{name} list yielded {type(result).__name__}, expected a ListResult",
                    )
                    break
                event = event_type(display_name=result.display_name)
                try:
                    value = cty.conform(
                        _values.normalize(result.identity, identity_type), identity_type
                    )
                    event.identity.identity_data.msgpack = cty.encode_msgpack(value, identity_type)
                except CtyError as exc:
                    ctx.diagnostics.cty_error(exc, f"Invalid identity in a {name} list result")
                    break
                if include:
                    if result.resource is None:
                        ctx.diagnostics.warning(
                            "Incomplete list result",
                            f"{name}: Terraform asked for full objects but "
                            f"{result.display_name or 'a result'} has none",
                        )
                    else:
                        assert resource is not None
                        try:
                            state = core._conform(result.resource, resource.schema, ctx, "object")
                            event.resource_object.CopyFrom(
                                core._encode(state, resource.schema, ctx, "object")
                            )
                        except _Failed:
                            break
                event.diagnostic.extend(pending())
                yield event
                count += 1
            rest = pending()
            if rest:
                yield event_type(diagnostic=rest)
        finally:
            core._inflight.discard(stopped)
            stopped.cancel()
            closing = getattr(results, "aclose", None)
            if closing is not None:
                try:
                    await closing()
                except Exception:  # a generator failing on close: nothing left to tell
                    _log.debug("closing the %s list generator failed", name, exc_info=True)
