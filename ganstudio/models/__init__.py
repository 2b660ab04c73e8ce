"""Model descriptors, the registry and safe weight loading. No Qt."""
from .descriptor import CLASSIC, SPANDREL, TASKS, ModelDescriptor
from .loading import ModelLoadError, import_foreign_model, model_cache
from .registry import ModelCardError, Registry, UnknownModelError, configure_registry, get_registry

__all__ = [
    "CLASSIC",
    "SPANDREL",
    "TASKS",
    "ModelCardError",
    "ModelDescriptor",
    "ModelLoadError",
    "Registry",
    "UnknownModelError",
    "configure_registry",
    "get_registry",
    "import_foreign_model",
    "model_cache",
]
