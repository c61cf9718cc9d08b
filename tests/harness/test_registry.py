import pytest

from genrec_bench.backends import Backend, backend_names, get_backend, register_backend, unregister_backend
from genrec_bench.backends.registry import load_entry_points
from genrec_bench.matrices import Cell
from genrec_bench.matrices.errors import BackendError, BackendUnavailable, RegistryError


class _Fake(Backend):
    name = "fake-test"

    def prepare_impl(self, model, cell, context):
        raise RuntimeError("engine build exploded")


@pytest.fixture
def fake():
    register_backend(_Fake)
    yield _Fake
    unregister_backend("fake-test")


def test_duplicates_are_refused(fake):
    class Other(Backend):
        name = "fake-test"

        def prepare_impl(self, model, cell, context):
            raise NotImplementedError

    with pytest.raises(RegistryError, match="Backend fake-test already exists"):
        register_backend(Other)
    register_backend(fake)  # the same class again is not a duplicate


def test_a_miss_lists_what_exists(fake):
    with pytest.raises(RegistryError, match="unknown backend 'nope'; registered: .*fake-test.*torch-cpu"):
        get_backend("nope")


def test_builtin_backends_are_registered():
    assert {"torch-cpu", "torch-cuda"} <= set(backend_names())


def test_a_nameless_backend_is_refused():
    class Nameless(Backend):
        def prepare_impl(self, model, cell, context):
            raise NotImplementedError

    with pytest.raises(RegistryError, match="has no `name`"):
        register_backend(Nameless)


def test_library_errors_become_one_line_backend_errors(fake):
    cell = Cell("tiny", "fake-test", "eager", "fp32", 1, 8, "prefill")
    with pytest.raises(
        BackendError,
        match=r"^fake-test \| preparing tiny-fake-test-fp32-b1-s8-prefill failed: "
        r"RuntimeError: engine build exploded$",
    ):
        get_backend("fake-test").prepare(None, cell)


def test_unsupported_mode_is_refused(fake):
    cell = Cell("tiny", "fake-test", "compile", "fp32", 1, 8, "prefill")
    with pytest.raises(BackendError, match="mode 'compile' is not supported; modes: eager"):
        get_backend("fake-test").prepare(None, cell)


def test_unavailable_backend_says_why(monkeypatch):
    backend = get_backend("torch-cuda")
    monkeypatch.setattr(type(backend), "availability", lambda self, context=None: (False, "no GPU here"))
    cell = Cell("tiny", "torch-cuda", "eager", "fp32", 1, 8, "prefill")
    with pytest.raises(BackendUnavailable, match="no GPU here"):
        backend.prepare(None, cell)


def test_entry_points_register_third_party_backends(monkeypatch):
    import genrec_bench.backends.registry as registry

    class EP:
        name, value = "fake-ep", "thirdparty:Backend"

        @staticmethod
        def load():
            class ThirdParty(Backend):
                name = "fake-ep"

                def prepare_impl(self, model, cell, context):
                    raise NotImplementedError

            return ThirdParty

    monkeypatch.setattr(
        registry, "entry_points", lambda group: [EP] if group == registry.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert load_entry_points() == ["fake-ep"]
        assert "fake-ep" in backend_names()
    finally:
        unregister_backend("fake-ep")


@pytest.mark.parametrize(
    "loaded, words",
    [
        (lambda: object, "is not a Backend subclass; point it at the class"),
        (
            lambda: __import__("no_such_module_anywhere"),
            "failed to load: ModuleNotFoundError: No module named",
        ),
    ],
)
def test_a_broken_entry_point_is_an_unavailable_backend_with_the_reason(monkeypatch, loaded, words):
    import genrec_bench.backends.registry as registry

    class EP:
        name, value = "junk", "thirdparty:thing"
        load = staticmethod(loaded)

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert load_entry_points() == ["junk"]
        ok, why = get_backend("junk").availability()
        assert not ok and why.startswith("entry point junk = thirdparty:thing (group genrec_bench.backends) ")
        assert words in why
        with pytest.raises(BackendUnavailable, match="junk | unavailable: entry point junk"):
            get_backend("junk").prepare(None, Cell("tiny", "junk", "eager", "fp32", 1, 8, "prefill"))
    finally:
        unregister_backend("junk")
