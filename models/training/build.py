"""Training events of the ssWW classifiers, selected from a fileset with the project's runner.

:class:`InputCollector` is a coffea processor built on
:class:`ewpolar.processors.ssww.SSWWProcessor`: the same object selection, region cuts
(``selections``) and observables (its ``feature_functions``), so the inputs a
classifier is trained on are computed by the very code that computes them at
inference. Per chunk it keeps the events that pass any of the chosen regions
and returns their inputs, event weight, event number and dataset.

Which events: by default the config's ``signal`` region, where the templates
are fitted. For more training statistics, pass several config regions
(``regions=["signal", "low_mjj_cr"]``): an event is kept when it passes any of
them. Loosening means naming a looser region of the config, never a second copy
of the cuts.

The event weight is the analysis weight ``genWeight × xsec_fb × luminosity_fb /
sumw`` (fileset metadata, as in the processor). Per-event corrections and
systematic variations (e.g. the placeholder ssWW K-factors) are not applied.

:class:`TrainingEvents` holds the result and is written to one parquet file:
one float32 column per input, ``dataset`` (string), ``weight`` (float64),
``event`` (uint64) and one ``label_<classifier>`` (int8) column per classifier
of :data:`ewpolar.models.training.inputs.SSWW_CLASSIFIERS`: 1, 0, or −1 where the
classifier does not use the event. :meth:`TrainingEvents.training_set` gives
the :class:`~ewpolar.models.training.data.TrainingSet` of one classifier.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.core.naming import NOMINAL
from ewpolar.models.features import FeatureContext
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.inputs import SSWW_CLASSIFIERS, SSWW_INPUTS
from ewpolar.processors.ssww import SSWWProcessor
from ewpolar.selections.objects import build_objects
from ewpolar.selections.regions import region_cuts, region_selection
from ewpolar.selections.variables import EventVariables

__all__ = [
    "DEFAULT_REGIONS",
    "InputCollector",
    "TrainingEvents",
    "build_training_events",
]

log = logging.getLogger(__name__)

#: region(s) the training events are taken from unless told otherwise
DEFAULT_REGIONS = ("signal",)
_META_KEY = b"ewpolar.training_events"
_BASE_COLUMNS = ("dataset", "weight", "event")
#: fileset metadata kept with the training events (where the events came from)
_PROVENANCE = ("process", "xsec_fb", "sumw", "n_events", "seed")


class InputCollector(SSWWProcessor):
    """coffea processor returning the classifier inputs of the selected events.

    Args:
        config: the ssWW analysis config.
        regions: config regions; an event passing any of them is kept.
        inputs: observables to collect, in column order (names of
            :meth:`SSWWProcessor.feature_functions`).

    Output of ``process`` (adds up under ``coffea.processor.accumulate``)::

        {"chunks": [{"dataset", "file", "entrystart", "kind", "polarization",
                     "features" [n, d] float32, "weight" [n], "event" [n]}],
         "entries": {dataset: events read}, "notes": {"<dataset>: <note>", ...}}
    """

    def __init__(self, config: AnalysisConfig, regions: Sequence[str] = DEFAULT_REGIONS,
                 inputs: Sequence[str] = SSWW_INPUTS) -> None:
        # weights: generator weight and normalisation only; no histograms, no classifiers
        bare = config.model_copy(update={"systematics": {}, "models": {}, "templates": {},
                                         "histograms": {}})
        super().__init__(bare, regions=list(regions))
        known = self.feature_functions()
        unknown = [name for name in inputs if name not in known]
        if unknown:
            raise ConfigError(f"inputs {unknown} are not observables of SSWWProcessor "
                              f"(known: {', '.join(sorted(known))})")
        self.inputs = tuple(inputs)

    def process(self, events: ak.Array) -> dict[str, Any]:
        meta = dict(events.metadata or {})
        dataset = str(meta.get("dataset", "unknown"))
        notes: set[str] = set()
        sample = self._sample_info(dataset, meta, notes)
        out: dict[str, Any] = {"chunks": [], "entries": {dataset: len(events)}, "notes": set()}
        if sample.is_data:
            out["notes"] = {f"{dataset}: data have no label; not used for training"}
            return out
        variables = EventVariables(build_objects(events, self.config.objects, NOMINAL, notes))
        weights, _ = self._weights(events, sample, variables, notes)
        keep = np.zeros(len(events), dtype=bool)
        for name in self.regions:
            region = self.config.regions[name]
            keep |= region_selection(variables, region).all(*region_cuts(region))
        ctx = FeatureContext(events, variables, self.config.regions[self.regions[0]], notes)
        functions = self.feature_functions()
        features = np.empty((int(keep.sum()), len(self.inputs)), dtype=np.float32)
        for j, name in enumerate(self.inputs):
            column = np.asarray(functions[name](ctx), dtype=np.float64)
            if column.ndim != 1:
                raise ConfigError(f"input '{name}' has {column.shape[1]} values per event; "
                                  "a classifier input needs one")
            features[:, j] = column[keep]
        weight = weights.weight()[keep]
        event = np.asarray(ak.to_numpy(events.event), dtype=np.uint64)[keep]
        finite = np.isfinite(features).all(axis=1)
        if not finite.all():
            notes.add(f"{int((~finite).sum())} selected event(s) with an undefined input dropped")
            features, weight, event = features[finite], weight[finite], event[finite]
        out["chunks"].append({
            "dataset": dataset,
            "file": str(meta.get("filename", "")),
            "entrystart": int(meta.get("entrystart", 0) or 0),
            "kind": sample.kind,
            "polarization": sample.polarization,
            "features": features,
            "weight": weight,
            "event": event,
        })
        out["notes"] = {f"{dataset}: {n}" for n in notes}
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


@dataclass(frozen=True, eq=False)
class TrainingEvents:
    """Selected events with the inputs and labels of every ssWW classifier.

    Attributes:
        features: float32 [n, d]; column ``j`` is input ``inputs[j]``.
        inputs: ordered input names.
        weights: float64 [n] analysis event weights.
        event: uint64 [n] event numbers (fold assignment).
        dataset: [n] dataset name of each event.
        labels: ``{classifier: int8 [n]}``: 1, 0, or −1 (event not used).
        metadata: what was selected from where: ``regions``, ``datasets``
            (kind, polarization, entries read, events kept, their summed
            weight, and the fileset metadata process, xsec_fb, sumw,
            n_events, seed), ``config``, ``notes``.
    """

    features: np.ndarray
    inputs: tuple[str, ...]
    weights: np.ndarray
    event: np.ndarray
    dataset: np.ndarray
    labels: Mapping[str, np.ndarray]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        features = np.ascontiguousarray(self.features, dtype=np.float32).reshape(
            -1, len(self.inputs))
        n = features.shape[0]
        for name, arr in (("weights", self.weights), ("event", self.event),
                          ("dataset", self.dataset), *self.labels.items()):
            if np.shape(arr) != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {np.shape(arr)}")
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "weights", np.asarray(self.weights, dtype=np.float64))
        object.__setattr__(self, "event", np.asarray(self.event, dtype=np.uint64))
        object.__setattr__(self, "dataset", np.asarray(self.dataset, dtype=str))
        object.__setattr__(self, "labels", {k: np.asarray(v, dtype=np.int8)
                                            for k, v in self.labels.items()})
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def classifiers(self) -> tuple[str, ...]:
        """Classifiers with a label column."""
        return tuple(self.labels)

    def training_set(self, classifier: str) -> TrainingSet:
        """The events, labels and weights of one classifier.

        Raises:
            InputError: unknown classifier, or a class without events.
        """
        if classifier not in self.labels:
            raise InputError(f"unknown classifier '{classifier}' "
                             f"(training events have labels for: {', '.join(self.labels)})")
        labels = self.labels[classifier]
        rows = labels >= 0
        target = SSWW_CLASSIFIERS.get(classifier)
        meaning = target.describe() if target else {"1": "positive class", "0": "negative class"}
        samples: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for cls in ("1", "0"):
            in_class = rows & (labels == int(cls))
            counts[cls] = int(in_class.sum())
            samples[cls] = sorted(set(self.dataset[in_class].tolist()))
            if counts[cls] == 0:
                raise InputError(f"{classifier}: no selected event of label {cls} "
                                 f"({meaning[cls]}); check the fileset's datasets and the region")
        per_dataset = {str(d): int(c) for d, c in
                       zip(*np.unique(self.dataset[rows], return_counts=True), strict=True)}
        metadata = {
            "classifier": classifier,
            "labels": meaning,
            "samples": samples,
            "events": counts,
            "events_per_dataset": per_dataset,
            "regions": list(self.metadata.get("regions", [])),
        }
        return TrainingSet(self.features[rows], labels[rows], self.weights[rows],
                           self.event[rows], self.inputs, metadata)

    def write_parquet(self, path: str | Path) -> Path:
        """Write the events to one parquet file (atomically) and return the path."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        label_cols = [f"label_{name}" for name in self.labels]
        clash = sorted(set(self.inputs) & {*_BASE_COLUMNS, *label_cols})
        if clash:
            raise ValueError(f"input names {clash} clash with the other columns")
        arrays = [pa.array(self.features[:, j]) for j in range(len(self.inputs))]
        arrays += [pa.array(self.dataset.tolist()).dictionary_encode(),
                   pa.array(self.weights), pa.array(self.event)]
        arrays += [pa.array(v) for v in self.labels.values()]
        table = pa.Table.from_arrays(arrays, names=[*self.inputs, *_BASE_COLUMNS, *label_cols])
        meta = {"inputs": list(self.inputs), "classifiers": list(self.labels),
                "metadata": self.metadata}
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True)})
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        return path

    @staticmethod
    def is_training_events_file(path: str | Path) -> bool:
        """True when ``path`` is a parquet file written by :meth:`write_parquet`."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException):
            return False
        return _META_KEY in (schema.metadata or {})

    @classmethod
    def read_parquet(cls, path: str | Path) -> TrainingEvents:
        """Read a file written by :meth:`write_parquet`.

        Raises:
            InputError: missing or unreadable file, or not a training-events file.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: training events file not found")
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise InputError(f"{path}: cannot read parquet file: {first}") from None
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise InputError(f"{path}: not a training events file (written by "
                             "'ewpolar train --fileset'); a single classifier's training set "
                             "has a 'label' column instead")
        meta = json.loads(raw)
        inputs = list(meta["inputs"])
        missing = [c for c in (*inputs, *_BASE_COLUMNS) if c not in table.column_names]
        if missing:
            raise InputError(f"{path}: training events lack the column(s) {missing}")
        if inputs:
            features = np.column_stack([table.column(c).to_numpy().astype(np.float32, copy=False)
                                        for c in inputs])
        else:
            features = np.empty((table.num_rows, 0), dtype=np.float32)
        labels = {name: table.column(f"label_{name}").to_numpy()
                  for name in meta["classifiers"] if f"label_{name}" in table.column_names}
        return cls(
            features=features,
            inputs=tuple(inputs),
            weights=table.column("weight").to_numpy(),
            event=table.column("event").to_numpy(),
            dataset=np.asarray(table.column("dataset").to_pylist(), dtype=str),
            labels=labels,
            metadata=meta.get("metadata", {}),
        )


def _label_columns(chunks: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    labels = {}
    for name, target in SSWW_CLASSIFIERS.items():
        parts = []
        for chunk in chunks:
            label = target.label(chunk["kind"], chunk["polarization"])
            parts.append(np.full(len(chunk["event"]), -1 if label is None else label, np.int8))
        labels[name] = np.concatenate(parts) if parts else np.zeros(0, np.int8)
    return labels


def build_training_events(
    config: AnalysisConfig,
    fileset: Mapping[str, Any],
    *,
    regions: Sequence[str] | None = None,
    inputs: Sequence[str] = SSWW_INPUTS,
    executor: str = "iterative",
    workers: int = 1,
    chunksize: int = 100_000,
    progress: bool = False,
) -> TrainingEvents:
    """Select the training events of a fileset with :func:`ewpolar.runner.run.run_processor`.

    Args:
        config: the ssWW analysis config (objects, regions, luminosity).
        fileset: coffea fileset with metadata (see :func:`ewpolar.runner.run.load_fileset`).
        regions: config regions to take events from (default :data:`DEFAULT_REGIONS`);
            an event passing any of them is kept.
        inputs: observables to collect, in column order.
        executor: an executor of :data:`ewpolar.runner.run.EXECUTORS` (e.g.
            ``"iterative"`` or ``"futures"``).
        workers: processes of the futures executor (workers of a local dask cluster).
        chunksize: entries per chunk.
        progress: show coffea's progress bars.

    Returns:
        The selected events, ordered by dataset, file and entry (whatever the executor).

    Raises:
        ConfigError: not an ssWW config, or an unknown region or input.
        InputError: an unknown executor, an unreadable file, or no event in the fileset.
    """
    from ewpolar.runner.run import run_processor

    if config.channel != "ssww":
        raise ConfigError(f"{config.source or 'config'}: channel: the classifier training "
                          f"events need an 'ssww' config, got '{config.channel}'")
    chosen = list(regions) if regions else list(DEFAULT_REGIONS)
    collector = InputCollector(config, chosen, inputs)
    output = run_processor(collector, dict(fileset), executor=executor, workers=workers,
                           chunksize=chunksize, progress=progress, config=config).output
    chunks = sorted(output.get("chunks", []),
                    key=lambda c: (c["dataset"], c["file"], c["entrystart"]))
    n_inputs = len(collector.inputs)
    if chunks:
        features = np.concatenate([c["features"] for c in chunks]).reshape(-1, n_inputs)
        weight = np.concatenate([c["weight"] for c in chunks])
        event = np.concatenate([c["event"] for c in chunks])
        dataset = np.concatenate([np.full(len(c["event"]), c["dataset"]) for c in chunks])
    else:
        features = np.zeros((0, n_inputs), np.float32)
        weight, event, dataset = np.zeros(0), np.zeros(0, np.uint64), np.zeros(0, str)
    datasets: dict[str, dict[str, Any]] = {}
    for name, entries in sorted(output.get("entries", {}).items()):
        mine = [c for c in chunks if c["dataset"] == name]
        first = mine[0] if mine else {}
        datasets[name] = {
            "kind": first.get("kind"),
            "polarization": first.get("polarization"),
            "entries": int(entries),
            "selected": int(sum(len(c["event"]) for c in mine)),
            "sum_weight": float(sum(c["weight"].sum() for c in mine)),
            "metadata": {key: value for key, value in fileset[name].get("metadata", {}).items()
                         if key in _PROVENANCE},
        }
    notes = sorted(output.get("notes", set()))
    for note in notes:
        log.info("%s", note)
    metadata = {
        "regions": chosen,
        "datasets": datasets,
        "config": Path(config.source).name if config.source else None,
        "luminosity_fb": config.luminosity_fb,
        "weight": "genWeight × xsec_fb × luminosity_fb / sumw",
        "notes": notes,
    }
    events = TrainingEvents(features, collector.inputs, weight, event, dataset,
                            _label_columns(chunks), metadata)
    log.info("training events: %d selected in region(s) %s from %d dataset(s)",
             len(events), ", ".join(chosen), len(datasets))
    return events
