"""The protocol-independent provider server: one method per tfplugin RPC.

``_server5``/``_server6`` bind these to the generated servicers; ``pb`` is the
negotiated protocol's generated module (tfplugin5_pb2 or tfplugin6_pb2), whose
messages share field names. Every failure of provider code or of the values
Terraform sent becomes a diagnostic in the response, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from plugwire.core.errors import PlugwireError

from . import _values, cty
from .context import ClientCapabilities, Context, DeferredReason
from .cty import AttributePath, CtyError
from .diagnostics import Diagnostics, TerraformError, path_to_proto
from .function import FunctionError
from .provider import Provider
from .resource import MoveSource, Resource
from .schema import IdentitySchema, Schema

__all__ = ["ProviderCore"]

_log = logging.getLogger("plugwire.grpc.terraform")

T = TypeVar("T")


class _Failed(Exception):
    """Internal: the call already recorded its diagnostics; stop here."""


class ProviderCore:
    """Serves one :class:`Provider` over protocol ``version`` (5 or 6)."""

    def __init__(self, provider: Provider, pb: Any, version: int) -> None:
        self.provider = provider
        self.pb = pb
        self.version = version
        self._inflight: set[asyncio.Future[Any]] = set()
        self._types: dict[int, cty.Object] = {}
        self._terraform_version = ""
        self._schema_response: Any = None
        #: set when ``Provider.configure`` deferred: every plan/read/import defers too
        self._deferred: DeferredReason | None = None

    # -- helpers ---------------------------------------------------------------------

    def _ctx(self, type_name: str = "", caps: Any = None, private: bytes = b"") -> Context:
        return Context(
            provider=self.provider,
            type_name=type_name,
            protocol_version=self.version,
            private=private,
            client_capabilities=ClientCapabilities.from_proto(caps),
            terraform_version=self._terraform_version,
        )

    def _type(self, schema: Schema | IdentitySchema) -> cty.Object:
        key = id(schema)
        found = self._types.get(key)
        if found is None:
            found = self._types[key] = schema.cty_type()
        return found

    def _decode(self, dv: Any, schema: Schema | IdentitySchema, ctx: Context, what: str) -> Any:
        """A DynamicValue as a Python value; malformed: a diagnostic and :class:`_Failed`."""
        type_ = self._type(schema)
        try:
            if dv is None:
                return None
            if dv.msgpack:
                return cty.decode_msgpack(dv.msgpack, type_)
            if dv.json:
                return cty.decode_json(dv.json, type_)
            return None
        except CtyError as exc:
            ctx.diagnostics.cty_error(exc, f"Invalid {what}")
        except (ValueError, TypeError, RecursionError, MemoryError) as exc:
            ctx.diagnostics.error(f"Invalid {what}", f"cannot decode the value: {exc}")
        raise _Failed

    def _encode(self, value: Any, schema: Schema | IdentitySchema, ctx: Context, what: str) -> Any:
        type_ = self._type(schema)
        try:
            return self.pb.DynamicValue(msgpack=cty.encode_msgpack(value, type_))
        except CtyError as exc:
            ctx.diagnostics.cty_error(exc, f"Invalid {what} returned by the provider")
        except (ValueError, TypeError) as exc:
            ctx.diagnostics.error(f"Invalid {what} returned by the provider", str(exc))
        raise _Failed

    def _conform(self, value: Any, schema: Schema | IdentitySchema, ctx: Context, what: str) -> Any:
        """A value returned by provider code, completed and checked against ``schema``."""
        type_ = self._type(schema)
        value = _values.normalize(value, type_)
        try:
            return cty.conform(value, type_)
        except CtyError as exc:
            ctx.diagnostics.cty_error(exc, f"Invalid {what} returned by the provider")
        raise _Failed

    async def _run(self, ctx: Context, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run provider code; StopProvider cancels it; failures become diagnostics."""
        task: asyncio.Future[T] = asyncio.ensure_future(call())
        self._inflight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            ctx.diagnostics.error(
                "Operation cancelled",
                f"{what} was cancelled: Terraform stopped the provider (StopProvider)",
            )
        except TerraformError as exc:
            ctx.diagnostics.add(exc.diagnostic)
        except CtyError as exc:
            ctx.diagnostics.cty_error(exc)
        except _Failed:
            pass
        except Exception as exc:
            _log.error("unexpected error in %s", what, exc_info=True)
            ctx.diagnostics.error(f"Unexpected error in {what}", f"{type(exc).__name__}: {exc}")
        finally:
            self._inflight.discard(task)
        raise _Failed

    def _diags(self, ctx: Context) -> list[Any]:
        return ctx.diagnostics.to_proto(self.pb)

    def _lookup(self, registry: dict[str, T], kind: str, type_name: str, ctx: Context) -> T:
        found = registry.get(type_name)
        if found is None:
            ctx.diagnostics.error(
                f"Unknown {kind} type",
                f"provider {self.provider.name!r} has no {kind} {type_name!r}"
                f" (it has: {', '.join(sorted(registry)) or 'none'})",
            )
            raise _Failed
        return found

    def stop(self) -> int:
        """StopProvider: cancel every call in flight; returns how many."""
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        if tasks:
            _log.info("StopProvider: cancelled %d call(s) in flight", len(tasks))
        return len(tasks)

    # -- schema ----------------------------------------------------------------------

    def capabilities(self) -> Any:
        # plan_destroy: a destroy plan (null proposed state) is answered with a null plan;
        # get_provider_schema_optional: no call depends on GetProviderSchema having run.
        return self.pb.ServerCapabilities(
            plan_destroy=True,
            get_provider_schema_optional=True,
            move_resource_state=True,
            generate_resource_config=True,
        )

    # -- identity, deferral, write-only ----------------------------------------------

    def _identity_in(self, resource: Resource, message: Any, ctx: Context, what: str) -> None:
        """``ctx.identity`` from a request's ResourceIdentityData (if any was sent)."""
        schema = resource.identity_schema
        if schema is None or message is None or not message.HasField("identity_data"):
            return
        identity = self._decode(message.identity_data, schema, ctx, what)
        ctx.identity = identity if isinstance(identity, dict) else None

    def _identity_out(
        self, resource: Resource, state: Any, ctx: Context, target: Any, *, known: bool
    ) -> None:
        """Fill the response's ResourceIdentityData ``target`` with ``ctx.identity`` (or
        ``resource.identity(state)``); ``known``: it must be wholly known (after apply)."""
        schema = resource.identity_schema
        if schema is None:
            return
        identity = ctx.identity
        if identity is None and isinstance(state, dict):
            identity = resource.identity(state)
        if identity is None:
            return
        identity = self._conform(identity, schema, ctx, "identity")
        if known:
            path = _values.find_unknown(identity)
            if path is not None:
                ctx.diagnostics.error(
                    "Provider returned an unknown identity",
                    f"{ctx.type_name} identity attribute {path} is unknown: identity data "
                    "must be known once the resource exists",
                    path,
                )
                raise _Failed
        target.identity_data.CopyFrom(self._encode(identity, schema, ctx, "identity"))

    def _deferral(self, ctx: Context, response: Any, caps: ClientCapabilities) -> bool:
        """Put ``ctx.deferred`` (or the provider-wide deferral) on ``response``; True when
        deferred. Deferring to a Terraform that does not allow it is an error."""
        reason = ctx.deferred or self._deferred
        if reason is None:
            return False
        if not caps.deferral_allowed:
            ctx.diagnostics.error(
                "Deferral not allowed",
                f"{ctx.type_name or 'the provider'} deferred ({reason.name}) but this "
                "Terraform did not allow deferral (client capability deferral_allowed is "
                "false; run with -allow-deferral on a Terraform that supports it)",
            )
            raise _Failed
        response.deferred.reason = int(reason)
        return True

    def get_metadata(self, request: Any, response_type: Any) -> Any:
        md = self.pb.GetMetadata
        p = self.provider
        return response_type(
            server_capabilities=self.capabilities(),
            resources=[md.ResourceMetadata(type_name=n) for n in p.resources],
            data_sources=[md.DataSourceMetadata(type_name=n) for n in p.data_sources],
            ephemeral_resources=[
                md.EphemeralResourceMetadata(type_name=n) for n in p.ephemeral_resources
            ],
            functions=[md.FunctionMetadata(name=n) for n in p.functions],
            actions=[md.ActionMetadata(type_name=n) for n in p.actions],
            list_resources=[md.ListResourceMetadata(type_name=n) for n in p.list_resources],
            **(  # protocol 6 only
                {"state_stores": [md.StateStoreMetadata(type_name=n) for n in p.state_stores]}
                if p.state_stores and self.version == 6
                else {}
            ),
        )

    def get_provider_schema(self, request: Any, response_type: Any) -> Any:
        if self._schema_response is not None:
            return self._schema_response
        p, pb = self.provider, self.pb
        try:
            response = response_type(
                provider=p.schema.to_proto(pb),
                resource_schemas={n: r.schema.to_proto(pb) for n, r in p.resources.items()},
                data_source_schemas={n: d.schema.to_proto(pb) for n, d in p.data_sources.items()},
                ephemeral_resource_schemas={
                    n: e.schema.to_proto(pb) for n, e in p.ephemeral_resources.items()
                },
                functions={n: f.to_proto(pb) for n, f in p.functions.items()},
                action_schemas={
                    n: pb.ActionSchema(schema=a.schema.to_proto(pb)) for n, a in p.actions.items()
                },
                list_resource_schemas={
                    n: r.schema.to_proto(pb) for n, r in p.list_resources.items()
                },
                server_capabilities=self.capabilities(),
            )
            if p.provider_meta is not None:
                response.provider_meta.CopyFrom(p.provider_meta.to_proto(pb))
            for n, store in p.state_stores.items() if self.version == 6 else ():
                response.state_store_schemas[n].CopyFrom(store.schema.to_proto(pb))
        except (PlugwireError, CtyError, ValueError, TypeError) as exc:
            diags = Diagnostics()
            diags.error("Invalid provider schema", str(exc))
            return response_type(diagnostics=diags.to_proto(pb))
        self._schema_response = response
        return response

    def get_functions(self, request: Any, response_type: Any) -> Any:
        pb = self.pb
        return response_type(
            functions={n: f.to_proto(pb) for n, f in self.provider.functions.items()}
        )

    # -- validation and configuration ------------------------------------------------

    async def _validate(self, schema: Schema, dv: Any, ctx: Context, what: str, hook: Any) -> Any:
        config = self._decode(dv, schema, ctx, what)
        _values.validate(schema.block(), config, ctx.diagnostics)
        _values.config_warnings(
            schema.block(),
            config,
            ctx.diagnostics,
            write_only_allowed=ctx.client_capabilities.write_only_attributes_allowed,
        )
        if hook is not None and isinstance(config, dict):
            await self._run(ctx, f"validating the {what}", lambda: hook(config, ctx))
        return config

    async def validate_provider_config(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx()
        p = self.provider
        try:
            await self._validate(
                p.schema, request.config, ctx, "provider configuration", p.validate
            )
        except _Failed:
            pass
        response = response_type(diagnostics=self._diags(ctx))
        if "prepared_config" in response_type.DESCRIPTOR.fields_by_name:
            response.prepared_config.CopyFrom(request.config)  # protocol 5
        return response

    async def _validate_typed(
        self, registry: dict[str, Any], kind: str, request: Any, response_type: Any
    ) -> Any:
        caps = getattr(request, "client_capabilities", None)
        ctx = self._ctx(request.type_name, caps)
        if kind != "resource":  # write-only attributes are for managed resources only
            ctx.client_capabilities = attrs.evolve(
                ctx.client_capabilities, write_only_attributes_allowed=False
            )
        try:
            item = self._lookup(registry, kind, request.type_name, ctx)
            await self._validate(
                item.schema, request.config, ctx, f"{kind} configuration", item.validate
            )
        except _Failed:
            pass
        return response_type(diagnostics=self._diags(ctx))

    async def validate_resource_config(self, request: Any, response_type: Any) -> Any:
        return await self._validate_typed(
            self.provider.resources, "resource", request, response_type
        )

    async def validate_data_resource_config(self, request: Any, response_type: Any) -> Any:
        return await self._validate_typed(
            self.provider.data_sources, "data source", request, response_type
        )

    async def validate_ephemeral_resource_config(self, request: Any, response_type: Any) -> Any:
        return await self._validate_typed(
            self.provider.ephemeral_resources, "ephemeral resource", request, response_type
        )

    async def configure_provider(self, request: Any, response_type: Any) -> Any:
        self._terraform_version = request.terraform_version
        ctx = self._ctx(caps=request.client_capabilities)
        p = self.provider
        try:
            config = self._decode(request.config, p.schema, ctx, "provider configuration")
            await self._run(ctx, "configuring the provider", lambda: p.configure(config or {}, ctx))
            p.configured = True
            if ctx.deferred is not None:
                if not ctx.client_capabilities.deferral_allowed:
                    ctx.diagnostics.error(
                        "Deferral not allowed",
                        f"provider {p.name!r} deferred ({ctx.deferred.name}) but this "
                        "Terraform did not allow deferral (client capability "
                        "deferral_allowed is false)",
                    )
                else:
                    self._deferred = ctx.deferred
        except _Failed:
            pass
        return response_type(diagnostics=self._diags(ctx))

    # -- managed resources -----------------------------------------------------------

    async def read_resource(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, request.client_capabilities, request.private)
        response = response_type()
        try:
            resource = self._lookup(self.provider.resources, "resource", request.type_name, ctx)
            state = self._decode(request.current_state, resource.schema, ctx, "state")
            self._identity_in(resource, request.current_identity, ctx, "current identity")
            if self._deferral(ctx, response, ctx.client_capabilities):
                response.new_state.CopyFrom(request.current_state)
                response.private = request.private
                if request.HasField("current_identity"):
                    response.new_identity.CopyFrom(request.current_identity)
            elif state is None:
                response.new_state.CopyFrom(request.current_state)
            else:
                new = await self._run(
                    ctx, f"{request.type_name} read", lambda: resource.read(state, ctx)
                )
                if self._deferral(ctx, response, ctx.client_capabilities):
                    response.new_state.CopyFrom(request.current_state)
                    response.private = request.private
                    if request.HasField("current_identity"):
                        response.new_identity.CopyFrom(request.current_identity)
                    raise _Failed
                if new is not None:
                    new = self._conform(new, resource.schema, ctx, "state")
                    new = _values.null_write_only(resource.schema.block(), new)
                    self._check_known(new, ctx, "read")
                    self._identity_out(resource, new, ctx, response.new_identity, known=True)
                response.new_state.CopyFrom(self._encode(new, resource.schema, ctx, "state"))
                response.private = ctx.private
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    def _check_known(self, value: Any, ctx: Context, what: str) -> None:
        path = _values.find_unknown(value)
        if path is not None:
            ctx.diagnostics.error(
                "Provider returned an unknown value",
                f"after {what}, {ctx.type_name}.{path} is still unknown: "
                "every value must be known once applied",
                path,
            )
            raise _Failed

    async def plan_resource_change(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, request.client_capabilities, request.prior_private)
        response = response_type()
        try:
            resource = self._lookup(self.provider.resources, "resource", request.type_name, ctx)
            schema = resource.schema
            block = schema.block()
            prior = self._decode(request.prior_state, schema, ctx, "prior state")
            proposed = self._decode(request.proposed_new_state, schema, ctx, "proposed state")
            config = self._decode(request.config, schema, ctx, "configuration")
            self._identity_in(resource, request.prior_identity, ctx, "prior identity")
            ctx.config = config if isinstance(config, dict) else None
            if proposed is None:  # destroy: nothing to plan
                response.planned_state.CopyFrom(request.proposed_new_state)
                response.planned_private = request.prior_private
            elif self._deferral(ctx, response, ctx.client_capabilities):
                # provider-wide deferral: the proposed state, best effort (as the framework)
                planned = _values.null_write_only(block, proposed)
                response.planned_state.CopyFrom(self._encode(planned, schema, ctx, "plan"))
                response.planned_private = request.prior_private
            else:
                replace: list[AttributePath] = []
                planned = _values.apply_defaults(block, config, proposed)
                if prior is None or planned != prior:
                    planned = _values.mark_computed_unknown(block, config, planned)
                planned = _values.run_plan_modifiers(
                    block, config, prior, planned, replace, ctx.diagnostics
                )
                planned = await self._run(
                    ctx,
                    f"{request.type_name} plan",
                    lambda: resource.modify_plan(prior, config, planned, ctx),
                )
                self._deferral(ctx, response, ctx.client_capabilities)
                planned = _values.null_write_only(block, planned)
                encoded = self._encode(planned, schema, ctx, "planned state")
                response.planned_state.CopyFrom(encoded)
                response.requires_replace.extend(path_to_proto(p, self.pb) for p in replace)
                response.planned_private = ctx.private
                if prior is not None or ctx.identity is not None:
                    self._identity_out(resource, prior, ctx, response.planned_identity, known=False)
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def apply_resource_change(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, None, request.planned_private)
        response = response_type()
        name = request.type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            schema = resource.schema
            prior = self._decode(request.prior_state, schema, ctx, "prior state")
            planned = self._decode(request.planned_state, schema, ctx, "planned state")
            config = self._decode(request.config, schema, ctx, "configuration")
            ctx.config = config if isinstance(config, dict) else None
            self._identity_in(resource, request.planned_identity, ctx, "planned identity")
            new: Any
            if planned is None:
                await self._run(ctx, f"{name} delete", lambda: resource.delete(prior, ctx))
                new = None
            elif prior is None:
                ctx.identity = None  # a new object: create (or identity()) names it
                new = await self._run(ctx, f"{name} create", lambda: resource.create(planned, ctx))
            else:
                new = await self._run(
                    ctx, f"{name} update", lambda: resource.update(prior, planned, ctx)
                )
            if new is not None:
                new = self._conform(new, schema, ctx, "state")
                new = _values.null_write_only(schema.block(), new)
                self._check_known(new, ctx, "apply")
                self._identity_out(resource, new, ctx, response.new_identity, known=True)
            response.new_state.CopyFrom(self._encode(new, schema, ctx, "state"))
            response.private = ctx.private
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def import_resource_state(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, request.client_capabilities)
        response = response_type()
        name = request.type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            by_identity = request.HasField("identity") and not request.id
            if by_identity:
                if resource.identity_schema is None:
                    ctx.diagnostics.error(
                        "Resource import by identity not supported",
                        f"{name} has no identity schema: import it by id",
                    )
                    raise _Failed
                self._identity_in(resource, request.identity, ctx, "import identity")
                self._check_import_identity(resource.identity_schema, ctx)
            if self._deferral(ctx, response, ctx.client_capabilities):
                raise _Failed
            identity = dict(ctx.identity or {})
            if by_identity:
                state = await self._run(
                    ctx, f"{name} import", lambda: resource.import_by_identity(identity, ctx)
                )
            else:
                state = await self._run(
                    ctx, f"{name} import", lambda: resource.import_state(request.id, ctx)
                )
            if self._deferral(ctx, response, ctx.client_capabilities):
                raise _Failed
            state = self._conform(state, resource.schema, ctx, "imported state")
            imported = response.imported_resources.add()
            imported.type_name = name
            imported.state.CopyFrom(self._encode(state, resource.schema, ctx, "imported state"))
            imported.private = ctx.private
            if ctx.identity is not None:  # import by id: read() supplies it next
                self._identity_out(resource, None, ctx, imported.identity, known=True)
        except _Failed:
            del response.imported_resources[:]
        response.diagnostics.extend(self._diags(ctx))
        return response

    def _check_import_identity(self, schema: IdentitySchema, ctx: Context) -> None:
        identity = ctx.identity or {}
        missing = [
            n
            for n, a in schema.attributes.items()
            if a.required_for_import and identity.get(n) is None
        ]
        for n in missing:
            ctx.diagnostics.error(
                "Missing required identity attribute",
                f"importing {ctx.type_name} by identity needs identity attribute {n!r}",
                AttributePath().attr(n),
            )
        unknown = _values.find_unknown(identity)
        if unknown is not None:
            ctx.diagnostics.error(
                "Unknown identity value",
                f"identity attribute {unknown} of {ctx.type_name} must be known to import",
                unknown,
            )
        if ctx.diagnostics.has_errors:
            raise _Failed

    def _raw_state(self, raw: Any, ctx: Context, what: str) -> dict[str, Any]:
        if not raw.json:
            ctx.diagnostics.error(
                f"Unsupported {what}",
                "only JSON states are supported (a legacy flatmap state needs the SDKv2)",
            )
            raise _Failed
        try:
            value = json.loads(raw.json, parse_float=Decimal)
        except ValueError as exc:
            ctx.diagnostics.error(f"Invalid {what}", f"the stored state is not JSON: {exc}")
            raise _Failed from None
        if not isinstance(value, dict):
            ctx.diagnostics.error(f"Invalid {what}", "the stored state is not a JSON object")
            raise _Failed
        return value

    async def upgrade_resource_state(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name)
        response = response_type()
        name = request.type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            schema = resource.schema
            if request.version > schema.version:
                ctx.diagnostics.error(
                    "Unknown resource state schema version",
                    f"the {name} state was written with schema version {request.version}, "
                    f"newer than this provider's {schema.version}: upgrade the provider",
                )
                raise _Failed
            raw = self._raw_state(request.raw_state, ctx, "resource state")
            if request.version < schema.version:
                raw = await self._run(
                    ctx,
                    f"{name} state upgrade from version {request.version}",
                    lambda: resource.upgrade_state(request.version, raw, ctx),
                )
            state = self._conform(raw, schema, ctx, "upgraded state")
            response.upgraded_state.CopyFrom(self._encode(state, schema, ctx, "upgraded state"))
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def move_resource_state(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.target_type_name, None, request.source_private)
        response = response_type()
        name = request.target_type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            raw = self._raw_state(request.source_state, ctx, "source state")
            source_identity = (
                self._raw_state(request.source_identity, ctx, "source identity")
                if request.source_identity.json
                else None
            )
            source = MoveSource(
                provider_address=request.source_provider_address,
                type_name=request.source_type_name,
                schema_version=request.source_schema_version,
                state=raw,
                private=request.source_private,
                identity=source_identity,
                identity_schema_version=request.source_identity_schema_version,
            )
            state = await self._run(ctx, f"{name} move", lambda: resource.move_state(source, ctx))
            if state is None:
                ctx.diagnostics.error(
                    "Unable to move resource state",
                    f"{name} cannot be moved from {source.type_name} "
                    f"({source.provider_address}, schema version {source.schema_version})",
                )
                raise _Failed
            state = self._conform(state, resource.schema, ctx, "moved state")
            response.target_state.CopyFrom(self._encode(state, resource.schema, ctx, "state"))
            self._identity_out(resource, state, ctx, response.target_identity, known=True)
            response.target_private = ctx.private
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    # -- identity and generated configuration ----------------------------------------

    def get_resource_identity_schemas(self, request: Any, response_type: Any) -> Any:
        pb = self.pb
        try:
            return response_type(
                identity_schemas={
                    n: r.identity_schema.to_proto(pb)
                    for n, r in self.provider.resources.items()
                    if r.identity_schema is not None
                }
            )
        except (PlugwireError, CtyError, ValueError, TypeError) as exc:
            diags = Diagnostics()
            diags.error("Invalid resource identity schema", str(exc))
            return response_type(diagnostics=diags.to_proto(pb))

    async def upgrade_resource_identity(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name)
        response = response_type()
        name = request.type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            schema = resource.identity_schema
            if schema is None:
                ctx.diagnostics.error(
                    "Resource has no identity",
                    f"{name} has no identity schema: there is no identity to upgrade",
                )
                raise _Failed
            if request.version > schema.version or request.version < 0:
                ctx.diagnostics.error(
                    "Unknown resource identity version",
                    f"the {name} identity was stored with identity version "
                    f"{request.version}, but this provider knows versions 0 to "
                    f"{schema.version}: upgrade the provider",
                )
                raise _Failed
            raw = self._raw_state(request.raw_identity, ctx, "resource identity")
            if request.version < schema.version:
                raw = await self._run(
                    ctx,
                    f"{name} identity upgrade from version {request.version}",
                    lambda: resource.upgrade_identity(request.version, raw, ctx),
                )
            for key in raw:
                if key not in schema.attributes:
                    ctx.diagnostics.error(
                        "Unsupported identity attribute",
                        f"the stored {name} identity (version {request.version}) has "
                        f"attribute {key!r}, which identity version {schema.version} does "
                        f"not define (it has: {', '.join(schema.attributes)})",
                        AttributePath().attr(key),
                    )
            if ctx.diagnostics.has_errors:
                raise _Failed
            identity = self._conform(raw, schema, ctx, "upgraded identity")
            response.upgraded_identity.identity_data.CopyFrom(
                self._encode(identity, schema, ctx, "upgraded identity")
            )
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def generate_resource_config(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name)
        response = response_type()
        name = request.type_name
        try:
            resource = self._lookup(self.provider.resources, "resource", name, ctx)
            schema = resource.schema
            state = self._decode(request.state, schema, ctx, "state")
            if state is None:
                ctx.diagnostics.error(
                    "Cannot generate configuration", f"{name}: the state to generate from is null"
                )
                raise _Failed
            config = await self._run(
                ctx, f"{name} config generation", lambda: resource.generate_config(state, ctx)
            )
            if config is None:
                config = _values.generated_config(schema.block(), state)
            config = self._conform(config, schema, ctx, "generated configuration")
            response.config.CopyFrom(self._encode(config, schema, ctx, "configuration"))
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    # -- data sources, ephemeral resources, functions --------------------------------

    async def read_data_source(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, request.client_capabilities)
        response = response_type()
        name = request.type_name
        try:
            source = self._lookup(self.provider.data_sources, "data source", name, ctx)
            config = self._decode(request.config, source.schema, ctx, "configuration")
            if self._deferral(ctx, response, ctx.client_capabilities):
                # deferred: the configuration, unknown where computed (as planned)
                block = source.schema.block()
                state = _values.mark_computed_unknown(block, config, config)
                response.state.CopyFrom(self._encode(state, source.schema, ctx, "state"))
                raise _Failed
            state = await self._run(ctx, f"{name} read", lambda: source.read(config, ctx))
            if self._deferral(ctx, response, ctx.client_capabilities):
                block = source.schema.block()
                state = _values.mark_computed_unknown(block, config, config)
                response.state.CopyFrom(self._encode(state, source.schema, ctx, "state"))
                raise _Failed
            state = self._conform(state, source.schema, ctx, "state")
            self._check_known(state, ctx, "read")
            response.state.CopyFrom(self._encode(state, source.schema, ctx, "state"))
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def open_ephemeral_resource(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, request.client_capabilities)
        response = response_type()
        name = request.type_name
        try:
            item = self._lookup(self.provider.ephemeral_resources, "ephemeral resource", name, ctx)
            config = self._decode(request.config, item.schema, ctx, "configuration")
            result = await self._run(ctx, f"{name} open", lambda: item.open(config, ctx))
            result = self._conform(result, item.schema, ctx, "result")
            response.result.CopyFrom(self._encode(result, item.schema, ctx, "result"))
            if ctx.private:
                response.private = ctx.private
            if ctx.renew_at is not None:
                response.renew_at.FromDatetime(ctx.renew_at)
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def renew_ephemeral_resource(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, None, request.private)
        response = response_type()
        name = request.type_name
        try:
            item = self._lookup(self.provider.ephemeral_resources, "ephemeral resource", name, ctx)
            await self._run(ctx, f"{name} renew", lambda: item.renew(ctx))
            if ctx.private:
                response.private = ctx.private
            if ctx.renew_at is not None:
                response.renew_at.FromDatetime(ctx.renew_at)
        except _Failed:
            pass
        response.diagnostics.extend(self._diags(ctx))
        return response

    async def close_ephemeral_resource(self, request: Any, response_type: Any) -> Any:
        ctx = self._ctx(request.type_name, None, request.private)
        name = request.type_name
        try:
            item = self._lookup(self.provider.ephemeral_resources, "ephemeral resource", name, ctx)
            await self._run(ctx, f"{name} close", lambda: item.close(ctx))
        except _Failed:
            pass
        return response_type(diagnostics=self._diags(ctx))

    async def call_function(self, request: Any, response_type: Any) -> Any:
        pb = self.pb
        function = self.provider.functions.get(request.name)
        if function is None:
            return response_type(
                error=pb.FunctionError(text=f"provider has no function {request.name!r}")
            )
        params = list(function.parameters)
        args: list[Any] = []
        variadic: list[Any] = []
        for i, dv in enumerate(request.arguments):
            param = params[i] if i < len(params) else function.variadic
            if param is None:
                return response_type(
                    error=pb.FunctionError(
                        text=f"{request.name} takes {len(params)} argument(s), got "
                        f"{len(request.arguments)}",
                        function_argument=i,
                    )
                )
            try:
                value = (
                    cty.decode_msgpack(dv.msgpack, param.type)
                    if dv.msgpack
                    else (cty.decode_json(dv.json, param.type) if dv.json else None)
                )
            except (CtyError, ValueError, TypeError) as exc:
                return response_type(
                    error=pb.FunctionError(
                        text=f"invalid argument {param.name!r}: {exc}", function_argument=i
                    )
                )
            (args if i < len(params) else variadic).append(value)
        if function.variadic is not None:
            args.append(variadic)
        task = asyncio.ensure_future(function.run(*args))
        self._inflight.add(task)
        try:
            result = await task
            encoded = cty.encode_msgpack(result, function.return_type)
        except FunctionError as exc:
            error = pb.FunctionError(text=exc.text)
            if exc.argument is not None:
                error.function_argument = exc.argument
            return response_type(error=error)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return response_type(error=pb.FunctionError(text=f"{request.name} was cancelled"))
        except Exception as exc:
            _log.error("unexpected error in function %s", request.name, exc_info=True)
            return response_type(
                error=pb.FunctionError(text=f"{request.name}: {type(exc).__name__}: {exc}")
            )
        finally:
            self._inflight.discard(task)
        return response_type(result=pb.DynamicValue(msgpack=encoded))
