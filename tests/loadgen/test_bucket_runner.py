"""Bucket runners and the batcher's calls: any users loaded into a bucket give those users' answers, padded
or not, however often the bucket is refilled."""

import inspect

import torch

from genrec_bench.backends import get_backend
from genrec_bench.backends.base import Session
from genrec_bench.bench.loadgen.qsl import library
from genrec_bench.bench.loadgen.sut_batcher import BatcherSUT, default_buckets
from genrec_bench.bench.oracle import compare
from genrec_bench.bench.reference_model import model_for
from genrec_bench.bench.tolerances import limits_for
from genrec_bench.matrices import Cell


class Echo(Session):
    """Answers each user with its own first item ids: what was loaded is what is run."""

    def runner(self, drawn):
        ids = drawn["ids"][:, :3].clone()
        return lambda: (ids.float(), ids)


def test_the_default_bucket_runner_builds_a_runner_per_load():
    qsl = library("tiny", "prefill", 32, 16, 0)
    bucket = Echo().bucket_runner(qsl.gather([0, 1]))
    assert torch.equal(bucket.run()[1], qsl.drawn["ids"][[0, 1], :3])
    bucket.load(qsl.gather([5, 9]))
    assert torch.equal(bucket.run()[1], qsl.drawn["ids"][[5, 9], :3])


def test_torch_bucket_runners_refill_in_place_and_the_batcher_pads():
    qsl = library("tiny", "rank", 32, 24, 3)
    ref = qsl.reference()
    tolerance = limits_for("fp32", "rank")
    cell = Cell("tiny", "torch-cpu", "eager", "fp32", 4, 32, "rank", scenario="offline")
    with get_backend("torch-cpu").prepare(model_for("tiny", "torch"), cell) as session:
        sut = BatcherSUT(session, qsl, default_buckets(4), max_wait_ms=0)
        assert sut.buckets == (1, 2, 4) and set(sut.runners) == {1, 2, 4}
        for users in ([3, 4, 5, 6], [7, 8, 9], [20], [0, 23], [10, 11, 12]):  # 3 users go in bucket 4, padded
            scores, items = sut._call(users)
            assert scores.shape[0] == items.shape[0] == len(users)
            verdict = compare(ref.rows(torch.as_tensor(users)), scores, items, tolerance)
            assert verdict.passed, (users, verdict.message)
        # Its buffers are the bucket's own inference tensors (on CUDA every input is): refilled in inference
        # mode, or the loop above would have raised.
        assert all(t.is_inference() for t in closure_tensors(sut.runners[4].run))


def closure_tensors(run) -> list:
    """The input tensors a bucket's closure reads (a tuple of inputs it captured, directly or through the
    functions it captured, such as the source of its inputs)."""
    seen, tensors, todo = set(), [], [inspect.unwrap(run)]
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        for cell in fn.__closure__ or ():
            value = cell.cell_contents
            if isinstance(value, tuple):
                tensors += [t for t in value if isinstance(t, torch.Tensor)]
            elif callable(value) and getattr(value, "__closure__", None):
                todo.append(value)
    assert tensors, "the closure holds no input tuple: the test no longer looks where the inputs are"
    return tensors


def test_default_buckets():
    assert default_buckets(8) == (1, 2, 4, 8)
    assert default_buckets(6) == (1, 2, 4, 6)
    assert default_buckets(256, (32, 64, 128, 256, 512)) == (32, 64, 128, 256)
    assert default_buckets(100, (1, 8)) == (1, 8, 100)
