"""Training set container, its parquet file and the k-fold assignment by event number.

A training set holds one row per event: the classifier inputs (float32), the
label (1 = positive class), the event weight and the event number. The event
number decides the fold: fold ``f`` holds the events with ``event % k == f``;
model ``f`` is trained on the other folds and, at inference, scores exactly the
events of fold ``f``, so no event is ever scored by a model that saw it.

Example:
    >>> import numpy as np
    >>> kfold_index(np.array([0, 1, 7, 10], dtype=np.uint64), 5).tolist()
    [0, 1, 2, 0]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ewpolar.core.errors import InputError

__all__ = ["RESERVED_COLUMNS", "TrainingSet", "kfold_index"]

#: parquet columns that carry the label, weight and event number (not inputs)
RESERVED_COLUMNS = ("label", "weight", "event")
_META_KEY = b"ewpolar.training_set"


def kfold_index(event: np.ndarray, k: int) -> np.ndarray:
    """Fold of each event: ``event % k``.

    Args:
        event: integer event numbers (uint64 as in NanoAOD, or any integer type;
            negative numbers fold like Python's ``%``, as the ONNX ``Mod`` does).
        k: number of folds, at least 2.

    Returns:
        int64 array of folds in ``[0, k)``.
    """
    if int(k) < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    event = np.asarray(event)
    if event.dtype.kind not in "iu":
        raise TypeError(f"event numbers must be integers, got dtype {event.dtype}")
    if event.dtype.kind == "u":
        return (event % np.uint64(k)).astype(np.int64)
    return (event.astype(np.int64) % np.int64(k)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Events for training one binary classifier.

    Attributes:
        features: float32 array [n, d], column ``j`` is input ``inputs[j]``.
        labels: int8 array [n] of 0/1; 1 is the positive class (the classifier
            outputs its probability).
        weights: float64 array [n] of event weights (cross section × luminosity
            normalised, may be negative for NLO samples).
        event: uint64 array [n] of event numbers (fold assignment).
        inputs: ordered input names, one per feature column.
        metadata: free-form description kept with the file, e.g. ``samples``
            (dataset names per label) and ``labels`` (what 0 and 1 mean).
    """

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    event: np.ndarray
    inputs: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        features = np.ascontiguousarray(self.features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"features must be 2-dimensional [n, d], got shape {features.shape}")
        n, d = features.shape
        inputs = tuple(str(name) for name in self.inputs)
        if len(inputs) != d:
            raise ValueError(f"{d} feature columns but {len(inputs)} input names")
        if len(set(inputs)) != len(inputs):
            dupes = sorted({name for name in inputs if inputs.count(name) > 1})
            raise ValueError(f"duplicate input names: {dupes}")
        labels = np.asarray(self.labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        weights = np.asarray(self.weights, dtype=np.float64)
        if weights.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
        if not np.isfinite(weights).all():
            raise ValueError("weights contain NaN or infinity")
        event = np.asarray(self.event)
        if event.shape != (n,):
            raise ValueError(f"event numbers must have shape ({n},), got {event.shape}")
        if event.dtype.kind not in "iu":
            raise TypeError(f"event numbers must be integers, got dtype {event.dtype}")
        if event.dtype.kind == "i" and (event < 0).any():
            raise ValueError("event numbers must be non-negative")
        bad = ~np.isfinite(features).all(axis=0)
        if bad.any():
            raise ValueError(f"inputs with NaN or infinity: {[inputs[j] for j in np.flatnonzero(bad)]}")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", labels.astype(np.int8))
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "event", event.astype(np.uint64))
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_inputs(self) -> int:
        """Number of input columns."""
        return len(self.inputs)

    def folds(self, k: int) -> np.ndarray:
        """Fold of each event, ``event % k`` (see :func:`kfold_index`)."""
        return kfold_index(self.event, k)

    def subset(self, rows: np.ndarray | slice) -> TrainingSet:
        """The events selected by a boolean mask, index array or slice."""
        return TrainingSet(
            self.features[rows],
            self.labels[rows],
            self.weights[rows],
            self.event[rows],
            self.inputs,
            self.metadata,
        )

    def select_inputs(self, names: Sequence[str]) -> TrainingSet:
        """The same events with only the named inputs, in the given order."""
        missing = [name for name in names if name not in self.inputs]
        if missing:
            raise ValueError(f"unknown inputs {missing}; the training set has {list(self.inputs)}")
        columns = [self.inputs.index(name) for name in names]
        return TrainingSet(
            self.features[:, columns],
            self.labels,
            self.weights,
            self.event,
            tuple(names),
            self.metadata,
        )

    def write_parquet(self, path: str | Path) -> Path:
        """Write the training set to a parquet file.

        One float32 column per input (named by the input), plus ``label``
        (int8), ``weight`` (float64) and ``event`` (uint64). The input order and
        the metadata are kept in the file's schema metadata.

        Returns:
            The path written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        clash = sorted(set(self.inputs) & set(RESERVED_COLUMNS))
        if clash:
            raise ValueError(f"input names {clash} clash with the reserved columns {RESERVED_COLUMNS}")
        path = Path(path)
        arrays = [pa.array(self.features[:, j]) for j in range(self.n_inputs)]
        arrays += [pa.array(self.labels), pa.array(self.weights), pa.array(self.event)]
        meta = {"inputs": list(self.inputs), "metadata": self.metadata}
        schema_meta = {_META_KEY: json.dumps(meta, sort_keys=True).encode()}
        table = pa.Table.from_arrays(arrays, names=[*self.inputs, *RESERVED_COLUMNS])
        table = table.replace_schema_metadata(schema_meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def read_parquet(cls, path: str | Path, inputs: Sequence[str] | None = None) -> TrainingSet:
        """Read a training set written by :meth:`write_parquet`.

        Files written by other tools work too when they have the ``label``,
        ``weight`` and ``event`` columns; the inputs are then the other columns
        in file order.

        Args:
            path: parquet file.
            inputs: read only these inputs, in this order (default: all).

        Raises:
            InputError: the file is missing, unreadable or lacks a column.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: training set file not found")
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(f"{path}: cannot read parquet file: {first}") from None
        raw_meta = (table.schema.metadata or {}).get(_META_KEY)
        meta = json.loads(raw_meta) if raw_meta else {}
        names = table.column_names
        missing = [c for c in RESERVED_COLUMNS if c not in names]
        if missing:
            raise InputError(f"{path}: training set lacks the column(s) {missing}")
        stored = meta.get("inputs") or [c for c in names if c not in RESERVED_COLUMNS]
        wanted = list(inputs) if inputs is not None else list(stored)
        absent = [c for c in wanted if c not in names]
        if absent:
            raise InputError(f"{path}: training set lacks the input(s) {absent}")
        if wanted:
            features = np.column_stack(
                [table.column(c).to_numpy().astype(np.float32, copy=False) for c in wanted]
            )
        else:
            features = np.empty((table.num_rows, 0), dtype=np.float32)
        return cls(
            features,
            table.column("label").to_numpy(),
            table.column("weight").to_numpy(),
            table.column("event").to_numpy(),
            tuple(wanted),
            meta.get("metadata", {}),
        )
