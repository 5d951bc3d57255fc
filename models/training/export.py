"""Export trained networks as ONNX files with their model cards.

Every model is written node by node with ``onnx.helper`` from the torch weights
(opset 17) and checked against torch before anything is written; the card
(:class:`ewpolar.models.runtime.ModelCard`) goes next to it.

k-fold classifiers (:func:`export_classifier`): all k fold models in one graph,

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

Single networks (:func:`export_mlp`): the reweighting (:mod:`ewpolar.models.reweighting`)
and likelihood-ratio or score estimators (:mod:`ewpolar.models.sbi`), applied to
every event:

    input  : features float32 [N, d]
    outputs: one or more float32 [N], named in the card

Every network is an :class:`ewpolar.models.training.mlp.MLP` (its logit ``g(x)``);
an output applies one transformation to it (:data:`OUTPUT_TRANSFORMS`):

=============  ====================================================================
``identity``   g(x) (a regression output, e.g. a score)
``sigmoid``    1 / (1 + exp(−g(x))) (the probability of label 1)
``negate``     −g(x) (e.g. log r = log p0/p1 of a classifier trained with label 1 = p1)
=============  ====================================================================

An *anchored* network (e.g. :class:`ewpolar.models.sbi.estimators.AnchoredMLP`: a
module with attributes ``network``, the MLP, and ``anchor_reference``) subtracts
its value at a reference parameter: g(x, θ) − g(x, θ_ref), with θ the last input
column. The graph then evaluates the network twice, on the features and on the
features with the last column set to θ_ref.

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
    CLASSIFIER_KIND,
    CLASSIFIER_OUTPUTS,
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
    "OUTPUT_TRANSFORMS",
    "ExportError",
    "FoldEnsemble",
    "build_mlp_graph",
    "build_onnx_model",
    "export_classifier",
    "export_cross_validation",
    "export_mlp",
    "torch_outputs",
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
        training=training,
        ewpolar_version=ewpolar.__version__,
        created=_now(),
        kind=CLASSIFIER_KIND,
        outputs=dict(CLASSIFIER_OUTPUTS),
        k=k,
        fold_auc=tuple(float(a) for a in fold_auc),
        extra={
            "onnx": {
                "file": path.name,
                "opset": opset,
                "inputs": {FEATURES_INPUT: f"float32 [N, {len(inputs)}]",
                           EVENT_INPUT: "int64 [N]"},
                "max_abs_diff_vs_torch": diff,
            },
            "torch_version": torch.__version__,
        },
    )
    _write(path, blob, card)
    return card


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write(path: Path, blob: bytes, card: ModelCard) -> None:
    """``path`` (the graph's bytes) and its card next to it, each replaced atomically."""
    json.dumps(card.to_dict())  # fail on a non-JSON training description before writing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    card.write(path.with_suffix(".json"))
    log.info("wrote %s and its model card", path)


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


# --------------------------------------------------------------------------- single networks

#: output transformation name → what it computes from the network output g(x)
OUTPUT_TRANSFORMS = {
    "identity": "g(x)",
    "sigmoid": "1 / (1 + exp(-g(x)))",
    "negate": "-g(x)",
}


def _anchor(model: Any) -> float | None:
    """θ_ref of an anchored network (attribute ``anchor_reference``), None for a plain MLP."""
    ref = getattr(model, "anchor_reference", None)
    return None if ref is None else float(ref)


def torch_outputs(model: Any, features: np.ndarray, outputs: Mapping[str, str],
                  batch_size: int = 65536) -> dict[str, np.ndarray]:
    """What the graph of :func:`build_mlp_graph` computes, evaluated with torch
    (eval mode, no gradients)."""
    x = torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32))
    raw = np.empty(x.shape[0], dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                raw[start:start + batch_size] = model(x[start:start + batch_size]).numpy()
    finally:
        model.train(was_training)
    return {name: _transform(raw, kind) for name, kind in outputs.items()}


def _transform(raw: np.ndarray, kind: str) -> np.ndarray:
    if kind == "identity":
        return raw
    if kind == "negate":
        return -raw
    if kind == "sigmoid":
        return (1.0 / (1.0 + np.exp(-raw.astype(np.float64)))).astype(np.float32)
    raise ValueError(f"unknown output transform {kind!r}; choose from {sorted(OUTPUT_TRANSFORMS)}")


def build_mlp_graph(model: Any, outputs: Mapping[str, str], *, name: str = "ewpolar_mlp",
                    doc: str = "") -> onnx.ModelProto:
    """ONNX model of one MLP (or an anchored network) with the given outputs.

    Args:
        model: an :class:`~ewpolar.models.training.mlp.MLP` or an anchored network.
        outputs: output name → transform (:data:`OUTPUT_TRANSFORMS`).
        name: graph name.
        doc: the model's doc string.

    Returns:
        A checked ``onnx.ModelProto`` (opset :data:`OPSET`).
    """
    if not outputs:
        raise ValueError("need at least one output")
    for out_name, kind in outputs.items():
        if kind not in OUTPUT_TRANSFORMS:
            raise ValueError(f"output {out_name!r}: unknown transform {kind!r}; "
                             f"choose from {sorted(OUTPUT_TRANSFORMS)}")
        if out_name in (FEATURES_INPUT, EVENT_INPUT):
            raise ValueError(f"output name {out_name!r} is a graph input's name")
    reference = _anchor(model)
    network = model.network if reference is not None else model
    n_inputs = network.n_inputs
    g = _GraphBuilder()
    g.const("axis1", np.array([1], dtype=np.int64))
    logit = _fold_network(g, network, 0, FEATURES_INPUT)
    if reference is not None:
        # features with the parameter column set to the reference: x · mask + ref · (1 − mask)
        mask = np.ones(n_inputs, dtype=np.float32)
        mask[-1] = 0.0
        offset = np.zeros(n_inputs, dtype=np.float32)
        offset[-1] = reference
        masked = g.node("Mul", [FEATURES_INPUT, g.const("reference_mask", mask)], "masked")
        at_ref = g.node("Add", [masked, g.const("reference_offset", offset)], "features_at_ref")
        logit_ref = _fold_network(g, network, 1, at_ref)  # the same weights, stored again
        logit = g.node("Sub", [logit, logit_ref], "anchored_logit")
    for out_name, kind in outputs.items():
        if kind == "identity":
            g.node("Identity", [logit], out_name)
        elif kind == "negate":
            g.node("Neg", [logit], out_name)
        else:
            g.node("Sigmoid", [logit], out_name)
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info(FEATURES_INPUT, TensorProto.FLOAT, ["N", n_inputs])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N"]) for o in outputs],
        g.initializers,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ewpolar", producer_version=ewpolar.__version__)
    proto.ir_version = _IR_VERSION
    proto.doc_string = doc or "single MLP; outputs: " + ", ".join(
        f"{o} = {OUTPUT_TRANSFORMS[k]}" for o, k in outputs.items())
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _session(blob: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def export_mlp(model: Any, path: str | Path, *, inputs: Sequence[str], outputs: Mapping[str, str],
               kind: str, training: Mapping[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None, name: str | None = None,
               reference_features: np.ndarray | None = None, atol: float = 1e-5) -> ModelCard:
    """Write one network as ``path`` (.onnx) and its card ``path.with_suffix('.json')``.

    Args:
        model: an :class:`~ewpolar.models.training.mlp.MLP` or an anchored network.
        path: output ``.onnx`` file.
        inputs: ordered input names (the columns of ``features``).
        outputs: output name → transform (:data:`OUTPUT_TRANSFORMS`).
        kind: what the network estimates (``dctr``, ``carl``, ``alice``, ``alices``,
            ``sally``), the card's ``kind``.
        training: training configuration and facts for the card.
        extra: further card fields (e.g. a calibration).
        name: model name (default: the file stem).
        reference_features: rows to check the export on (default: 4096 draws
            around the network's input means).
        atol: largest allowed |ONNX − torch| difference of any output.

    Returns:
        The model card that was written.

    Raises:
        ExportError: ONNX and torch disagree beyond ``atol``.
        ValueError: ``inputs`` does not match the network, or ``kind`` is that
            of the k-fold classifiers.
    """
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"model file must end in .onnx, got {path}")
    if kind == CLASSIFIER_KIND:
        raise ValueError(f"kind {kind!r} is that of the k-fold classifiers (export_classifier)")
    network = model.network if _anchor(model) is not None else model
    if len(inputs) != network.n_inputs:
        raise ValueError(f"{len(inputs)} input names for a network with {network.n_inputs} inputs")
    proto = build_mlp_graph(model, outputs, name=f"ewpolar_{kind}")
    blob = proto.SerializeToString()
    if reference_features is None:
        rng = np.random.default_rng(0)
        mean = network.input_mean.numpy()
        scale = network.input_scale.numpy()
        reference_features = mean + scale * rng.normal(size=(4096, mean.size))
    x = np.ascontiguousarray(reference_features[:20_000], dtype=np.float32)
    got = _session(blob).run(list(outputs), {FEATURES_INPUT: x})
    want = torch_outputs(model, x, outputs)
    diff = max((float(np.max(np.abs(a - want[o]))) if x.shape[0] else 0.0)
               for o, a in zip(outputs, got, strict=True))
    if not diff <= atol:
        raise ExportError(f"ONNX and torch outputs differ by up to {diff:.3g} (> {atol:g})")
    log.info("ONNX export of %s agrees with torch to %.2g on %d events", path.name, diff, x.shape[0])
    card = ModelCard(
        name=name or path.stem,
        inputs=tuple(inputs),
        sha256=hashlib.sha256(blob).hexdigest(),
        training={**dict(training or {}), "architecture": dict(model.architecture)},
        ewpolar_version=ewpolar.__version__,
        created=_now(),
        kind=kind,
        outputs={o: f"float32 [N], {OUTPUT_TRANSFORMS[k]}" for o, k in outputs.items()},
        extra={**dict(extra or {}),
               "onnx": {"file": path.name, "opset": OPSET,
                        "inputs": {FEATURES_INPUT: f"float32 [N, {len(inputs)}]"},
                        "max_abs_diff_vs_torch": diff},
               "torch_version": torch.__version__},
    )
    _write(path, blob, card)
    return card
