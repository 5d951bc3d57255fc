"""ONNX classifier inference with onnxruntime.

Each classifier is one ``.onnx`` file holding all k fold models, with a model
card (JSON) beside it. The graph takes ``features`` (float32 [N, d], raw inputs
in the card's order) and ``event`` (int64 [N]) and returns ``probability``
(float32 [N], probability of the positive class); inside, event ``e`` is scored
by fold model ``e % k``, the one that did not see it in training.

:func:`load_classifier` checks the card against the file (sha256, number of
inputs) and that onnxruntime can load it; problems raise
:class:`~ewpolar.core.errors.InputError` with one line naming the model.
:class:`Classifier` objects carry the model's bytes (read and checked once, where
the classifier is loaded) and pickle with them, so workers on other machines need
no access to the file; each process builds its onnxruntime session once, on first
use, keyed by the model's sha256, and reuses it for every chunk.

Example:
    >>> clf = load_classifier("models/ssww_vs_bkg.onnx")  # doctest: +SKIP
    >>> clf.predict({"mjj": mjj, "dyjj": dyjj}, event)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ewpolar.core.errors import InputError

__all__ = [
    "CARD_FORMAT",
    "Classifier",
    "ModelCard",
    "check_sha256",
    "clear_session_cache",
    "load_classifier",
    "read_model",
    "sha256_file",
    "shared_session",
]

log = logging.getLogger(__name__)

#: value of the card's ``format`` field
CARD_FORMAT = "ewpolar-classifier-card/1"
FEATURES_INPUT = "features"
EVENT_INPUT = "event"
PROBABILITY_OUTPUT = "probability"
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
    """The JSON description written next to each classifier.

    Attributes:
        name: classifier name (the file stem).
        inputs: ordered input names, one per column of ``features``.
        sha256: hex sha256 of the ``.onnx`` file.
        k: number of folds; event ``e`` is scored by fold model ``e % k``.
        fold_auc: held-out weighted ROC AUC of each fold model.
        training: training configuration (hyperparameters, seed, k, samples,
            labels definition, ...).
        ewpolar_version: version that wrote the model.
        created: ISO 8601 UTC time of the export.
        extra: any further fields of the card, kept as read.
    """

    name: str
    inputs: tuple[str, ...]
    sha256: str
    k: int
    fold_auc: tuple[float, ...]
    training: Mapping[str, Any]
    ewpolar_version: str
    created: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    _KEYS = ("format", "name", "inputs", "sha256", "fold_auc", "training",
             "ewpolar_version", "created")

    def to_dict(self) -> dict[str, Any]:
        """The card as written to JSON."""
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "inputs": list(self.inputs),
            "sha256": self.sha256,
            "fold_auc": list(self.fold_auc),
            "mean_auc": float(np.mean(self.fold_auc)) if self.fold_auc else None,
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

        Raises:
            InputError: a field is missing or has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: a model card must be a JSON object")
        missing = [key for key in cls._KEYS if key not in data]
        if missing:
            raise InputError(f"{source}: model card lacks {missing}")
        if data["format"] != CARD_FORMAT:
            raise InputError(f"{source}: unknown model card format {data['format']!r}")
        inputs = data["inputs"]
        if (not isinstance(inputs, list) or not inputs
                or not all(isinstance(x, str) for x in inputs)):
            raise InputError(f"{source}: 'inputs' must be a non-empty list of names")
        if len(set(inputs)) != len(inputs):
            raise InputError(f"{source}: 'inputs' lists a name twice")
        training = data["training"]
        if not isinstance(training, Mapping) or not isinstance(training.get("k"), int):
            raise InputError(f"{source}: 'training.k' (number of folds) must be an integer")
        if training["k"] < 2:
            raise InputError(f"{source}: 'training.k' must be at least 2")
        sha = data["sha256"]
        if not isinstance(sha, str) or len(sha) != 64:
            raise InputError(f"{source}: 'sha256' must be a 64-character hex digest")
        known = {*cls._KEYS, "mean_auc"}
        return cls(
            name=str(data["name"]),
            inputs=tuple(inputs),
            sha256=sha.lower(),
            k=int(training["k"]),
            fold_auc=tuple(float(a) for a in data["fold_auc"]),
            training=dict(training),
            ewpolar_version=str(data["ewpolar_version"]),
            created=str(data["created"]),
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
    """An onnxruntime session from the model's bytes, checked against the card's sha256.

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


def _check_signature(session: Any, path: Path, card: ModelCard) -> None:
    """The graph has the inputs and output of the classifier contract."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    if set(inputs) != {FEATURES_INPUT, EVENT_INPUT} or outputs != [PROBABILITY_OUTPUT]:
        raise InputError(
            f"model {card.name!r}: {path} has inputs {sorted(inputs)} and outputs {outputs}; "
            f"expected inputs ['{EVENT_INPUT}', '{FEATURES_INPUT}'] and output "
            f"['{PROBABILITY_OUTPUT}']"
        )
    shape = inputs[FEATURES_INPUT].shape
    n_columns = shape[1] if len(shape) == 2 else None
    if len(shape) != 2 or (isinstance(n_columns, int) and n_columns != len(card.inputs)):
        raise InputError(
            f"model {card.name!r}: the card lists {len(card.inputs)} inputs but the ONNX graph "
            f"takes features of shape {shape}"
        )


class Classifier:
    """An ONNX classifier with its model card, ready to score events.

    Create with :func:`load_classifier`. Picklable: the model's bytes, card,
    path (for messages) and thread settings travel, never a session; the
    onnxruntime session is created once per process on first use and shared by
    all objects of the same model (same sha256 and thread settings).

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
        self.blob = read_model(self.path, card.name, card.sha256) if blob is None else bytes(blob)
        self.intra_op_threads = int(intra_op_threads)
        self.inter_op_threads = int(inter_op_threads)

    @property
    def name(self) -> str:
        """Classifier name from the card."""
        return self.card.name

    @property
    def inputs(self) -> tuple[str, ...]:
        """Ordered input names."""
        return self.card.inputs

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, inputs={len(self.inputs)}, k={self.card.k})"

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
        """This process's onnxruntime session for the model (created on first use)."""
        return shared_session(
            ("classifier", self.card.sha256, self.intra_op_threads, self.inter_op_threads),
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

    def _event_array(self, event: Any, n: int) -> np.ndarray:
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

    def predict(
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
        matrix = self._feature_matrix(features)
        n = matrix.shape[0]
        events = self._event_array(event, n)
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        session = self.session()
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            (prob,) = session.run(
                [PROBABILITY_OUTPUT],
                {FEATURES_INPUT: matrix[start:stop], EVENT_INPUT: events[start:stop]},
            )
            out[start:stop] = prob
        return out


def load_classifier(
    onnx_path: str | Path,
    card_path: str | Path | None = None,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> Classifier:
    """Load a classifier and its card, checking that they belong together.

    Args:
        onnx_path: the ``.onnx`` file.
        card_path: its model card (default: the same path with ``.json``).
        intra_op_threads: onnxruntime threads inside an operator.
        inter_op_threads: onnxruntime threads across operators.

    Returns:
        The classifier, with this process's session already created.

    Raises:
        InputError: a missing file, a card that does not match the file
            (sha256 or number of inputs), or a file onnxruntime cannot load.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise InputError(f"{onnx_path}: model file not found")
    card = ModelCard.read(onnx_path.with_suffix(".json") if card_path is None else card_path)
    classifier = Classifier(
        onnx_path, card, intra_op_threads=intra_op_threads, inter_op_threads=inter_op_threads
    )
    classifier.session()
    return classifier


def clear_session_cache() -> None:
    """Forget this process's onnxruntime sessions (e.g. after replacing model files)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()
