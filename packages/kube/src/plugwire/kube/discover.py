"""Finding deployed plugins: the Services that carry the plugwire plugin label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .api import KubeAPI, meta
from .spec import LABEL_PLUGIN
from .validation import check_dns1123_label

__all__ = ["DiscoveredPlugin", "discover"]


@attrs.frozen
class DiscoveredPlugin:
    """One plugin Service: its plugin name (the label value), ports and cluster IP."""

    name: str
    namespace: str
    plugin: str
    labels: Mapping[str, str]
    ports: tuple[int, ...]
    cluster_ip: str | None
    uid: str

    @property
    def address(self) -> str:
        """``<service>.<namespace>.svc:<first port>``: the in-cluster address."""
        return f"{self.name}.{self.namespace}.svc:{self.ports[0]}" if self.ports else ""


async def discover(
    api: KubeAPI | Any, namespace: str, label_selector: str = LABEL_PLUGIN
) -> list[DiscoveredPlugin]:
    """The plugin Services in ``namespace`` matching ``label_selector``, sorted by name.

    ``api`` is a :class:`~plugwire.kube.api.KubeAPI` or a ``kubernetes.client.ApiClient``.
    The default selector (``plugwire.io/plugin``, i.e. "has the label") finds every
    plugwire plugin; ``"plugwire.io/plugin=kv,tier=db"`` narrows it. Only Services that
    carry the plugin label are returned. The list call is bounded by the API timeout
    and retried on transient errors. Raises :class:`~plugwire.kube.KubeAPIError`.
    """
    check_dns1123_label(namespace, "namespace")
    kube = api if isinstance(api, KubeAPI) else KubeAPI(api)
    services = await kube.call(
        f"list Services {namespace} ({label_selector})",
        kube.core.list_namespaced_service,
        namespace,
        label_selector=label_selector,
    )
    found = []
    for svc in services.items:
        m = meta(svc)
        labels = dict(m.labels or {})
        if LABEL_PLUGIN not in labels:
            continue
        found.append(
            DiscoveredPlugin(
                name=str(m.name),
                namespace=str(m.namespace),
                plugin=labels[LABEL_PLUGIN],
                labels=labels,
                ports=tuple(int(p.port) for p in ((svc.spec.ports if svc.spec else None) or [])),
                cluster_ip=svc.spec.cluster_ip if svc.spec else None,
                uid=str(m.uid),
            )
        )
    return sorted(found, key=lambda p: p.name)
