"""Ecosystem services. Every module here that defines ``SERVICE`` is registered by its key."""
from __future__ import annotations

import importlib
import pkgutil

from gep.services.base import Service


def _discover() -> dict[str, Service]:
    found: dict[str, Service] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("base", "inputs"):
            continue
        service = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SERVICE", None)
        if service is not None:
            if service.key in found:
                raise RuntimeError(f"two services share the key {service.key!r}")
            found[service.key] = service
    return found


REGISTRY: dict[str, Service] = _discover()
