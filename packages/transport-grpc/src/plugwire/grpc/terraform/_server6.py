"""tfplugin6 (protocol 6.11) <-> the framework: the ``tfplugin6.Provider`` servicer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

import grpc

from ._core import ProviderCore
from ._generated import tfplugin6_pb2 as pb
from ._generated import tfplugin6_pb2_grpc as pb_grpc
from ._unimplemented import unimplemented
from .provider import Provider

if TYPE_CHECKING:
    from ._state_core import StateCore
    from ._stream_core import StreamCore

__all__ = ["ProviderServicer", "register"]

Ctx = grpc.aio.ServicerContext[Any, Any]


class ProviderServicer:
    """Every RPC the framework implements; any other answers UNIMPLEMENTED quietly."""

    def __init__(self, core: ProviderCore) -> None:
        self.core = core
        self._stream: StreamCore | None = None

    @property
    def stream(self) -> StreamCore:
        """Actions and list resources (loaded on their first call)."""
        if self._stream is None:
            from ._stream_core import StreamCore

            self._stream = StreamCore(self.core)
        return self._stream

    def __getattr__(self, name: str) -> Any:
        if name[:1].isupper():
            return unimplemented("tfplugin6.Provider", name)
        raise AttributeError(name)

    async def GetMetadata(self, request: Any, context: Ctx) -> Any:
        return self.core.get_metadata(request, pb.GetMetadata.Response)

    async def GetProviderSchema(self, request: Any, context: Ctx) -> Any:
        return self.core.get_provider_schema(request, pb.GetProviderSchema.Response)

    async def GetResourceIdentitySchemas(self, request: Any, context: Ctx) -> Any:
        return self.stream.add_identity_schemas(
            self.core.get_resource_identity_schemas(request, pb.GetResourceIdentitySchemas.Response)
        )

    async def UpgradeResourceIdentity(self, request: Any, context: Ctx) -> Any:
        return await self.core.upgrade_resource_identity(
            request, pb.UpgradeResourceIdentity.Response
        )

    async def GenerateResourceConfig(self, request: Any, context: Ctx) -> Any:
        return await self.core.generate_resource_config(request, pb.GenerateResourceConfig.Response)

    async def ValidateProviderConfig(self, request: Any, context: Ctx) -> Any:
        return await self.core.validate_provider_config(request, pb.ValidateProviderConfig.Response)

    async def ValidateResourceConfig(self, request: Any, context: Ctx) -> Any:
        return await self.core.validate_resource_config(request, pb.ValidateResourceConfig.Response)

    async def ValidateDataResourceConfig(self, request: Any, context: Ctx) -> Any:
        return await self.core.validate_data_resource_config(
            request, pb.ValidateDataResourceConfig.Response
        )

    async def ValidateEphemeralResourceConfig(self, request: Any, context: Ctx) -> Any:
        return await self.core.validate_ephemeral_resource_config(
            request, pb.ValidateEphemeralResourceConfig.Response
        )

    async def ConfigureProvider(self, request: Any, context: Ctx) -> Any:
        return await self.core.configure_provider(request, pb.ConfigureProvider.Response)

    async def ReadResource(self, request: Any, context: Ctx) -> Any:
        return await self.core.read_resource(request, pb.ReadResource.Response)

    async def PlanResourceChange(self, request: Any, context: Ctx) -> Any:
        return await self.core.plan_resource_change(request, pb.PlanResourceChange.Response)

    async def ApplyResourceChange(self, request: Any, context: Ctx) -> Any:
        return await self.core.apply_resource_change(request, pb.ApplyResourceChange.Response)

    async def ImportResourceState(self, request: Any, context: Ctx) -> Any:
        return await self.core.import_resource_state(request, pb.ImportResourceState.Response)

    async def UpgradeResourceState(self, request: Any, context: Ctx) -> Any:
        return await self.core.upgrade_resource_state(request, pb.UpgradeResourceState.Response)

    async def MoveResourceState(self, request: Any, context: Ctx) -> Any:
        return await self.core.move_resource_state(request, pb.MoveResourceState.Response)

    async def ReadDataSource(self, request: Any, context: Ctx) -> Any:
        return await self.core.read_data_source(request, pb.ReadDataSource.Response)

    async def OpenEphemeralResource(self, request: Any, context: Ctx) -> Any:
        return await self.core.open_ephemeral_resource(request, pb.OpenEphemeralResource.Response)

    async def RenewEphemeralResource(self, request: Any, context: Ctx) -> Any:
        return await self.core.renew_ephemeral_resource(request, pb.RenewEphemeralResource.Response)

    async def CloseEphemeralResource(self, request: Any, context: Ctx) -> Any:
        return await self.core.close_ephemeral_resource(request, pb.CloseEphemeralResource.Response)

    async def GetFunctions(self, request: Any, context: Ctx) -> Any:
        return self.core.get_functions(request, pb.GetFunctions.Response)

    async def CallFunction(self, request: Any, context: Ctx) -> Any:
        return await self.core.call_function(request, pb.CallFunction.Response)

    async def ValidateActionConfig(self, request: Any, context: Ctx) -> Any:
        return await self.stream.validate_action_config(request, pb.ValidateActionConfig.Response)

    async def PlanAction(self, request: Any, context: Ctx) -> Any:
        return await self.stream.plan_action(request, pb.PlanAction.Response)

    async def InvokeAction(self, request: Any, context: Ctx) -> AsyncIterator[Any]:
        async for event in self.stream.invoke_action(request, pb.InvokeAction.Event):
            yield event

    async def ValidateListResourceConfig(self, request: Any, context: Ctx) -> Any:
        return await self.stream.validate_list_resource_config(
            request, pb.ValidateListResourceConfig.Response
        )

    async def ListResource(self, request: Any, context: Ctx) -> AsyncIterator[Any]:
        async for event in self.stream.list_resource(request, pb.ListResource.Event):
            yield event

    async def StopProvider(self, request: Any, context: Ctx) -> Any:
        self.core.stop()
        return pb.StopProvider.Response()

    # -- state stores (loaded on first use) ------------------------------------------

    @cached_property
    def state(self) -> StateCore:
        from ._state_core import StateCore

        return StateCore(self.core)

    async def _state(self, method: str, context: Ctx) -> StateCore:
        """The state-store server; a provider without state stores answers
        UNIMPLEMENTED quietly, like any RPC it does not define."""
        if not self.core.provider.state_stores:
            await unimplemented("tfplugin6.Provider", method)(None, context)
        return self.state

    async def ValidateStateStoreConfig(self, request: Any, context: Ctx) -> Any:
        state = await self._state("ValidateStateStoreConfig", context)
        return await state.validate_config(request, pb.ValidateStateStoreConfig.Response)

    async def ConfigureStateStore(self, request: Any, context: Ctx) -> Any:
        state = await self._state("ConfigureStateStore", context)
        return await state.configure(request, pb.ConfigureStateStore.Response)

    async def ReadStateBytes(self, request: Any, context: Ctx) -> AsyncIterator[Any]:
        state = await self._state("ReadStateBytes", context)
        async for chunk in state.read(request):
            yield chunk

    async def WriteStateBytes(self, request_iterator: AsyncIterator[Any], context: Ctx) -> Any:
        state = await self._state("WriteStateBytes", context)
        return await state.write(request_iterator, pb.WriteStateBytes.Response)

    async def LockState(self, request: Any, context: Ctx) -> Any:
        state = await self._state("LockState", context)
        return await state.lock(request, pb.LockState.Response)

    async def UnlockState(self, request: Any, context: Ctx) -> Any:
        state = await self._state("UnlockState", context)
        return await state.unlock(request, pb.UnlockState.Response)

    async def GetStates(self, request: Any, context: Ctx) -> Any:
        state = await self._state("GetStates", context)
        return await state.get_states(request, pb.GetStates.Response)

    async def DeleteState(self, request: Any, context: Ctx) -> Any:
        state = await self._state("DeleteState", context)
        return await state.delete(request, pb.DeleteState.Response)


def register(provider: Provider, server: grpc.aio.Server) -> ProviderCore:
    """Serve ``provider`` over protocol 6 on ``server``."""
    core = ProviderCore(provider, pb, 6)
    pb_grpc.add_ProviderServicer_to_server(ProviderServicer(core), server)  # type: ignore[arg-type]
    return core
