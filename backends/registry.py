"""Backend registry: a decorator that refuses duplicates, lookups that list what exists on a miss, and
third-party backends through the `genrec_bench.backends` entry-point group.

A third-party entry point that cannot be loaded (a missing module, an import that raises, an object that is
not a Backend subclass) does not stop the run: its name is registered as a backend that is unavailable, with
the reason, so the matrix's cells of it skip with that reason and every other backend still runs.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from genrec_bench.backends.base import Backend
from genrec_bench.matrices.errors import RegistryError

ENTRY_POINT_GROUP = "genrec_bench.backends"
_REGISTRY: dict[str, type[Backend]] = {}
_entry_points_loaded = False


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: `@register_backend class OrtCpu(Backend): name = "ort-cpu"`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise RegistryError(
            f"Backend class {cls.__qualname__} has no `name`; set a class attribute name = '...'"
        )
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise RegistryError(
            f"Backend {name} already exists ({_REGISTRY[name].__module__}."
            f"{_REGISTRY[name].__qualname__}); choose another name."
        )
    _REGISTRY[name] = cls
    return cls


def unregister_backend(name: str) -> None:
    """Remove a backend (tests use it to keep the registry as they found it)."""
    _REGISTRY.pop(name, None)


def _broken(name: str, reason: str) -> type[Backend]:
    """A registered stand-in for an entry point that failed to load: unavailable, with the reason."""

    class BrokenEntryPoint(Backend):
        modes = ("eager",)

        def availability(self, context=None):
            return False, reason

        def prepare_impl(self, model, cell, context):  # never reached: prepare() checks availability first
            raise RegistryError(reason)

    BrokenEntryPoint.name = name
    return BrokenEntryPoint


def load_entry_points() -> list[str]:
    """Import third-party backends once; each entry point names a Backend subclass (registering it is ours).
    Returns the names registered, broken ones included (they are unavailable with their reason)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    loaded = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP})"
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a third party's import error is a fact about that backend
            cls = _broken(ep.name, f"{where} failed to load: {type(exc).__name__}: {exc}")
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            cls = _broken(ep.name, f"{where} is not a Backend subclass; point it at the class")
        if _REGISTRY.get(cls.name) is not cls:
            register_backend(cls)
        loaded.append(cls.name)
    return loaded


def backend_names() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    """A fresh instance of the backend called `name`."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise RegistryError(
            f"unknown backend {name!r}; registered: {', '.join(backend_names()) or 'none'}"
        ) from None


def backend_modes() -> dict[str, tuple[str, ...]]:
    """name → modes, what the matrix loader validates against."""
    return {name: cls.modes for name, cls in sorted(_REGISTRY.items())}
