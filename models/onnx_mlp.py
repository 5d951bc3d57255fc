"""Single-network ONNX models (no folds): export from torch and onnxruntime inference.

The classifiers of :mod:`ewpolar.models.runtime` are k-fold ensembles routed by the
event number. The reweighting (:mod:`ewpolar.models.reweighting`) and likelihood-ratio
estimators (:mod:`ewpolar.models.sbi`) are single networks applied to every event, so
they get this simpler contract:

    input  : features float32 [N, d]  (raw inputs in the card's order;
                                      standardisation is inside the graph)
    outputs: one or more float32 [N]  (named in the card, e.g. ``probability``,
                                      ``log_ratio``, ``score``)

The graph is written node by node with the helpers of
:mod:`ewpolar.models.training.export` (``torch.onnx.export`` needs ``onnxscript``, which
is not a dependency). Every network is an :class:`ewpolar.models.training.mlp.MLP` (its
logit ``g(x)``); an output applies one transformation to it:

=============  ====================================================================
``identity``   g(x) (a regression output, e.g. a score)
``sigmoid``    1 / (1 + exp(−g(x))) (the probability of label 1)
``negate``     −g(x) (e.g. log r = log p0/p1 of a classifier trained with label 1 = p1)
=============  ====================================================================

An *anchored* network (e.g. :class:`ewpolar.models.sbi.AnchoredMLP`: a module with
attributes ``network``, the MLP, and ``anchor_reference``) subtracts its value at
a reference parameter: g(x, θ) − g(x, θ_ref), with θ the last input column. The
graph then evaluates the network twice, on the features and on the features
with the last column set to θ_ref.

Next to ``name.onnx`` a JSON card ``name.json`` (format :data:`CARD_FORMAT`)
records the ordered inputs, the outputs, the sha256 of the ONNX file and what
the network was trained for; :func:`load_onnx_model` checks them against each
other.

Example:
    >>> model = load_onnx_model("out/sally.onnx")  # doctest: +SKIP
    >>> model.predict(features)["score"]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ewpolar
import numpy as np
from ewpolar.core.errors import InputError
from ewpolar.models.runtime import check_sha256, read_model, shared_session

if TYPE_CHECKING:
    import onnx

__all__ = [
    "CARD_FORMAT",
    "FEATURES_INPUT",
    "OUTPUT_TRANSFORMS",
    "MLPCard",
    "OnnxModel",
    "build_mlp_graph",
    "export_mlp",
    "load_onnx_model",
    "torch_outputs",
]

log = logging.getLogger(__name__)

#: value of the card's ``format`` field
CARD_FORMAT = "ewpolar-mlp-card/1"
FEATURES_INPUT = "features"
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
    """What the exported graph computes, evaluated with torch (eval mode, no gradients)."""
    import torch

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
        A checked ``onnx.ModelProto`` (opset of :mod:`ewpolar.models.training.export`).
    """
    import onnx

    # the node-by-node MLP translation of the k-fold exporter, used for one network
    from ewpolar.models.training.export import _IR_VERSION, OPSET, _fold_network, _GraphBuilder
    from onnx import TensorProto, helper

    if not outputs:
        raise ValueError("need at least one output")
    for out_name, kind in outputs.items():
        if kind not in OUTPUT_TRANSFORMS:
            raise ValueError(f"output {out_name!r}: unknown transform {kind!r}; "
                             f"choose from {sorted(OUTPUT_TRANSFORMS)}")
        if out_name == FEATURES_INPUT:
            raise ValueError(f"output name {out_name!r} is the input's name")
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


@dataclass(frozen=True)
class MLPCard:
    """The JSON card written next to a single-network ONNX model.

    Attributes:
        name: model name (the file stem).
        kind: what the network estimates (``dctr``, ``carl``, ``alice``, ``alices``, ``sally``).
        inputs: ordered input names, one per column of ``features``.
        outputs: output name → description.
        sha256: hex sha256 of the ``.onnx`` file.
        training: training configuration and facts.
        ewpolar_version: version that wrote the model.
        created: ISO 8601 UTC time of the export.
        extra: further fields (e.g. a calibration), kept as read.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]
    sha256: str
    training: Mapping[str, Any] = field(default_factory=dict)
    ewpolar_version: str = ""
    created: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("format", "name", "kind", "inputs", "outputs", "sha256")

    def to_dict(self) -> dict[str, Any]:
        """The card as written to JSON."""
        return {"format": CARD_FORMAT, "name": self.name, "kind": self.kind,
                "inputs": list(self.inputs), "outputs": dict(self.outputs), "sha256": self.sha256,
                "training": dict(self.training), "ewpolar_version": self.ewpolar_version,
                "created": self.created, **dict(self.extra)}

    def write(self, path: str | Path) -> Path:
        """Write the card as indented JSON (atomically) and return the path."""
        from ewpolar.core.outputs import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> MLPCard:
        """Read and validate a card.

        Raises:
            InputError: missing or unreadable file, invalid JSON, or a missing field.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: model card not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot read model card: {err}") from None
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: model card is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: a model card must be a JSON object")
        missing = [k for k in cls._KEYS if k not in data]
        if missing:
            raise InputError(f"{path}: model card lacks {missing}")
        if data["format"] != CARD_FORMAT:
            raise InputError(f"{path}: unknown model card format {data['format']!r} "
                             f"(expected {CARD_FORMAT!r})")
        inputs, outputs = data["inputs"], data["outputs"]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            raise InputError(f"{path}: 'inputs' must be a non-empty list of names")
        if not isinstance(outputs, dict) or not outputs:
            raise InputError(f"{path}: 'outputs' must be a non-empty mapping")
        known = {*cls._KEYS, "training", "ewpolar_version", "created"}
        return cls(name=str(data["name"]), kind=str(data["kind"]), inputs=tuple(inputs),
                   outputs=dict(outputs), sha256=str(data["sha256"]).lower(),
                   training=dict(data.get("training") or {}),
                   ewpolar_version=str(data.get("ewpolar_version", "")),
                   created=str(data.get("created", "")),
                   extra={k: v for k, v in data.items() if k not in known})


def _session(blob: bytes, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def export_mlp(model: Any, path: str | Path, *, inputs: Sequence[str], outputs: Mapping[str, str],
               kind: str, training: Mapping[str, Any] | None = None,
               extra: Mapping[str, Any] | None = None, name: str | None = None,
               reference_features: np.ndarray | None = None, atol: float = 1e-5) -> MLPCard:
    """Write ``path`` (.onnx) and its card ``path.with_suffix('.json')``.

    The graph is checked against torch on ``reference_features`` (default: 4096
    draws around the network's input means); outputs must agree to ``atol``.

    Raises:
        ewpolar.models.training.export.ExportError: ONNX and torch disagree beyond ``atol``.
        ValueError: ``inputs`` does not match the network.
    """
    import torch
    from ewpolar.models.training.export import ExportError

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"model file must end in .onnx, got {path}")
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
    card = MLPCard(
        name=name or path.stem, kind=kind, inputs=tuple(inputs),
        outputs={o: f"float32 [N], {OUTPUT_TRANSFORMS[k]}" for o, k in outputs.items()},
        sha256=hashlib.sha256(blob).hexdigest(),
        training={**dict(training or {}), "architecture": dict(model.architecture)},
        ewpolar_version=ewpolar.__version__,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        extra={**dict(extra or {}), "onnx": {"file": path.name, "max_abs_diff_vs_torch": diff},
               "torch_version": torch.__version__},
    )
    json.dumps(card.to_dict())  # fail on a non-JSON description before writing anything
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
    card.write(path.with_suffix(".json"))
    log.info("wrote %s and its card", path)
    return card


class OnnxModel:
    """A single-network ONNX model with its card, evaluated with onnxruntime.

    Create with :func:`load_onnx_model`. The model's bytes are read and checked
    against the card's sha256 once, here; they pickle with the object, so a
    worker elsewhere (a coffea processor with a DCTR weight, say) needs no access
    to the file. Each process builds one session per model, on first use, and
    shares it between all objects of that model, so unpickling a processor for
    every chunk builds no new session.

    Attributes:
        path: the ``.onnx`` file.
        card: its :class:`MLPCard`.
    """

    def __init__(self, path: str | Path, card: MLPCard, *, threads: int = 1,
                 blob: bytes | None = None) -> None:
        self.path = Path(path)
        self.card = card
        self.threads = int(threads)
        if blob is None:
            self.blob = read_model(self.path, card.name, card.sha256)
        else:
            self.blob = bytes(blob)
            check_sha256(self.blob, card.sha256, card.name, self.path)

    def __repr__(self) -> str:
        return f"OnnxModel({self.card.name!r}, kind={self.card.kind!r}, inputs={len(self.inputs)})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "card": self.card, "threads": self.threads,
                "blob": self.blob}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.card = state["card"]
        self.threads = int(state["threads"])
        self.blob = state["blob"]

    @property
    def inputs(self) -> tuple[str, ...]:
        """Ordered input names."""
        return self.card.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output names."""
        return tuple(self.card.outputs)

    def session(self) -> Any:
        """This process's onnxruntime session of the model (built on first use).

        The bytes are checked against the card's sha256 before the session is built.
        """
        return shared_session(("mlp", self.card.sha256, self.threads), self._build_session)

    def _build_session(self) -> Any:
        check_sha256(self.blob, self.card.sha256, self.card.name, self.path)
        try:
            session = _session(self.blob, self.threads)
        except Exception as err:  # onnxruntime raises several unrelated types
            text = " ".join(str(err).split())[:200]
            raise InputError(f"model {self.card.name!r}: onnxruntime cannot load "
                             f"{self.path}: {text}") from None
        names = [o.name for o in session.get_outputs()]
        if set(names) != set(self.card.outputs):
            raise InputError(f"model {self.card.name!r}: the graph has outputs {names}, "
                             f"the card lists {list(self.card.outputs)}")
        return session

    def _matrix(self, features: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        if isinstance(features, Mapping):
            missing = [n for n in self.inputs if n not in features]
            if missing:
                raise InputError(f"model {self.card.name!r}: missing inputs {missing}")
            return np.ascontiguousarray(
                np.column_stack([np.asarray(features[n], dtype=np.float32) for n in self.inputs]))
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.inputs):
            raise InputError(f"model {self.card.name!r}: features must have shape "
                             f"[N, {len(self.inputs)}] ({', '.join(self.inputs)}), got {matrix.shape}")
        return matrix

    def predict(self, features: Mapping[str, Any] | np.ndarray, output: str | None = None, *,
                chunk_size: int = 100_000) -> dict[str, np.ndarray] | np.ndarray:
        """Evaluate the model.

        Args:
            features: ``{input name: 1D array}`` with (at least) the card's inputs,
                or a float array [N, d] in the card's order.
            output: return only this output (an array) instead of all (a dict).
            chunk_size: events per onnxruntime call.

        Raises:
            InputError: the inputs do not match the card, or an unknown output.
        """
        if output is not None and output not in self.card.outputs:
            raise InputError(f"model {self.card.name!r}: no output {output!r} "
                             f"(outputs: {', '.join(self.card.outputs)})")
        matrix = self._matrix(features)
        names = [output] if output is not None else list(self.card.outputs)
        result = {n: np.empty(matrix.shape[0], dtype=np.float32) for n in names}
        if matrix.shape[0]:
            session = self.session()
            for start in range(0, matrix.shape[0], chunk_size):
                stop = start + chunk_size
                for n, values in zip(names, session.run(names, {FEATURES_INPUT: matrix[start:stop]}),
                                     strict=True):
                    result[n][start:stop] = values
        return result[output] if output is not None else result


def load_onnx_model(path: str | Path, card_path: str | Path | None = None, *,
                    threads: int = 1) -> OnnxModel:
    """Load a single-network ONNX model and its card (default: ``path`` with ``.json``).

    Raises:
        InputError: missing file, a card that does not match the file, or a file
            onnxruntime cannot load.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    card = MLPCard.read(path.with_suffix(".json") if card_path is None else card_path)
    model = OnnxModel(path, card, threads=threads)
    model.session()
    return model
