"""Export the k fold models of a classifier as one ONNX file with its model card.

Graph (opset 17, built node by node with ``onnx.helper`` from the torch weights):

    inputs : features float32 [N, d] (raw, in the card's input order)
             event    int64   [N]
    fold    = Mod(event, k)                      (fold of each event, in [0, k))
    for each fold f:
        rows_f  = NonZero(fold == f)              [1, M_f] row numbers of fold f
        x_f     = Gather(features, rows_f[0])     [M_f, d]
        logit_f = MLP_f((x_f − mean_f) / scale_f) [M_f]   (standardisation in the graph)
        logit   = ScatterND(logit, rows_fᵀ, logit_f)
    output : probability = Sigmoid(logit)  float32 [N]

Each event therefore goes through exactly one fold network, the one that did not
see it in training, rather than through all k and a selection afterwards: k
times fewer operations per event. The export is checked against
:class:`FoldEnsemble`, a torch module that runs all k networks and picks
``event % k`` with ``gather``; the two must agree to ``atol`` or
:class:`ExportError` is raised.

Why not ``torch.onnx.export``: its default (dynamo) exporter needs
``onnxscript``, which the ``train`` extra does not carry, and the TorchScript
exporter is deprecated; the MLP is simple enough to write as ONNX directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ewpolar
import numpy as np
import onnx
import torch
from ewpolar.models.runtime import (
    EVENT_INPUT,
    FEATURES_INPUT,
    PROBABILITY_OUTPUT,
    ModelCard,
)
from ewpolar.models.training.crossval import CrossValidationResult
from ewpolar.models.training.mlp import ACTIVATIONS, MLP, MLPConfig
from onnx import TensorProto, helper, numpy_helper
from torch import nn

__all__ = [
    "OPSET",
    "ExportError",
    "FoldEnsemble",
    "build_onnx_model",
    "export_classifier",
    "export_cross_validation",
    "verify_export",
]

log = logging.getLogger(__name__)

OPSET = 17
_IR_VERSION = 8  # readable by onnxruntime ≥ 1.14


class ExportError(RuntimeError):
    """The exported graph does not reproduce the torch models."""


class FoldEnsemble(nn.Module):
    """Torch reference of the exported graph: event ``e`` scored by ``models[e % k]``.

    Args:
        models: fold models; ``models[f]`` scores the events with ``event % k == f``.
    """

    def __init__(self, models: Sequence[MLP]) -> None:
        super().__init__()
        self.folds = nn.ModuleList(models)
        self.k = len(models)

    def forward(self, features: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
        """Probability of the positive class, shape [N]."""
        logits = torch.stack([model(features) for model in self.folds], dim=1)
        fold = torch.remainder(event, self.k).unsqueeze(1)
        return torch.sigmoid(torch.gather(logits, 1, fold).squeeze(1))

    def predict_proba(self, features: np.ndarray, event: np.ndarray) -> np.ndarray:
        """NumPy convenience around :meth:`forward` (eval mode, no gradients).

        Unsigned event numbers are reduced modulo k first (torch has no uint64).
        """
        event = np.asarray(event)
        if event.dtype.kind == "u":
            event = event % np.uint64(self.k)
        self.eval()
        with torch.no_grad():
            x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32))
            e = torch.as_tensor(event.astype(np.int64))
            return self(x, e).numpy()


class _GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def activation(self, name: str, x: str, out: str) -> str:
        if name == "relu":
            return self.node("Relu", [x], out)
        if name == "tanh":
            return self.node("Tanh", [x], out)
        if name == "elu":
            return self.node("Elu", [x], out, alpha=1.0)
        if name == "leaky_relu":
            return self.node("LeakyRelu", [x], out, alpha=0.01)
        if name == "silu":
            sig = self.node("Sigmoid", [x], f"{out}_sigmoid")
            return self.node("Mul", [x, sig], out)
        if name == "gelu":  # exact GELU: x · ½ (1 + erf(x / √2)); opset 17 has no Gelu op
            scaled = self.node("Mul", [x, self.const(f"{out}_inv_sqrt2",
                                                     np.float32(1 / math.sqrt(2)))], f"{out}_s")
            erf = self.node("Erf", [scaled], f"{out}_erf")
            one_plus = self.node("Add", [erf, self.const(f"{out}_one", np.float32(1))],
                                 f"{out}_1p")
            half = self.node("Mul", [one_plus, self.const(f"{out}_half", np.float32(0.5))],
                             f"{out}_h")
            return self.node("Mul", [x, half], out)
        raise ValueError(f"no ONNX translation for activation {name!r}")


def _as_float32(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _fold_network(builder: _GraphBuilder, model: MLP, fold: int, x: str) -> str:
    """Nodes of one fold's MLP on rows ``x`` [M, d]; returns the name of its logits [M]."""
    p = f"fold{fold}"
    mean = builder.const(f"{p}_input_mean", _as_float32(model.input_mean))
    scale = builder.const(f"{p}_input_scale", _as_float32(model.input_scale))
    h = builder.node("Sub", [x, mean], f"{p}_centred")
    h = builder.node("Div", [h, scale], f"{p}_standardised")
    activation = model.architecture["activation"]
    layer = 0
    for module in model.network:
        if isinstance(module, nn.Linear):
            w = builder.const(f"{p}_dense{layer}_weight", _as_float32(module.weight))
            b = builder.const(f"{p}_dense{layer}_bias", _as_float32(module.bias))
            h = builder.node("Gemm", [h, w, b], f"{p}_dense{layer}", transB=1)
            layer += 1
        elif isinstance(module, nn.Dropout):
            continue  # identity at inference
        elif isinstance(module, tuple(ACTIVATIONS.values())):
            h = builder.activation(activation, h, f"{p}_act{layer - 1}")
        else:
            raise ValueError(f"no ONNX translation for layer {type(module).__name__}")
    return builder.node("Squeeze", [h, "axis1"], f"{p}_logit")


def build_onnx_model(models: Sequence[MLP], *, opset: int = OPSET) -> onnx.ModelProto:
    """ONNX model routing each event to fold model ``event % k`` (see the module docs).

    Args:
        models: the k fold models; ``models[f]`` scores events with ``event % k == f``.
        opset: ONNX opset (≥ 17).

    Returns:
        A checked ``onnx.ModelProto``.
    """
    k = len(models)
    if k < 2:
        raise ValueError(f"need at least 2 fold models, got {k}")
    if opset < 17:
        raise ValueError(f"opset must be at least 17, got {opset}")
    n_inputs = models[0].n_inputs
    if any(m.n_inputs != n_inputs for m in models):
        raise ValueError("fold models disagree on the number of inputs")
    g = _GraphBuilder()
    g.const("axis0", np.array([0], dtype=np.int64))
    g.const("axis1", np.array([1], dtype=np.int64))
    fold = g.node("Mod", [EVENT_INPUT, g.const("k", np.array(k, dtype=np.int64))], "fold")
    logit = g.node("ConstantOfShape", [g.node("Shape", [EVENT_INPUT], "n_events")], "logit_init",
                   value=numpy_helper.from_array(np.zeros(1, dtype=np.float32)))
    for f, model in enumerate(models):
        in_fold = g.node("Equal", [fold, g.const(f"fold{f}_id", np.array(f, dtype=np.int64))],
                         f"fold{f}_mask")
        rows = g.node("NonZero", [in_fold], f"fold{f}_nonzero")
        row_list = g.node("Squeeze", [rows, "axis0"], f"fold{f}_row_list")
        x = g.node("Gather", [FEATURES_INPUT, row_list], f"fold{f}_features", axis=0)
        fold_logit = _fold_network(g, model, f, x)
        rows = g.node("Transpose", [rows], f"fold{f}_rows", perm=[1, 0])
        logit = g.node("ScatterND", [logit, rows, fold_logit], f"logit_after_fold{f}")
    g.node("Sigmoid", [logit], PROBABILITY_OUTPUT)
    graph = helper.make_graph(
        g.nodes,
        "ewpolar_kfold_classifier",
        [
            helper.make_tensor_value_info(FEATURES_INPUT, TensorProto.FLOAT, ["N", n_inputs]),
            helper.make_tensor_value_info(EVENT_INPUT, TensorProto.INT64, ["N"]),
        ],
        [helper.make_tensor_value_info(PROBABILITY_OUTPUT, TensorProto.FLOAT, ["N"])],
        g.initializers,
    )
    model_proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="ewpolar",
        producer_version=ewpolar.__version__,
    )
    model_proto.ir_version = _IR_VERSION
    model_proto.doc_string = (
        f"{k}-fold MLP classifier: event e is scored by fold model e % {k}; "
        "output: probability of the positive class"
    )
    onnx.checker.check_model(model_proto, full_check=True)
    return model_proto


def _reference_inputs(
    models: Sequence[MLP], reference_features: np.ndarray | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for the export check: given rows, or draws around the training means."""
    rng = np.random.default_rng(seed)
    if reference_features is not None:
        x = np.ascontiguousarray(reference_features[:20_000], dtype=np.float32)
    else:
        mean = models[0].input_mean.numpy()
        scale = models[0].input_scale.numpy()
        x = (mean + scale * rng.normal(size=(4096, mean.size))).astype(np.float32)
    event = rng.integers(0, 2**62, size=x.shape[0], dtype=np.int64)
    n_first = min(len(models), x.shape[0])
    event[:n_first] = np.arange(n_first)  # every fold appears
    return x, event


def verify_export(
    onnx_bytes: bytes,
    models: Sequence[MLP],
    features: np.ndarray,
    event: np.ndarray,
    *,
    atol: float = 1e-5,
) -> float:
    """Largest |onnxruntime − torch| probability difference; raises beyond ``atol``.

    Raises:
        ExportError: the difference exceeds ``atol``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    (onnx_prob,) = session.run(
        [PROBABILITY_OUTPUT], {FEATURES_INPUT: features, EVENT_INPUT: event}
    )
    torch_prob = FoldEnsemble(models).predict_proba(features, event)
    diff = float(np.max(np.abs(onnx_prob - torch_prob))) if features.shape[0] else 0.0
    if not diff <= atol:
        raise ExportError(
            f"ONNX and torch probabilities differ by up to {diff:.3g} (> {atol:g})"
        )
    return diff


def export_classifier(
    models: Sequence[MLP],
    path: str | Path,
    *,
    inputs: Sequence[str],
    fold_auc: Sequence[float],
    config: MLPConfig | Mapping[str, Any],
    samples: Mapping[str, Any] | Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    training_extra: Mapping[str, Any] | None = None,
    name: str | None = None,
    reference_features: np.ndarray | None = None,
    atol: float = 1e-5,
    opset: int = OPSET,
) -> ModelCard:
    """Write ``path`` (.onnx) with all fold models and its card ``path.with_suffix('.json')``.

    Args:
        models: ``models[f]`` scores the events with ``event % k == f``, k = len(models).
        path: output ``.onnx`` file.
        inputs: ordered input names (the columns of ``features``).
        fold_auc: held-out AUC of each fold model.
        config: training settings (an :class:`MLPConfig` or its dict); its
            ``seed`` is recorded as the training seed.
        samples: dataset names used in training, e.g. ``{"1": [...], "0": [...]}``.
        labels: what the labels mean, e.g. ``{"1": "W_L W_L", "0": "W_T W_X"}``.
        training_extra: further training facts for the card (event counts ...).
        name: classifier name (default: the file stem).
        reference_features: rows to check the export on (default: random
            draws around the first fold's input means).
        atol: largest allowed |ONNX − torch| probability difference.
        opset: ONNX opset.

    Returns:
        The model card that was written.

    Raises:
        ExportError: the ONNX graph does not reproduce the torch models.
    """
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"classifier file must end in .onnx, got {path}")
    models = list(models)
    k = len(models)
    if len(inputs) != models[0].n_inputs:
        raise ValueError(f"{len(inputs)} input names for models with {models[0].n_inputs} inputs")
    if len(fold_auc) != k:
        raise ValueError(f"{len(fold_auc)} fold AUCs for {k} fold models")
    hyper = config.to_dict() if isinstance(config, MLPConfig) else dict(config)
    model_proto = build_onnx_model(models, opset=opset)
    blob = model_proto.SerializeToString()
    x, event = _reference_inputs(models, reference_features, seed=int(hyper.get("seed", 0)))
    diff = verify_export(blob, models, x, event, atol=atol)
    log.info("ONNX export agrees with torch to %.2g on %d events", diff, x.shape[0])

    training = {
        "hyperparameters": hyper,
        "seed": hyper.get("seed"),
        "k": k,
        "fold_rule": "event % k == f is scored by fold model f, trained on the other folds",
        "fold_seed_rule": "fold model f was trained with seed + f",
        "samples": samples if isinstance(samples, Mapping) else list(samples),
        "labels": dict(labels or {"1": "positive class", "0": "negative class"}),
        **dict(training_extra or {}),
    }
    card = ModelCard(
        name=name or path.stem,
        inputs=tuple(inputs),
        sha256=hashlib.sha256(blob).hexdigest(),
        k=k,
        fold_auc=tuple(float(a) for a in fold_auc),
        training=training,
        ewpolar_version=ewpolar.__version__,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        extra={
            "onnx": {
                "file": path.name,
                "opset": opset,
                "inputs": {FEATURES_INPUT: f"float32 [N, {len(inputs)}]",
                           EVENT_INPUT: "int64 [N]"},
                "output": {PROBABILITY_OUTPUT: "float32 [N], probability of label 1"},
                "max_abs_diff_vs_torch": diff,
            },
            "torch_version": torch.__version__,
        },
    )
    json.dumps(card.to_dict())  # fail on a non-JSON training description before writing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    card.write(path.with_suffix(".json"))
    log.info("wrote %s and its model card", path)
    return card


def export_cross_validation(
    cv: CrossValidationResult,
    path: str | Path,
    **kwargs: Any,
) -> ModelCard:
    """:func:`export_classifier` for a complete cross-validation (all k folds).

    Keyword arguments are passed on (``samples``, ``labels``, ``name`` ...).
    """
    if not cv.complete:
        raise ValueError(
            f"only folds {list(cv.folds)} of {cv.k} were trained; export needs all of them"
        )
    return export_classifier(
        cv.models, path, inputs=cv.inputs, fold_auc=cv.fold_auc, config=cv.config, **kwargs
    )
