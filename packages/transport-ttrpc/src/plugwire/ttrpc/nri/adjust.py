"""Builders for container adjustments and updates (upstream ``api/adjustment.go``).

A plugin's CreateContainer handler returns a :class:`ContainerAdjustment`; building
one field by field with protobuf is verbose, so::

    adjust = (
        Adjustment()
        .add_env("LOG_LEVEL", "debug")
        .add_mount("/data", "/srv/data", options=["rbind", "ro"])
        .add_annotation("example.com/adjusted", "true")
        .set_memory_limit(512 << 20)
        .build()
    )

Removals use upstream's marker: ``remove_env("X")`` sends key ``-X``. Each method
returns the builder; :meth:`Adjustment.build` returns a copy of the message.
:class:`Update` builds a :class:`ContainerUpdate` the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

from ._generated import api_pb2 as pb
from .owners import mark_for_removal

__all__ = ["Adjustment", "Update"]


class _ResourcesMixin:
    def _resources(self) -> pb.LinuxResources:
        raise NotImplementedError

    def set_memory_limit(self, limit: int) -> Self:
        self._resources().memory.limit.value = limit
        return self

    def set_memory_reservation(self, value: int) -> Self:
        self._resources().memory.reservation.value = value
        return self

    def set_memory_swap(self, value: int) -> Self:
        self._resources().memory.swap.value = value
        return self

    def set_cpu_shares(self, shares: int) -> Self:
        self._resources().cpu.shares.value = shares
        return self

    def set_cpu_quota(self, quota: int) -> Self:
        self._resources().cpu.quota.value = quota
        return self

    def set_cpu_period(self, period: int) -> Self:
        self._resources().cpu.period.value = period
        return self

    def set_cpuset_cpus(self, cpus: str) -> Self:
        self._resources().cpu.cpus = cpus
        return self

    def set_cpuset_mems(self, mems: str) -> Self:
        self._resources().cpu.mems = mems
        return self

    def set_pids_limit(self, limit: int) -> Self:
        self._resources().pids.limit = limit
        return self

    def add_hugepage_limit(self, page_size: str, limit: int) -> Self:
        self._resources().hugepage_limits.add(page_size=page_size, limit=limit)
        return self

    def add_unified(self, key: str, value: str) -> Self:
        self._resources().unified[key] = value
        return self

    def set_blockio_class(self, value: str) -> Self:
        self._resources().blockio_class.value = value
        return self

    def set_rdt_class(self, value: str) -> Self:
        self._resources().rdt_class.value = value
        return self


class Adjustment(_ResourcesMixin):
    """Builds a :class:`ContainerAdjustment` (start from ``base`` if given)."""

    def __init__(self, base: pb.ContainerAdjustment | None = None) -> None:
        self._msg = pb.ContainerAdjustment()
        if base is not None:
            self._msg.CopyFrom(base)

    def _resources(self) -> pb.LinuxResources:
        return self._msg.linux.resources

    def build(self) -> pb.ContainerAdjustment:
        out = pb.ContainerAdjustment()
        out.CopyFrom(self._msg)
        return out

    def add_annotation(self, key: str, value: str) -> Self:
        self._msg.annotations[key] = value
        return self

    def remove_annotation(self, key: str) -> Self:
        self._msg.annotations[mark_for_removal(key)] = ""
        return self

    def add_env(self, key: str, value: str) -> Self:
        self._msg.env.add(key=key, value=value)
        return self

    def remove_env(self, key: str) -> Self:
        self._msg.env.add(key=mark_for_removal(key))
        return self

    def add_mount(
        self,
        destination: str,
        source: str,
        *,
        type: str = "bind",
        options: Iterable[str] = ("rbind", "rw"),
    ) -> Self:
        self._msg.mounts.add(destination=destination, source=source, type=type, options=options)
        return self

    def remove_mount(self, destination: str) -> Self:
        self._msg.mounts.add(destination=mark_for_removal(destination))
        return self

    def set_args(self, args: Iterable[str]) -> Self:
        """Replace the command line (a conflict if another plugin set it too)."""
        del self._msg.args[:]
        self._msg.args.extend(args)
        return self

    def update_args(self, args: Iterable[str]) -> Self:
        """Replace the command line even if an earlier plugin set it (``""`` marker)."""
        del self._msg.args[:]
        self._msg.args.extend(["", *args])
        return self

    def add_hook(
        self, stage: str, path: str, args: Iterable[str] = (), env: Iterable[str] = ()
    ) -> Self:
        """Add an OCI hook; ``stage`` is e.g. ``"prestart"`` or ``"create_runtime"``."""
        getattr(self._msg.hooks, stage).add(path=path, args=list(args), env=list(env))
        return self

    def add_rlimit(self, type: str, hard: int, soft: int) -> Self:
        self._msg.rlimits.add(type=type, hard=hard, soft=soft)
        return self

    def add_device(
        self, path: str, type: str, major: int, minor: int, *, file_mode: int | None = None
    ) -> Self:
        dev = self._msg.linux.devices.add(path=path, type=type, major=major, minor=minor)
        if file_mode is not None:
            dev.file_mode.value = file_mode
        return self

    def remove_device(self, path: str) -> Self:
        self._msg.linux.devices.add(path=mark_for_removal(path))
        return self

    def add_cdi_device(self, name: str) -> Self:
        self._msg.CDI_devices.add(name=name)
        return self

    def set_cgroups_path(self, path: str) -> Self:
        self._msg.linux.cgroups_path = path
        return self

    def set_oom_score_adj(self, value: int) -> Self:
        self._msg.linux.oom_score_adj.value = value
        return self

    def add_sysctl(self, key: str, value: str) -> Self:
        self._msg.linux.sysctl[key] = value
        return self


class Update(_ResourcesMixin):
    """Builds a :class:`ContainerUpdate` for ``container_id``."""

    def __init__(self, container_id: str, *, ignore_failure: bool = False) -> None:
        self._msg = pb.ContainerUpdate(container_id=container_id, ignore_failure=ignore_failure)

    def _resources(self) -> pb.LinuxResources:
        return self._msg.linux.resources

    def build(self) -> pb.ContainerUpdate:
        out = pb.ContainerUpdate()
        out.CopyFrom(self._msg)
        return out
