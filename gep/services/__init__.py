"""Ecosystem services. Every module here that defines ``SERVICE`` (or ``SERVICES``) is registered by its key."""
from __future__ import annotations

import importlib
import pkgutil

from gep.services.base import Service


def _discover() -> dict[str, Service]:
    found: dict[str, Service] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("attributed", "base", "inputs", "purification"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        single = getattr(module, "SERVICE", None)
        for service in getattr(module, "SERVICES", (single,) if single is not None else ()):
            if service.key in found:
                raise RuntimeError(f"two services share the key {service.key!r}")
            found[service.key] = service
    return found


REGISTRY: dict[str, Service] = _discover()
