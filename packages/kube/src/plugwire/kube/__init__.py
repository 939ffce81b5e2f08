"""plugwire.kube: Kubernetes-deployed go-plugin plugins (work in progress)."""

from __future__ import annotations

__all__: list[str] = []
