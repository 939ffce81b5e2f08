"""Merging plugin replies: upstream's ``pkg/adaptation/result.go`` and ``api/owners.go``.

The runtime calls plugins in index order and folds each reply into one
:class:`Result`. Every field a plugin sets is *claimed* in :class:`Owners` under the
plugin's ``NN-name``; a second plugin claiming the same field of the same container
is a :class:`~plugwire.core.errors.PlugwireError` subclass :class:`ConflictError`
with upstream's text (``plugins "20-b" and "10-a" both tried to set Env FOO``). A
plugin may first remove an entry (key prefixed with ``-``) and then set it again;
the removal is remembered as ``-<plugin>`` so that only the remover may set it.

The port is line-for-line where behaviour matters, including upstream's quirks (an
``Rdt`` message is always present in a Linux adjustment; a ``Pids`` claim in an
update looks at the existing resources). The container in the request is updated as
plugins go, so each plugin sees the adjustments of the plugins before it.

This module is the merge driver (building a result, :meth:`Result.apply`, the
responses); the ownership tracking (``api/owners.go``) is :mod:`.owners` and the
per-field adjust and update helpers are :mod:`._result_fields`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._generated import api_pb2 as pb
from ._result_fields import FieldMerger
from .api import ConflictError, NriError
from .owners import Owners, is_marked_for_removal, mark_for_removal

__all__ = ["Owners", "Result", "is_marked_for_removal", "mark_for_removal"]


class Result(FieldMerger):
    """The merged outcome of one CreateContainer, UpdateContainer or StopContainer.

    Build with :meth:`for_create`, :meth:`for_update` or :meth:`for_stop`, feed each
    plugin reply to :meth:`apply` in invocation order, then read
    :meth:`create_response`, :meth:`update_response` or :meth:`stop_response`.
    """

    def __init__(
        self,
        *,
        create: pb.CreateContainerRequest | None = None,
        update: pb.UpdateContainerRequest | None = None,
    ) -> None:
        self.create = create
        self.update_request = update
        self.adjust: pb.ContainerAdjustment | None = None
        self.reply_updates: list[pb.ContainerUpdate] = []
        self.updates: dict[str, pb.ContainerUpdate] = {}
        self.owners = Owners()

    @classmethod
    def for_create(cls, request: pb.CreateContainerRequest) -> Result:
        """Collect a CreateContainer result; ``request.container`` is adjusted in place."""
        c = request.container
        c.hooks.SetInParent()
        c.linux.resources.memory.SetInParent()
        c.linux.resources.cpu.SetInParent()
        result = cls(create=request)
        adjust = pb.ContainerAdjustment()
        adjust.hooks.SetInParent()
        adjust.linux.resources.memory.SetInParent()
        adjust.linux.resources.cpu.SetInParent()
        result.adjust = adjust
        return result

    @classmethod
    def for_update(cls, request: pb.UpdateContainerRequest) -> Result:
        request.linux_resources.memory.SetInParent()
        request.linux_resources.cpu.SetInParent()
        return cls(update=request)

    @classmethod
    def for_stop(cls) -> Result:
        return cls()

    # -- responses ----------------------------------------------------------------

    def create_response(self) -> pb.CreateContainerResponse:
        rpl = pb.CreateContainerResponse(update=self.reply_updates)
        if self.adjust is not None:
            rpl.adjust.CopyFrom(self.adjust)
        return rpl

    def update_response(self) -> pb.UpdateContainerResponse:
        assert self.update_request is not None
        updates = list(self.reply_updates)
        requested = self.updates.get(self.update_request.container.id)
        # Upstream appends the (possibly nil) requested update; a nil entry
        # marshals as an empty message.
        updates.append(requested if requested is not None else pb.ContainerUpdate())
        return pb.UpdateContainerResponse(update=updates)

    def stop_response(self) -> pb.StopContainerResponse:
        return pb.StopContainerResponse(update=self.reply_updates)

    # -- folding replies ----------------------------------------------------------

    def apply(
        self,
        reply: pb.CreateContainerResponse | pb.UpdateContainerResponse | pb.StopContainerResponse,
        plugin: str,
    ) -> None:
        """Fold one plugin's reply in; raises :class:`ConflictError` on a conflict."""
        if isinstance(reply, pb.CreateContainerResponse):
            if reply.HasField("adjust"):
                self._adjust(reply.adjust, plugin)
            self._update(reply.update, plugin)
        elif isinstance(reply, pb.UpdateContainerResponse | pb.StopContainerResponse):
            self._update(reply.update, plugin)
        else:
            raise NriError(f"cannot apply response of invalid type {type(reply).__name__}")

    def _adjust(self, rpl: pb.ContainerAdjustment, plugin: str) -> None:
        self._annotations(dict(rpl.annotations), plugin)
        self._mounts(list(rpl.mounts), plugin)
        self._env(list(rpl.env), plugin)
        self._args(list(rpl.args), plugin)
        if rpl.HasField("hooks"):
            self._hooks(rpl.hooks, plugin)
        if rpl.HasField("linux"):
            lin = rpl.linux
            self._devices(list(lin.devices), plugin)
            if lin.HasField("resources"):
                self._resources(lin.resources, plugin)
            self._cgroups_path(lin.cgroups_path, plugin)
            if lin.HasField("oom_score_adj"):
                self._simple_copy("oom_score_adj", lin.oom_score_adj, pb.OomScoreAdj, plugin)
            if lin.HasField("io_priority"):
                self._simple_copy("io_priority", lin.io_priority, pb.IoPriority, plugin)
            if lin.HasField("seccomp_policy"):
                self._simple_copy("seccomp_policy", lin.seccomp_policy, pb.SeccompPolicy, plugin)
            self._namespaces(list(lin.namespaces), plugin)
            self._sysctl(dict(lin.sysctl), plugin)
            self._net_devices({k: v for k, v in lin.net_devices.items()}, plugin)
            if lin.HasField("scheduler"):
                self._simple_copy("scheduler", lin.scheduler, pb.LinuxSched, plugin)
            self._rdt(lin.rdt if lin.HasField("rdt") else None, plugin)
            if lin.HasField("memory_policy"):
                self.owners.claim(self._cid(), pb.MemoryPolicy, plugin)
                assert self.adjust is not None
                self.adjust.linux.memory_policy.CopyFrom(lin.memory_policy)
        self._rlimits(list(rpl.rlimits), plugin)
        self._cdi_devices(list(rpl.CDI_devices), plugin)

    def _update(self, updates: Iterable[pb.ContainerUpdate], plugin: str) -> None:
        for u in updates:
            reply = self._container_update(u, plugin)
            try:
                self._update_resources(reply, u, plugin)
            except ConflictError:
                if not u.ignore_failure:
                    raise
