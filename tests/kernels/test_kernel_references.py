"""The references stay exportable: torch.compile traces them without graph breaks and the dynamo ONNX
exporter turns them into graphs onnxruntime runs with a dynamic batch (the ONNX backend relies on both)."""

from __future__ import annotations

import warnings

import pytest
import torch

from genrec_bench.kernels.interaction import interaction
from genrec_bench.kernels.jagged_pooling import jagged_pooling


class _Interaction(torch.nn.Module):
    def forward(self, x, dense):
        return interaction(x, dense=dense)


class _Pooling(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(50, 8, generator=torch.Generator().manual_seed(0)))

    def forward(self, values, offsets):
        return jagged_pooling(values, offsets, self.table, mode="mean")


def _pooling_inputs(lengths):
    offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    return torch.randint(0, 50, (int(offsets[-1]),)), offsets


def test_references_compile_without_graph_breaks():
    torch._dynamo.reset()
    f = torch.compile(_Interaction(), fullgraph=True, dynamic=True, backend="aot_eager")
    x, dense = torch.randn(3, 5, 16), torch.randn(3, 2)
    torch.testing.assert_close(f(x, dense), interaction(x, dense=dense))
    g = torch.compile(_Pooling(), fullgraph=True, dynamic=True, backend="aot_eager")
    m = _Pooling()
    for lengths in ([3, 0, 2], [0, 0, 9, 1, 1]):
        values, offsets = _pooling_inputs(lengths)
        torch.testing.assert_close(g(values, offsets), m(values, offsets))


def _export_and_run(module, args, dynamic_shapes, new_args, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=dynamic_shapes, verbose=False)
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    (out,) = session.run(None, {n: a.numpy() for n, a in zip(names, new_args)})
    return torch.from_numpy(out)


@pytest.mark.slow
def test_interaction_reference_exports_to_onnx(tmp_path):
    batch = torch.export.Dim("batch", min=2)
    args = (torch.randn(4, 6, 16), torch.randn(4, 3))
    new = (torch.randn(7, 6, 16), torch.randn(7, 3))
    got = _export_and_run(_Interaction(), args, {"x": {0: batch}, "dense": {0: batch}}, new, tmp_path)
    torch.testing.assert_close(got, interaction(new[0], dense=new[1]), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_jagged_pooling_reference_exports_to_onnx(tmp_path):
    module = _Pooling()
    dims = {"values": {0: torch.export.Dim("n", min=2)}, "offsets": {0: torch.export.Dim("rows", min=2)}}
    new = _pooling_inputs([0, 5, 0, 8, 0])
    got = _export_and_run(module, _pooling_inputs([3, 0, 7]), dims, new, tmp_path)
    torch.testing.assert_close(got, module(*new).detach(), rtol=1e-5, atol=1e-6)
