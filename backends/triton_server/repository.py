"""Model repository generator: a cell → `preprocess` → `genrec` → `postprocess` and the `ensemble` tying them.

- preprocess (Python backend): raw user histories HISTORY [n, L] (right-padded with item 0, a batch-1 request
  sends exactly the user's items) → padded IDS and LENGTHS, keeping at most the preset's max_seq_len latest;
- genrec (Python backend): the seeded recommender (`models.build_model(preset)`, so the oracle's reference is
  the same model) with torch on CPU or GPU in the cell's precision → its best `preselect × k` candidates;
- postprocess (Python backend): the final top-k item ids and scores, best first;
- ensemble: HISTORY (+ CONTEXT, CANDIDATES for rank) → SCORES [k], ITEMS [k].
Dynamic batching and instance groups come from the matrix's `serving:` section. For a full Triton installation
genrec can instead be an ONNX Runtime or TensorRT model (`onnxruntime_onnx` / `tensorrt_plan` configs): the
generator writes their configs; the model file itself comes from the ONNX/TensorRT export.

`python -m genrec_bench.backends.triton_server.repository --model tiny --phase prefill --out DIR` writes a
repository for a server of your own (then run the bench with `--triton-url`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from genrec_bench.matrices.errors import BackendError
from genrec_bench.matrices.serving import ServingSpec

ROOT = Path(__file__).resolve().parents[2]
MODEL_CODE = Path(__file__).with_name("model_code")
SERVED_PHASES = ("prefill", "rank")
GENREC_BACKENDS = ("python", "onnxruntime", "tensorrt")
# genrec's tensor names: ours in the Python backend, the exported graph's (models.PHASE_INPUTS/OUTPUTS)
# otherwise.
PYTHON_IO = {n: n for n in ("IDS", "LENGTHS", "CONTEXT", "CANDIDATES", "CAND_SCORES", "CAND_ITEMS")}
EXPORTED_IO = {
    "IDS": "ids",
    "LENGTHS": "lengths",
    "CONTEXT": "context",
    "CANDIDATES": "candidates",
    "CAND_SCORES": "scores",
    "CAND_ITEMS": "items",
}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # Triton's TYPE_* without the prefix
    dims: tuple[int, ...]
    ragged: bool = False
    reshape: tuple[int, ...] | None = None

    def fill(self, message) -> None:
        """Set this tensor's fields on a ModelInput / ModelOutput message."""
        message.name = self.name
        message.data_type = _pb().DataType.Value(f"TYPE_{self.dtype}")
        message.dims.extend(self.dims)
        if self.ragged:
            message.allow_ragged_batch = True
        if self.reshape is not None:
            message.reshape.shape.extend(self.reshape)
            message.reshape.SetInParent()  # an empty shape (a scalar per request) is still a reshape


def _pb():
    """Triton's model-config protobuf module (shipped with tritonclient[grpc]): configs are built as messages,
    so a misspelt field or a wrong type fails while the repository is written, not when the server loads
    it."""
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2


def config_text(config) -> str:
    """config.pbtxt text of a ModelConfig message."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


@dataclass(frozen=True)
class ModelSet:
    """The generated models of one cell's deployment; `entry` is what requests go to."""

    prefix: str
    configs: dict  # model name → config.pbtxt text
    code: dict  # model name → model_code file for the Python backend (absent for onnx/trt models)
    entry: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[str, str]  # (scores, items) output names of the entry model
    width: int  # candidates the entry returns per user (k for the ensemble)
    load_order: tuple[str, ...]

    def write(self, repository: Path) -> None:
        """Write every model folder (config.pbtxt, 1/model.py); rewriting the same set is harmless."""
        for name, text in self.configs.items():
            folder = repository / name
            (folder / "1").mkdir(parents=True, exist_ok=True)
            (folder / "config.pbtxt").write_text(text)
            if name in self.code:
                shutil.copyfile(self.code[name], folder / "1" / "model.py")


def widths(cfg, phase: str, preselect: int) -> tuple[int, int]:
    """(k the response carries, candidates genrec returns)."""
    pool = cfg.num_candidates if phase == "rank" else cfg.num_items - 1
    k = min(cfg.top_k, pool)
    return k, min(pool, max(k, preselect * k))


def model_set(cfg, phase: str, precision: str, kernel: str, spec: ServingSpec, gpu: bool) -> ModelSet:
    """The Python-backend deployment of `cfg` for one (phase, precision, kernel) under `spec`."""
    if phase not in SERVED_PHASES:
        raise BackendError(
            f"triton | phase {phase!r} is not served: decode needs a server-side KV cache "
            f"kept between requests; served phases: {', '.join(SERVED_PHASES)}"
        )
    key = json.dumps(
        {
            "model": cfg.fingerprint(),
            "phase": phase,
            "precision": precision,
            "kernel": kernel,
            "gpu": gpu,
            "spec": spec.repository_key(),
        },
        sort_keys=True,
        default=list,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    prefix = f"{cfg.name}_{precision}_{phase}_{kernel}_{digest}".replace("-", "_")
    k, width = widths(cfg, phase, spec.preselect)
    names = {step: f"{prefix}_{step}" for step in ("preprocess", "genrec", "postprocess", "ensemble")}
    extra = _rank_inputs(cfg) if phase == "rank" else ()
    params = {
        "REPO_ROOT": str(ROOT),
        "PRESET": cfg.name,
        "PHASE": phase,
        "PRECISION": precision,
        "KERNEL": kernel,
        "WIDTH": str(width),
        "TOP_K": str(k),
        "MAX_SEQ_LEN": str(cfg.max_seq_len),
        "MAX_BATCH": str(spec.max_batch_size),
        "CUDA_GRAPHS": "1" if spec.cuda_graphs else "0",
        "CONTEXT_WIDTH": str(len(cfg.context_vocab)),
        "CANDIDATES": str(cfg.num_candidates),
    }
    genrec_in = (Tensor("IDS", "INT64", (-1,), ragged=True), Tensor("LENGTHS", "INT64", (1,))) + extra
    cand = (Tensor("CAND_SCORES", "FP32", (width,)), Tensor("CAND_ITEMS", "INT64", (width,)))
    final = (Tensor("SCORES", "FP32", (k,)), Tensor("ITEMS", "INT64", (k,)))
    history = Tensor("HISTORY", "INT64", (-1,), ragged=True)
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    configs = {
        names["preprocess"]: python_config(
            names["preprocess"],
            spec,
            (history,),
            (Tensor("IDS", "INT64", (-1,)), Tensor("LENGTHS", "INT64", (1,))),
            params,
            "KIND_CPU",
            1,
            queue_delay_us=0,
        ),
        names["genrec"]: python_config(
            names["genrec"],
            spec,
            genrec_in,
            cand,
            params,
            kind,
            spec.instances,
            queue_delay_us=spec.max_queue_delay_us,
        ),
        names["postprocess"]: python_config(
            names["postprocess"], spec, cand, final, params, "KIND_CPU", 1, queue_delay_us=0
        ),
    }
    configs[names["ensemble"]] = ensemble_config(names, spec, (history,) + extra, final, genrec_io=PYTHON_IO)
    code = {names[step]: MODEL_CODE / f"{step}.py" for step in ("preprocess", "genrec", "postprocess")}
    order = tuple(names[s] for s in ("preprocess", "genrec", "postprocess", "ensemble"))
    if spec.target == "genrec":
        return ModelSet(
            prefix,
            {names["genrec"]: configs[names["genrec"]]},
            {names["genrec"]: code[names["genrec"]]},
            names["genrec"],
            genrec_in,
            ("CAND_SCORES", "CAND_ITEMS"),
            width,
            (names["genrec"],),
        )
    return ModelSet(
        prefix, configs, code, names["ensemble"], (history,) + extra, ("SCORES", "ITEMS"), k, order
    )


def _rank_inputs(cfg) -> tuple[Tensor, ...]:
    return (
        Tensor("CONTEXT", "INT64", (len(cfg.context_vocab),)),
        Tensor("CANDIDATES", "INT64", (cfg.num_candidates,)),
    )


# ----------------------------------------------------------------------------------------------- configs


def _base(name: str, spec: ServingSpec, inputs, outputs):
    config = _pb().ModelConfig(name=name, max_batch_size=spec.max_batch_size)
    for tensor in inputs:
        tensor.fill(config.input.add())
    for tensor in outputs:
        tensor.fill(config.output.add())
    return config


def _batching(config, spec: ServingSpec, queue_delay_us: int) -> None:
    config.dynamic_batching.preferred_batch_size.extend(spec.preferred_batch_sizes)
    config.dynamic_batching.max_queue_delay_microseconds = queue_delay_us
    config.dynamic_batching.SetInParent()


def _instances(config, kind: str, count: int) -> None:
    group = config.instance_group.add(count=count, kind=_pb().ModelInstanceGroup.Kind.Value(kind))
    if kind == "KIND_GPU":
        group.gpus.append(0)


def python_config(
    name, spec: ServingSpec, inputs, outputs, params: dict, kind: str, count: int, *, queue_delay_us: int
) -> str:
    """config.pbtxt of a Python-backend model with dynamic batching; `params` reach its initialize()."""
    config = _base(name, spec, inputs, outputs)
    config.backend = "python"
    _batching(config, spec, queue_delay_us)
    _instances(config, kind, count)
    for key, value in sorted(params.items()):
        config.parameters[key].string_value = value
    return config_text(config)


def ensemble_config(names: dict, spec: ServingSpec, inputs, outputs, *, genrec_io: dict) -> str:
    """The ensemble: HISTORY → preprocess → genrec → postprocess; rank inputs go straight to genrec.
    `genrec_io` maps our tensor names to genrec's (PYTHON_IO or EXPORTED_IO)."""
    io = genrec_io
    config = _base(names["ensemble"], spec, inputs, outputs)
    config.platform = "ensemble"
    rank = [(io[t.name], t.name) for t in inputs if t.name in ("CONTEXT", "CANDIDATES")]
    steps = [
        (names["preprocess"], [("HISTORY", "HISTORY")], [("IDS", "ids"), ("LENGTHS", "lengths")]),
        (
            names["genrec"],
            [(io["IDS"], "ids"), (io["LENGTHS"], "lengths")] + rank,
            [(io["CAND_SCORES"], "cand_scores"), (io["CAND_ITEMS"], "cand_items")],
        ),
        (
            names["postprocess"],
            [("CAND_SCORES", "cand_scores"), ("CAND_ITEMS", "cand_items")],
            [("SCORES", "SCORES"), ("ITEMS", "ITEMS")],
        ),
    ]
    for model, inputs_map, outputs_map in steps:
        step = config.ensemble_scheduling.step.add(model_name=model, model_version=-1)
        step.input_map.update(dict(inputs_map))
        step.output_map.update(dict(outputs_map))
    return config_text(config)


def exported_genrec_config(name: str, backend: str, cfg, phase: str, spec: ServingSpec, gpu: bool) -> str:
    """config.pbtxt of genrec as an exported graph for a full Triton installation: `onnxruntime_onnx` or
    `tensorrt_plan`, with the graph's own tensor names (models.PHASE_INPUTS / PHASE_OUTPUTS). `lengths` is
    [B] in the graph, so it is declared [1] and reshaped to a scalar per request, as Triton requires."""
    if backend not in ("onnxruntime", "tensorrt"):
        raise BackendError(
            f"triton | no exported-graph config for genrec backend {backend!r}; "
            f"choose onnxruntime or tensorrt"
        )
    if phase not in SERVED_PHASES:
        raise BackendError(
            f"triton | phase {phase!r} is not served; served phases: {', '.join(SERVED_PHASES)}"
        )
    width = widths(cfg, phase, spec.preselect)[1]
    inputs = [Tensor("ids", "INT64", (-1,)), Tensor("lengths", "INT64", (1,), reshape=())]
    if phase == "rank":
        inputs += [
            Tensor("context", "INT64", (len(cfg.context_vocab),)),
            Tensor("candidates", "INT64", (cfg.num_candidates,)),
        ]
    outputs = (Tensor("scores", "FP32", (width,)), Tensor("items", "INT64", (width,)))
    config = _base(name, spec, inputs, outputs)
    config.platform = "onnxruntime_onnx" if backend == "onnxruntime" else "tensorrt_plan"
    _batching(config, spec, spec.max_queue_delay_us)
    _instances(config, "KIND_GPU" if gpu or backend == "tensorrt" else "KIND_CPU", spec.instances)
    if backend == "onnxruntime" and gpu:
        # Let ORT's CUDA provider run the graph; TensorRT as an ORT accelerator stays opt-in (engine builds).
        config.parameters["cudnn_conv_algo_search"].string_value = "0"
    return config_text(config)


# ----------------------------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    """Write a repository for an external server (e.g. NVIDIA's container) to serve."""
    from genrec_bench.models import preset

    parser = argparse.ArgumentParser(
        prog="python -m genrec_bench.backends.triton_server.repository", description=main.__doc__
    )
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--phase", default="prefill", choices=SERVED_PHASES)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--kernel", default="torch")
    parser.add_argument("--gpu", action="store_true", help="genrec instances on the GPU")
    parser.add_argument("--genrec-backend", default="python", choices=GENREC_BACKENDS)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = ServingSpec()
    cfg = preset(args.model)
    models = model_set(cfg, args.phase, args.precision, args.kernel, spec, args.gpu)
    models.write(args.out)
    if args.genrec_backend != "python":
        names = {s: f"{models.prefix}_{s}" for s in ("preprocess", "genrec", "postprocess", "ensemble")}
        (args.out / names["genrec"] / "1" / "model.py").unlink(missing_ok=True)
        (args.out / names["genrec"] / "config.pbtxt").write_text(
            exported_genrec_config(names["genrec"], args.genrec_backend, cfg, args.phase, spec, args.gpu)
        )
        k = widths(cfg, args.phase, spec.preselect)[0]
        (args.out / names["ensemble"] / "config.pbtxt").write_text(
            ensemble_config(
                names,
                spec,
                models.inputs,
                (Tensor("SCORES", "FP32", (k,)), Tensor("ITEMS", "INT64", (k,))),
                genrec_io=EXPORTED_IO,
            )
        )
        genrec = names["genrec"]
        print(
            f"put the exported graph at {args.out / genrec / '1'}/"
            f"{'model.onnx' if args.genrec_backend == 'onnxruntime' else 'model.plan'}"
        )
    print(f"wrote {len(models.configs)} models under {args.out}; entry model: {models.entry}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
