"""The per-field adjust and update helpers of :class:`~plugwire.ttrpc.nri.result.Result`.

Upstream ``pkg/adaptation/result.go`` from ``adjustAnnotations`` on: one method per
field of a ContainerAdjustment (``_annotations``, ``_mounts``, ``_env``...) and the
ContainerUpdate side (``_container_update``, ``_update_resources``). They are the
methods of :class:`FieldMerger`, which :class:`Result` extends with the merge driver
(building the result, :meth:`~plugwire.ttrpc.nri.result.Result.apply`, responses).
"""

from __future__ import annotations

from collections.abc import Iterable

from ._generated import api_pb2 as pb
from .api import NriError
from .owners import Owners, is_marked_for_removal, mark_for_removal

__all__ = ["FieldMerger"]


def _replace(repeated: object, items: Iterable[object]) -> None:
    values = list(items)
    del repeated[:]  # type: ignore[attr-defined]
    repeated.extend(values)  # type: ignore[attr-defined]


def _split_env(entry: str) -> str:
    return entry.split("=", 1)[0]


_MEMORY_FIELDS = (
    ("limit", pb.MemLimit),
    ("reservation", pb.MemReservation),
    ("swap", pb.MemSwapLimit),
    ("kernel", pb.MemKernelLimit),
    ("kernel_tcp", pb.MemTCPLimit),
    ("swappiness", pb.MemSwappiness),
    ("disable_oom_killer", pb.MemDisableOomKiller),
    ("use_hierarchy", pb.MemUseHierarchy),
)
_CPU_OPTIONAL_FIELDS = (
    ("shares", pb.CPUShares),
    ("quota", pb.CPUQuota),
    ("period", pb.CPUPeriod),
    ("realtime_runtime", pb.CPURealtimeRuntime),
    ("realtime_period", pb.CPURealtimePeriod),
)


class FieldMerger:
    """The field-by-field merge of plugin replies into a result (see :class:`Result`)."""

    create: pb.CreateContainerRequest | None
    update_request: pb.UpdateContainerRequest | None
    adjust: pb.ContainerAdjustment | None
    reply_updates: list[pb.ContainerUpdate]
    updates: dict[str, pb.ContainerUpdate]
    owners: Owners

    def _cid(self) -> str:
        assert self.create is not None
        return self.create.container.id

    def _keyed_map(
        self,
        entries: dict[str, str],
        container_map: object,
        reply_map: object,
        field: int,
        plugin: str,
        *,
        removed_value: str | None = "",
    ) -> None:
        cid = self._cid()
        cmap: dict[str, object] = container_map  # type: ignore[assignment]
        rmap: dict[str, object] = reply_map  # type: ignore[assignment]
        delete: dict[str, None] = {}
        for key in list(entries):
            name, marked = is_marked_for_removal(key)
            if marked:
                delete[name] = None
                del entries[key]
        for key, value in entries.items():
            if key in delete:
                self.owners.clear(cid, field, plugin, key)
                cmap.pop(key, None)
                _mark_removed(rmap, key, removed_value)
            self.owners.claim(cid, field, plugin, key)
            _set_map(cmap, key, value)
            _set_map(rmap, key, value)
            delete.pop(key, None)
        for key in delete:
            _mark_removed(rmap, key, removed_value)

    def _annotations(self, annotations: dict[str, str], plugin: str) -> None:
        if not annotations:
            return
        assert self.create is not None and self.adjust is not None
        self._keyed_map(
            annotations,
            self.create.container.annotations,
            self.adjust.annotations,
            pb.Annotations,
            plugin,
        )

    def _sysctl(self, sysctl: dict[str, str], plugin: str) -> None:
        if not sysctl:
            return
        assert self.create is not None and self.adjust is not None
        self._keyed_map(
            sysctl,
            self.create.container.linux.sysctl,
            self.adjust.linux.sysctl,
            pb.Sysctl,
            plugin,
        )

    def _net_devices(self, devices: dict[str, pb.LinuxNetDevice], plugin: str) -> None:
        if not devices:
            return
        assert self.create is not None and self.adjust is not None
        self._keyed_map(
            devices,  # type: ignore[arg-type]
            self.create.container.linux.net_devices,
            self.adjust.linux.net_devices,
            pb.LinuxNetDevices,
            plugin,
            removed_value=None,
        )

    def _mounts(self, mounts: list[pb.Mount], plugin: str) -> None:
        if not mounts:
            return
        assert self.create is not None and self.adjust is not None
        cid, container = self._cid(), self.create.container
        add: list[pb.Mount] = []
        delete: dict[str, pb.Mount] = {}
        modify: dict[str, pb.Mount] = {}
        for m in mounts:
            key, marked = is_marked_for_removal(m.destination)
            if marked:
                delete[key] = m
            else:
                add.append(m)
                modify[key] = m
        kept = []
        for m in self.adjust.mounts:
            if m.destination in delete:
                self.owners.clear(cid, pb.Mounts, plugin, m.destination)
                continue
            kept.append(m)
        _replace(self.adjust.mounts, kept)
        _replace(
            container.mounts,
            [
                m
                for m in container.mounts
                if m.destination not in delete and m.destination not in modify
            ],
        )
        for m in add:
            self.owners.claim(cid, pb.Mounts, plugin, m.destination)
            self.adjust.mounts.append(m)
        for m in delete.values():
            if is_marked_for_removal(m.destination)[0] not in modify:
                self.adjust.mounts.append(m)
        container.mounts.extend(add)

    def _devices(self, devices: list[pb.LinuxDevice], plugin: str) -> None:
        if not devices:
            return
        assert self.create is not None and self.adjust is not None
        cid, container = self._cid(), self.create.container
        add: list[pb.LinuxDevice] = []
        delete: dict[str, pb.LinuxDevice] = {}
        modify: dict[str, pb.LinuxDevice] = {}
        for d in devices:
            key, marked = is_marked_for_removal(d.path)
            if marked:
                delete[key] = d
            else:
                add.append(d)
                modify[key] = d
        kept = []
        for d in self.adjust.linux.devices:
            if d.path in delete:
                self.owners.clear(cid, pb.Devices, plugin, d.path)
                continue
            kept.append(d)
        _replace(self.adjust.linux.devices, kept)
        _replace(
            container.linux.devices,
            [d for d in container.linux.devices if d.path not in delete and d.path not in modify],
        )
        for d in add:
            self.owners.claim(cid, pb.Devices, plugin, d.path)
            self.adjust.linux.devices.append(d)
        container.linux.devices.extend(add)

    def _namespaces(self, namespaces: list[pb.LinuxNamespace], plugin: str) -> None:
        if not namespaces:
            return
        assert self.create is not None and self.adjust is not None
        cid, container = self._cid(), self.create.container
        by_type: dict[str, pb.LinuxNamespace] = {n.type: n for n in container.linux.namespaces}
        for n in namespaces:
            key, marked = is_marked_for_removal(n.type)
            self.owners.claim(cid, pb.Namespace, plugin, key)
            if marked:
                by_type.pop(key, None)
            else:
                by_type[key] = n
            self.adjust.linux.namespaces.append(n)
        _replace(container.linux.namespaces, list(by_type.values()))

    def _rdt(self, rdt: pb.LinuxRdt | None, plugin: str) -> None:
        assert self.adjust is not None
        self.adjust.linux.rdt.SetInParent()  # upstream initialises it unconditionally
        if rdt is None:
            return
        cid, out = self._cid(), self.adjust.linux.rdt
        if rdt.remove:
            self.owners.clear_rdt(cid, plugin)
            out.Clear()
            out.remove = True
        if rdt.HasField("clos_id"):
            self.owners.claim(cid, pb.RdtClosID, plugin)
            out.clos_id.value = rdt.clos_id.value
            out.remove = False
        if rdt.HasField("schemata"):
            self.owners.claim(cid, pb.RdtSchemata, plugin)
            out.schemata.Clear()
            out.schemata.value.extend(rdt.schemata.value)
            out.remove = False
        if rdt.HasField("enable_monitoring"):
            self.owners.claim(cid, pb.RdtEnableMonitoring, plugin)
            out.enable_monitoring.value = rdt.enable_monitoring.value
            out.remove = False

    def _cdi_devices(self, devices: list[pb.CDIDevice], plugin: str) -> None:
        assert self.adjust is not None
        for d in devices:
            self.owners.claim(self._cid(), pb.CdiDevices, plugin, d.name)
            self.adjust.CDI_devices.append(d)

    def _env(self, env: list[pb.KeyValue], plugin: str) -> None:
        if not env:
            return
        assert self.create is not None and self.adjust is not None
        cid, container = self._cid(), self.create.container
        add: list[pb.KeyValue] = []
        delete: set[str] = set()
        modify: set[str] = set()
        for e in env:
            key, marked = is_marked_for_removal(e.key)
            if marked:
                delete.add(key)
            else:
                add.append(e)
                modify.add(key)
        kept = []
        for e in self.adjust.env:
            if e.key in delete:
                self.owners.clear(cid, pb.Env, plugin, e.key)
                continue
            kept.append(e)
        _replace(self.adjust.env, kept)
        _replace(
            container.env,
            [
                e
                for e in container.env
                if _split_env(e) not in delete and _split_env(e) not in modify
            ],
        )
        for e in add:
            self.owners.claim(cid, pb.Env, plugin, e.key)
            self.adjust.env.append(e)
        container.env.extend(f"{e.key}={e.value}" for e in add)

    def _args(self, args: list[str], plugin: str) -> None:
        if not args:
            return
        assert self.create is not None and self.adjust is not None
        cid = self._cid()
        if args[0] == "":
            self.owners.clear(cid, pb.Args, plugin)
            args = args[1:]
        self.owners.claim(cid, pb.Args, plugin)
        _replace(self.adjust.args, args)
        _replace(self.create.container.args, args)

    def _hooks(self, hooks: pb.Hooks, plugin: str) -> None:
        assert self.create is not None and self.adjust is not None
        claim = False
        for name in (
            "prestart",
            "poststart",
            "poststop",
            "create_runtime",
            "create_container",
            "start_container",
        ):
            added = list(getattr(hooks, name))
            if added:
                getattr(self.adjust.hooks, name).extend(added)
                getattr(self.create.container.hooks, name).extend(added)
                claim = True
        if claim:
            self.owners.claim_hooks(self._cid(), plugin)

    def _memory(
        self,
        mem: pb.LinuxMemory,
        target: pb.LinuxMemory,
        reply: pb.LinuxMemory | None,
        cid: str,
        plugin: str,
    ) -> None:
        for name, field in _MEMORY_FIELDS:
            if mem.HasField(name):
                self.owners.claim(cid, field, plugin)
                value = getattr(mem, name).value
                getattr(target, name).value = value
                if reply is not None:
                    getattr(reply, name).value = value

    def _cpu(
        self,
        cpu: pb.LinuxCPU,
        target: pb.LinuxCPU,
        reply: pb.LinuxCPU | None,
        cid: str,
        plugin: str,
    ) -> None:
        for name, field in _CPU_OPTIONAL_FIELDS:
            if cpu.HasField(name):
                self.owners.claim(cid, field, plugin)
                value = getattr(cpu, name).value
                getattr(target, name).value = value
                if reply is not None:
                    getattr(reply, name).value = value
        for name, field in (("cpus", pb.CPUSetCPUs), ("mems", pb.CPUSetMems)):
            value = getattr(cpu, name)
            if value:
                self.owners.claim(cid, field, plugin)
                setattr(target, name, value)
                if reply is not None:
                    setattr(reply, name, value)

    def _resources(self, res: pb.LinuxResources, plugin: str) -> None:
        assert self.create is not None and self.adjust is not None
        cid = self._cid()
        container = self.create.container.linux.resources
        reply = self.adjust.linux.resources
        if res.HasField("memory"):
            self._memory(res.memory, container.memory, reply.memory, cid, plugin)
        if res.HasField("cpu"):
            self._cpu(res.cpu, container.cpu, reply.cpu, cid, plugin)
        for limit in res.hugepage_limits:
            self.owners.claim(cid, pb.HugepageLimits, plugin, limit.page_size)
            container.hugepage_limits.append(limit)
            reply.hugepage_limits.append(limit)
        for dev in res.devices:
            container.devices.append(dev)
            reply.devices.append(dev)
        for key, value in res.unified.items():
            self.owners.claim(cid, pb.CgroupsUnified, plugin, key)
            container.unified[key] = value
            reply.unified[key] = value
        if res.HasField("blockio_class"):
            self.owners.claim(cid, pb.BlockioClass, plugin)
            container.blockio_class.value = res.blockio_class.value
            reply.blockio_class.value = res.blockio_class.value
        if res.HasField("rdt_class"):
            self.owners.claim(cid, pb.RdtClass, plugin)
            container.rdt_class.value = res.rdt_class.value
            reply.rdt_class.value = res.rdt_class.value
        if res.HasField("pids"):
            self.owners.claim(cid, pb.PidsLimit, plugin)
            container.pids.limit = res.pids.limit
            reply.pids.limit = res.pids.limit

    def _cgroups_path(self, path: str, plugin: str) -> None:
        if not path:
            return
        assert self.create is not None and self.adjust is not None
        self.owners.claim(self._cid(), pb.CgroupsPath, plugin)
        self.create.container.linux.cgroups_path = path
        self.adjust.linux.cgroups_path = path

    def _simple_copy(self, name: str, value: object, field: int, plugin: str) -> None:
        assert self.create is not None and self.adjust is not None
        self.owners.claim(self._cid(), field, plugin)
        getattr(self.create.container.linux, name).CopyFrom(value)
        getattr(self.adjust.linux, name).CopyFrom(value)

    def _rlimits(self, rlimits: list[pb.POSIXRlimit], plugin: str) -> None:
        if not rlimits:
            return
        assert self.create is not None and self.adjust is not None
        for limit in rlimits:
            self.owners.claim(self._cid(), pb.Rlimits, plugin, limit.type)
            self.create.container.rlimits.append(limit)
            self.adjust.rlimits.append(limit)

    # -- updates ------------------------------------------------------------------

    def _container_update(self, u: pb.ContainerUpdate, plugin: str) -> pb.ContainerUpdate:
        cid = u.container_id
        if self.create is not None and self.create.container.id == cid:
            raise NriError(f'plugin "{plugin}" asked update of "{cid}" during creation')
        existing = self.updates.get(cid)
        if existing is not None:
            existing.ignore_failure = existing.ignore_failure and u.ignore_failure
            return existing
        update = pb.ContainerUpdate(container_id=cid, ignore_failure=u.ignore_failure)
        update.linux.resources.memory.SetInParent()
        update.linux.resources.cpu.SetInParent()
        self.updates[cid] = update
        if self.update_request is None or self.update_request.container.id != cid:
            self.reply_updates.append(update)
        return update

    def _update_resources(
        self, reply: pb.ContainerUpdate, u: pb.ContainerUpdate, plugin: str
    ) -> None:
        if not (u.HasField("linux") and u.linux.HasField("resources")):
            return
        cid = u.container_id
        request = self.update_request
        resources = pb.LinuxResources()
        if request is not None and request.container.id == cid:
            resources.CopyFrom(request.linux_resources)
        else:
            resources.CopyFrom(reply.linux.resources)
        new = u.linux.resources
        if new.HasField("memory"):
            resources.memory.SetInParent()
            self._memory(new.memory, resources.memory, None, cid, plugin)
        if new.HasField("cpu"):
            resources.cpu.SetInParent()
            self._cpu(new.cpu, resources.cpu, None, cid, plugin)
        for limit in new.hugepage_limits:
            self.owners.claim(cid, pb.HugepageLimits, plugin, limit.page_size)
            resources.hugepage_limits.append(limit)
        for key, value in new.unified.items():
            self.owners.claim(cid, pb.CgroupsUnified, plugin, key)
            resources.unified[key] = value
        if new.HasField("blockio_class"):
            self.owners.claim(cid, pb.BlockioClass, plugin)
            resources.blockio_class.value = new.blockio_class.value
        if new.HasField("rdt_class"):
            self.owners.claim(cid, pb.RdtClass, plugin)
            resources.rdt_class.value = new.rdt_class.value
        if resources.HasField("pids"):  # sic: upstream looks at the copy
            self.owners.claim(cid, pb.PidsLimit, plugin)
        reply.linux.resources.CopyFrom(resources)
        if request is not None and request.container.id == cid:
            request.linux_resources.CopyFrom(resources)


def _set_map(target: dict[str, object], key: str, value: object) -> None:
    if isinstance(value, str):
        target[key] = value
    else:
        target[key].CopyFrom(value)  # type: ignore[attr-defined]


def _mark_removed(target: dict[str, object], key: str, removed_value: str | None) -> None:
    if removed_value is None:
        target[mark_for_removal(key)].SetInParent()  # type: ignore[attr-defined]
    else:
        target[mark_for_removal(key)] = removed_value
