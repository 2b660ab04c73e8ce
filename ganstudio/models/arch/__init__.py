"""Architectures of our own models, by the name a model card gives in ``architecture.name``.

Each entry builds an ``nn.Module`` from the keyword arguments in ``architecture.params``.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_arch(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = factory
        return factory

    return decorate


def build_arch(name: str, params: dict) -> nn.Module:
    _import_builtin_archs()
    try:
        factory = ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r} (known: {', '.join(sorted(ARCHITECTURES))})") from None
    return factory(**params)


def _import_builtin_archs() -> None:
    # Importing the modules runs their @register_arch decorators; kept lazy so the registry scan stays cheap.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
