"""Every ONNX model of ewpolar: its model card and onnxruntime inference.

One card format (:data:`CARD_FORMAT`) describes all models the project makes:

- k-fold classifiers (``kind`` ``classifier``, ``training.k`` ≥ 2): one ``.onnx``
  file holding all k fold models. The graph takes ``features`` (float32 [N, d],
  raw inputs in the card's order) and ``event`` (int64 [N]) and returns
  ``probability`` (float32 [N], probability of the positive class); inside,
  event ``e`` is scored by fold model ``e % k``, the one that did not see it in
  training;
- single networks (no ``training.k``): the reweighting (``dctr``) and
  likelihood-ratio or score estimators (``carl``, ``alice``, ``alices``,
  ``sally``), applied to every event. The graph takes ``features`` only.

A card names the graph's outputs (``outputs``: name → description, e.g.
``probability``, ``log_ratio``, ``score``); a card without ``outputs`` or
``kind`` (the shipped ssWW classifiers) describes a k-fold classifier with the
single output ``probability``. Input standardisation lives inside the graph.

:func:`load_model` (any model) and :func:`load_classifier` (a k-fold classifier)
check the card against the file (sha256, inputs, outputs) and that onnxruntime
can load it; problems raise :class:`~ewpolar.core.errors.InputError` with one
line naming the model. Model objects carry the model's bytes (read and checked
once, where the model is loaded) and pickle with them, so workers on other
machines need no access to the file; each process builds its onnxruntime
session once, on first use, keyed by the model's sha256, and reuses it for
every chunk.

Example:
    >>> clf = load_classifier("models/ssww_sig_vs_bkg.onnx")  # doctest: +SKIP
    >>> clf.predict({"mjj": mjj, "dy_jj": dy_jj, ...}, event)  # doctest: +SKIP
    >>> sally = load_model("out/sally.onnx")  # doctest: +SKIP
    >>> sally.predict(features, output="score")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ewpolar.core.errors import InputError

__all__ = [
    "CARD_FORMAT",
    "CLASSIFIER_KIND",
    "CLASSIFIER_OUTPUTS",
    "EVENT_INPUT",
    "FEATURES_INPUT",
    "PROBABILITY_OUTPUT",
    "Classifier",
    "ModelCard",
    "OnnxModel",
    "check_sha256",
    "clear_session_cache",
    "load_classifier",
    "load_model",
    "read_model",
    "sha256_file",
    "shared_session",
]

log = logging.getLogger(__name__)

#: value of the card's ``format`` field (every model of the project)
CARD_FORMAT = "ewpolar-classifier-card/1"
FEATURES_INPUT = "features"
EVENT_INPUT = "event"
PROBABILITY_OUTPUT = "probability"
#: ``kind`` of the analysis' k-fold classifiers (the default of a card without one)
CLASSIFIER_KIND = "classifier"
#: ``outputs`` of a k-fold classifier (the default of a card without them)
CLASSIFIER_OUTPUTS = {PROBABILITY_OUTPUT: "float32 [N], probability of the positive class"}
DEFAULT_CHUNK_SIZE = 100_000

#: this process's onnxruntime sessions, shared by every model object of the same bytes
_SESSIONS: dict[tuple[Any, ...], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def shared_session(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """This process's session for ``key`` (model sha256 and settings), built once by ``build``.

    Model objects unpickled for every chunk (coffea sends the processor with each
    work item) find the session their first copy built; it is never pickled.
    """
    session = _SESSIONS.get(key)
    if session is None:
        with _SESSIONS_LOCK:
            session = _SESSIONS.get(key)
            if session is None:
                session = _SESSIONS[key] = build()
    return session


def check_sha256(blob: bytes, expected: str, name: str, path: str | Path) -> None:
    """Raise InputError (one line) unless the model bytes have the card's sha256."""
    sha = hashlib.sha256(blob).hexdigest()
    if sha != expected:
        raise InputError(
            f"model {name!r}: {path} does not match its model card "
            f"(sha256 {sha[:12]}… ≠ card {expected[:12]}…); re-export or restore the file"
        )


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """The JSON description written next to every ONNX model.

    Attributes:
        name: model name (the file stem).
        inputs: ordered input names, one per column of ``features``.
        sha256: hex sha256 of the ``.onnx`` file.
        training: training configuration (hyperparameters, seed, samples,
            labels definition, ...; ``k`` for a k-fold model).
        ewpolar_version: version that wrote the model.
        created: ISO 8601 UTC time of the export.
        kind: what the model is: ``classifier`` (a k-fold classifier of the
            analysis), or what a single network estimates (``dctr``, ``carl``,
            ``alice``, ``alices``, ``sally``).
        outputs: output name → description, in the graph's order.
        k: number of fold models; event ``e`` is scored by fold model ``e % k``.
            1 for a single network (its graph takes no event numbers).
        fold_auc: held-out weighted ROC AUC of each fold model (k-fold models).
        extra: any further fields of the card (e.g. a calibration), kept as read.
    """

    name: str
    inputs: tuple[str, ...]
    sha256: str
    training: Mapping[str, Any]
    ewpolar_version: str
    created: str
    kind: str = CLASSIFIER_KIND
    outputs: Mapping[str, str] = field(default_factory=lambda: dict(CLASSIFIER_OUTPUTS))
    k: int = 1
    fold_auc: tuple[float, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("format", "name", "inputs", "sha256", "training", "ewpolar_version", "created")

    def to_dict(self) -> dict[str, Any]:
        """The card as written to JSON."""
        data: dict[str, Any] = {
            "format": CARD_FORMAT,
            "name": self.name,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "outputs": dict(self.outputs),
            "sha256": self.sha256,
        }
        if self.k > 1:
            data["fold_auc"] = list(self.fold_auc)
            data["mean_auc"] = float(np.mean(self.fold_auc)) if self.fold_auc else None
        return {
            **data,
            "training": dict(self.training),
            "ewpolar_version": self.ewpolar_version,
            "created": self.created,
            **dict(self.extra),
        }

    def write(self, path: str | Path) -> Path:
        """Write the card as indented JSON (atomically) and return the path."""
        from ewpolar.core.outputs import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "model card") -> ModelCard:
        """Validate a parsed card.

        A card without ``kind`` and ``outputs`` is a k-fold classifier with the
        output ``probability``.

        Raises:
            InputError: a field is missing or has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: a model card must be a JSON object")
        missing = [key for key in cls._KEYS if key not in data]
        if missing:
            raise InputError(f"{source}: model card lacks {missing}")
        if data["format"] != CARD_FORMAT:
            raise InputError(f"{source}: unknown model card format {data['format']!r} "
                             f"(expected {CARD_FORMAT!r})")
        inputs = data["inputs"]
        if (not isinstance(inputs, list) or not inputs
                or not all(isinstance(x, str) for x in inputs)):
            raise InputError(f"{source}: 'inputs' must be a non-empty list of names")
        if len(set(inputs)) != len(inputs):
            raise InputError(f"{source}: 'inputs' lists a name twice")
        kind = data.get("kind", CLASSIFIER_KIND)
        if not isinstance(kind, str) or not kind:
            raise InputError(f"{source}: 'kind' must be a name")
        outputs = data.get("outputs", CLASSIFIER_OUTPUTS)
        if (not isinstance(outputs, Mapping) or not outputs
                or not all(isinstance(o, str) and o for o in outputs)):
            raise InputError(f"{source}: 'outputs' must be a non-empty mapping of output names")
        if {FEATURES_INPUT, EVENT_INPUT} & set(outputs):
            raise InputError(f"{source}: 'outputs' names a graph input")
        training = data["training"]
        if not isinstance(training, Mapping):
            raise InputError(f"{source}: 'training' must be a mapping")
        k = 1
        if "k" in training or kind == CLASSIFIER_KIND:
            k = training.get("k")
            if not isinstance(k, int) or isinstance(k, bool):
                raise InputError(f"{source}: 'training.k' (number of folds) must be an integer")
            if k < 2:
                raise InputError(f"{source}: 'training.k' must be at least 2")
        fold_auc = data.get("fold_auc", [])
        if k > 1 and "fold_auc" not in data:
            raise InputError(f"{source}: model card lacks ['fold_auc'] (one AUC per fold)")
        if not isinstance(fold_auc, list):
            raise InputError(f"{source}: 'fold_auc' must be a list of numbers")
        sha = data["sha256"]
        if not isinstance(sha, str) or len(sha) != 64:
            raise InputError(f"{source}: 'sha256' must be a 64-character hex digest")
        known = {*cls._KEYS, "kind", "outputs", "fold_auc", "mean_auc"}
        return cls(
            name=str(data["name"]),
            inputs=tuple(inputs),
            sha256=sha.lower(),
            training=dict(training),
            ewpolar_version=str(data["ewpolar_version"]),
            created=str(data["created"]),
            kind=kind,
            outputs={str(o): str(d) for o, d in outputs.items()},
            k=k,
            fold_auc=tuple(float(a) for a in fold_auc),
            extra={key: value for key, value in data.items() if key not in known},
        )

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and validate a card file.

        Raises:
            InputError: missing file, invalid JSON or invalid card.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: model card not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot read model card: {err}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: model card is not valid JSON: {err}") from None
        return cls.from_dict(data, source=str(path))


def _first_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_model(path: str | Path, name: str, sha256: str) -> bytes:
    """A model file's bytes, checked against its card's ``sha256`` (one-line InputError)."""
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"model {name!r}: file not found: {path}") from None
    except OSError as err:
        raise InputError(f"model {name!r}: cannot read {path}: {err.strerror or err}") from None
    check_sha256(blob, sha256, name, path)
    return blob


def _create_session(
    path: Path, card: ModelCard, intra_op_threads: int, inter_op_threads: int, blob: bytes,
) -> Any:
    """An onnxruntime session from the model's bytes, checked against the card.

    ``path`` names the model in messages only.
    """
    import onnxruntime as ort

    check_sha256(blob, card.sha256, card.name, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; failures reach us as exceptions
    try:
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises several unrelated types for bad files
        raise InputError(
            f"model {card.name!r}: onnxruntime cannot load {path}: {_first_line(err)}"
        ) from None
    _check_signature(session, path, card)
    return session


def _graph_inputs(card: ModelCard) -> list[str]:
    """The graph inputs the card promises: features, and event numbers for k-fold models."""
    return sorted([FEATURES_INPUT, EVENT_INPUT] if card.k > 1 else [FEATURES_INPUT])


def _check_signature(session: Any, path: Path, card: ModelCard) -> None:
    """The graph has the inputs and outputs its card describes."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    expected = _graph_inputs(card)
    if sorted(inputs) != expected or set(outputs) != set(card.outputs):
        raise InputError(
            f"model {card.name!r}: {path} has inputs {sorted(inputs)} and outputs {outputs}; "
            f"its card expects inputs {expected} and outputs {list(card.outputs)}"
        )
    shape = inputs[FEATURES_INPUT].shape
    n_columns = shape[1] if len(shape) == 2 else None
    if len(shape) != 2 or (isinstance(n_columns, int) and n_columns != len(card.inputs)):
        raise InputError(
            f"model {card.name!r}: the card lists {len(card.inputs)} inputs but the ONNX graph "
            f"takes features of shape {shape}"
        )


class OnnxModel:
    """An ONNX model with its model card, evaluated with onnxruntime.

    Create with :func:`load_model`. Picklable: the model's bytes, card, path
    (for messages) and thread settings travel, never a session; the onnxruntime
    session is created once per process on first use and shared by all objects
    of the same model (same sha256 and thread settings), so unpickling a
    processor for every chunk builds no new session.

    Attributes:
        path: the ``.onnx`` file.
        card: its model card.
    """

    def __init__(
        self,
        path: str | Path,
        card: ModelCard,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        blob: bytes | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.card = card
        # the model's bytes: read (and checked against the card) once, here
        if blob is None:
            self.blob = read_model(self.path, card.name, card.sha256)
        else:
            self.blob = bytes(blob)
            check_sha256(self.blob, card.sha256, card.name, self.path)
        self.intra_op_threads = int(intra_op_threads)
        self.inter_op_threads = int(inter_op_threads)

    @property
    def name(self) -> str:
        """Model name from the card."""
        return self.card.name

    @property
    def inputs(self) -> tuple[str, ...]:
        """Ordered input names."""
        return self.card.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output names."""
        return tuple(self.card.outputs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, kind={self.card.kind!r}, "
                f"inputs={len(self.inputs)}, k={self.card.k})")

    def __getstate__(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "card": self.card.to_dict(),
            "intra_op_threads": self.intra_op_threads,
            "inter_op_threads": self.inter_op_threads,
            "blob": self.blob,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.card = ModelCard.from_dict(state["card"], source=state["path"])
        self.intra_op_threads = state["intra_op_threads"]
        self.inter_op_threads = state["inter_op_threads"]
        self.blob = state["blob"]

    def session(self) -> Any:
        """This process's onnxruntime session for the model (created on first use).

        The bytes are checked against the card's sha256 before the session is built.
        """
        return shared_session(
            (self.card.sha256, self.intra_op_threads, self.inter_op_threads),
            lambda: _create_session(self.path, self.card, self.intra_op_threads,
                                    self.inter_op_threads, blob=self.blob))

    def _feature_matrix(self, features: Mapping[str, Any] | np.ndarray) -> np.ndarray:
        if isinstance(features, Mapping):
            supplied = set(features)
            wanted = set(self.inputs)
            if supplied != wanted:
                missing = [name for name in self.inputs if name not in supplied]
                extra = sorted(supplied - wanted)
                raise InputError(
                    f"model {self.name!r}: inputs do not match its card: "
                    f"missing {missing}, extra {extra}"
                )
            columns = [np.asarray(features[name], dtype=np.float32) for name in self.inputs]
            lengths = {name: col.shape for name, col in zip(self.inputs, columns, strict=True)}
            if any(len(shape) != 1 for shape in lengths.values()) or len(set(lengths.values())) > 1:
                raise InputError(
                    f"model {self.name!r}: input columns must be 1-dimensional and of equal "
                    f"length, got shapes {lengths}"
                )
            matrix = np.empty((columns[0].shape[0], len(columns)), dtype=np.float32)
            for j, column in enumerate(columns):
                matrix[:, j] = column
            return matrix
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.inputs):
            raise InputError(
                f"model {self.name!r}: features must have shape [N, {len(self.inputs)}] "
                f"({', '.join(self.inputs)}), got {matrix.shape}"
            )
        return matrix

    def _event_array(self, event: Any, n: int) -> np.ndarray | None:
        if self.card.k < 2:
            return None
        if event is None:
            raise InputError(f"model {self.name!r}: a {self.card.k}-fold model needs the event "
                             "numbers (they choose the fold model)")
        event = np.asarray(event)
        if event.ndim != 1 or event.shape[0] != n:
            raise InputError(
                f"model {self.name!r}: event numbers must be 1-dimensional with {n} entries, "
                f"got shape {event.shape}"
            )
        if event.dtype.kind == "u":
            # uint64 beyond 2**63 does not fit int64; the fold (event % k) is what matters
            return (event % np.uint64(self.card.k)).astype(np.int64)
        if event.dtype.kind != "i":
            raise InputError(
                f"model {self.name!r}: event numbers must be integers, got dtype {event.dtype}"
            )
        return event.astype(np.int64, copy=False)

    def evaluate(
        self,
        features: Mapping[str, Any] | np.ndarray,
        event: np.ndarray | None = None,
        *,
        outputs: Sequence[str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> dict[str, np.ndarray]:
        """The model's outputs for each event.

        Args:
            features: ``{input name: 1D array}`` with exactly the card's inputs,
                or a float array [N, d] with columns in the card's order.
            event: integer event numbers [N] (k-fold models: they choose the
                fold model; ignored by single networks).
            outputs: output names (default: all of the card's).
            chunk_size: events per onnxruntime call.

        Returns:
            ``{output name: float32 array [N]}``.

        Raises:
            InputError: the inputs do not match the card, shapes disagree, or
                an unknown output.
        """
        names = list(self.card.outputs) if outputs is None else list(outputs)
        unknown = [o for o in names if o not in self.card.outputs]
        if unknown:
            raise InputError(f"model {self.name!r}: no output {unknown[0]!r} "
                             f"(outputs: {', '.join(self.card.outputs)})")
        matrix = self._feature_matrix(features)
        n = matrix.shape[0]
        events = self._event_array(event, n)
        result = {o: np.empty(n, dtype=np.float32) for o in names}
        if n == 0:
            return result
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        session = self.session()
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            feed = {FEATURES_INPUT: matrix[start:stop]}
            if events is not None:
                feed[EVENT_INPUT] = events[start:stop]
            for name, values in zip(names, session.run(names, feed), strict=True):
                result[name][start:stop] = values
        return result

    def predict(
        self,
        features: Mapping[str, Any] | np.ndarray,
        event: np.ndarray | None = None,
        *,
        output: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> np.ndarray:
        """One output for each event (:meth:`evaluate` of one output).

        Args:
            features: as for :meth:`evaluate`.
            event: as for :meth:`evaluate`.
            output: the output (default: the card's first, ``probability`` for
                a classifier).
            chunk_size: events per onnxruntime call.

        Returns:
            float32 array [N].
        """
        name = next(iter(self.card.outputs)) if output is None else output
        return self.evaluate(features, event, outputs=[name], chunk_size=chunk_size)[name]


class Classifier(OnnxModel):
    """A k-fold classifier of the analysis: ``predict(features, event)`` is the
    probability of the positive class, event ``e`` scored by fold model ``e % k``.

    Create with :func:`load_classifier`, or from a card read beforehand.

    Raises:
        InputError: the card does not describe a k-fold classifier.
    """

    def __init__(self, path: str | Path, card: ModelCard, **kwargs: Any) -> None:
        _check_classifier(card, path)
        super().__init__(path, card, **kwargs)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        _check_classifier(self.card, self.path)

    def predict(  # type: ignore[override]
        self,
        features: Mapping[str, Any] | np.ndarray,
        event: np.ndarray,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> np.ndarray:
        """Probability of the positive class for each event.

        Args:
            features: ``{input name: 1D array}`` with exactly the card's inputs,
                or a float array [N, d] with columns in the card's order.
            event: integer event numbers [N] (choose the fold model).
            chunk_size: events per onnxruntime call.

        Returns:
            float32 array [N].

        Raises:
            InputError: the inputs do not match the card, or shapes disagree.
        """
        return super().predict(features, event, output=PROBABILITY_OUTPUT, chunk_size=chunk_size)


def _check_classifier(card: ModelCard, path: str | Path) -> None:
    if card.kind != CLASSIFIER_KIND or card.k < 2 or list(card.outputs) != [PROBABILITY_OUTPUT]:
        raise InputError(
            f"model {card.name!r}: {path} is not a k-fold classifier (kind {card.kind!r}, "
            f"k = {card.k}, outputs {list(card.outputs)})"
        )


def _read_card(onnx_path: Path, card_path: str | Path | None) -> ModelCard:
    if not onnx_path.is_file():
        raise InputError(f"{onnx_path}: model file not found")
    return ModelCard.read(onnx_path.with_suffix(".json") if card_path is None else card_path)


def load_model(
    onnx_path: str | Path,
    card_path: str | Path | None = None,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> OnnxModel:
    """Load any ONNX model of the project and its card, checking that they belong together.

    Args:
        onnx_path: the ``.onnx`` file.
        card_path: its model card (default: the same path with ``.json``).
        intra_op_threads: onnxruntime threads inside an operator.
        inter_op_threads: onnxruntime threads across operators.

    Returns:
        The model (a :class:`Classifier` for a k-fold classifier), with this
        process's session already created.

    Raises:
        InputError: a missing file, a card that does not match the file
            (sha256, inputs or outputs), or a file onnxruntime cannot load.
    """
    onnx_path = Path(onnx_path)
    card = _read_card(onnx_path, card_path)
    cls = Classifier if card.kind == CLASSIFIER_KIND else OnnxModel
    model = cls(onnx_path, card, intra_op_threads=intra_op_threads,
                inter_op_threads=inter_op_threads)
    model.session()
    return model


def load_classifier(
    onnx_path: str | Path,
    card_path: str | Path | None = None,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> Classifier:
    """Load a k-fold classifier and its card (:func:`load_model` for classifiers only).

    Raises:
        InputError: as :func:`load_model`, or the model is not a k-fold classifier.
    """
    onnx_path = Path(onnx_path)
    card = _read_card(onnx_path, card_path)
    classifier = Classifier(
        onnx_path, card, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads
    )
    classifier.session()
    return classifier


def clear_session_cache() -> None:
    """Forget this process's onnxruntime sessions (e.g. after replacing model files)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()
