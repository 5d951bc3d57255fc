"""Assemble NanoAOD-schema branches from the generated and reconstructed events.

Branches (float32 unless stated):

- ``run`` (uint32, 1), ``luminosityBlock`` (uint32), ``event`` (uint64);
- ``genWeight``; WH channel only: ``CPWeight_sm``, ``CPWeight_int``, ``CPWeight_quad``
  (see :mod:`ewpolar.generator.wh`);
- ``LHEScaleWeight`` (9) and ``LHEPdfWeight`` (31) with their counters
  (see :mod:`ewpolar.generator.theory`);
- ``GenPart``: pt, eta, phi, mass, pdgId, genPartIdxMother, status, statusFlags
  (int32); the slot layout of each process is in its module docstring;
- ``GenJet``: pt, eta, phi, mass, hadronFlavour, partonFlavour (int32);
- ``Electron``: pt, eta, phi, mass, charge, pdgId, cutBased, pfRelIso03_all,
  genPartIdx, jetIdx, photonIdx; ``Muon``: pt, eta, phi, mass, charge, pdgId,
  tightId (bool), pfRelIso04_all, genPartIdx, jetIdx, fsrPhotonIdx;
- ``Jet``: pt, eta, phi, mass, btagDeepFlavB, jetId, hadronFlavour, genJetIdx,
  electronIdx1/2, muonIdx1/2, pt_jesTotalUp/Down, mass_jesTotalUp/Down;
- ``MET_pt``, ``MET_phi``, ``MET_sumEt``, ``MET_pt_jesTotalUp/Down``,
  ``MET_phi_jesTotalUp/Down``;
- empty placeholder collections (Photon, LowPtElectron, FatJet, SubJet,
  GenJetAK8, FsrPhoton, Tau, GenVisTau): coffea's ``NanoAODSchema`` warns about
  every cross-reference index it cannot resolve, so the files carry all of them.

Jagged collections have NanoAOD counters ``n<Collection>`` (int32).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import awkward as ak
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.generator import theory
from ewpolar.generator.constants import HARD_FLAGS
from ewpolar.generator.detector import Collection, Reconstructed, reconstruct
from ewpolar.generator.processes import hard_process, sample_of

__all__ = ["PLACEHOLDER_COLLECTIONS", "EventColumns", "event_columns", "simulate", "simulate_columns",
           "to_tree_data"]

PLACEHOLDER_COLLECTIONS: dict[str, dict[str, str]] = {
    "Photon": {"pt": "f4", "eta": "f4", "phi": "f4", "electronIdx": "i4", "genPartIdx": "i4",
               "jetIdx": "i4"},
    "LowPtElectron": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4", "charge": "i4",
                      "electronIdx": "i4", "genPartIdx": "i4", "photonIdx": "i4"},
    "FatJet": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4", "genJetAK8Idx": "i4",
               "subJetIdx1": "i4", "subJetIdx2": "i4"},
    "SubJet": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4"},
    "GenJetAK8": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4"},
    "FsrPhoton": {"pt": "f4", "eta": "f4", "phi": "f4", "muonIdx": "i4"},
    "Tau": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4", "charge": "i4",
            "genPartIdx": "i4", "jetIdx": "i4"},
    "GenVisTau": {"pt": "f4", "eta": "f4", "phi": "f4", "mass": "f4", "charge": "i4",
                  "genPartIdxMother": "i4"},
}
"""Always-empty collections written so that every NanoAOD cross-reference resolves."""

_BOOL_FIELDS = {"tightId"}


def _cast(name: str, values: np.ndarray) -> np.ndarray:
    """NanoAOD dtype: float32 for floats, int32 for integers, bool for flags."""
    if name in _BOOL_FIELDS or values.dtype == np.bool_:
        return values.astype(np.bool_, copy=False)
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32, copy=False)
    return values.astype(np.int32, copy=False)


@dataclass
class EventColumns:
    """One chunk of branches, kept as numpy arrays until written or wrapped.

    ``entries`` keeps the branch order: ("scalar", name, array), ("list", name,
    2-D array) for fixed-length per-event lists with a counter, and
    ("collection", name, counts, {field: flat array}).
    """

    n: int
    entries: list[tuple] = field(default_factory=list)

    def scalar(self, name: str, values: np.ndarray) -> None:
        self.entries.append(("scalar", name, values))

    def scalars(self) -> dict[str, np.ndarray]:
        return {e[1]: e[2] for e in self.entries if e[0] == "scalar"}

    def set_scalar(self, name: str, values: np.ndarray) -> None:
        for i, e in enumerate(self.entries):
            if e[0] == "scalar" and e[1] == name:
                self.entries[i] = ("scalar", name, values)
                return
        raise KeyError(name)


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _jagged(offsets: np.ndarray, flat: np.ndarray) -> ak.Array:
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets),
                                                ak.contents.NumpyArray(flat)))


def _collection_fields(col: Collection) -> dict[str, np.ndarray]:
    return {name: _cast(name, values) for name, values in col.fields.items()}


def event_columns(config: AnalysisConfig, n: int, *, gen_weight: np.ndarray,
                  cp_int: np.ndarray | None, cp_quad: np.ndarray | None,
                  scale_weights: np.ndarray | None, pdf_weights: np.ndarray | None,
                  genpart: Collection, reco: Reconstructed,
                  extra_lists: dict[str, np.ndarray] | None = None) -> EventColumns:
    """Branches of ``n`` events in the NanoAOD layout, for any generator backend.

    ``gen_weight`` is float32; ``cp_int`` and ``cp_quad`` are the relative CP weights
    (multiplied by ``gen_weight`` here; None: 0) and are written for the WH channel
    only; ``scale_weights`` (n, 9) and ``pdf_weights`` (n, k) are skipped when None;
    ``extra_lists`` are further fixed-length per-event lists (e.g.
    ``LHEReweightingWeight``); ``genpart`` holds the ``GenPart`` fields.
    """
    cols = EventColumns(n)
    cols.scalar("run", np.ones(n, dtype=np.uint32))
    cols.scalar("luminosityBlock", np.ones(n, dtype=np.uint32))
    cols.scalar("event", np.arange(1, n + 1, dtype=np.uint64))
    cols.scalar("genWeight", gen_weight)
    if config.channel == "wh":
        zeros = np.zeros(n, dtype=np.float32)
        cp_int = (gen_weight * cp_int).astype(np.float32) if cp_int is not None else zeros
        cp_quad = (gen_weight * cp_quad).astype(np.float32) if cp_quad is not None else zeros
        cols.scalar("CPWeight_sm", gen_weight.copy())
        cols.scalar("CPWeight_int", cp_int)
        cols.scalar("CPWeight_quad", cp_quad)
    if scale_weights is not None:
        cols.entries.append(("list", "LHEScaleWeight", scale_weights.astype(np.float32)))
    if pdf_weights is not None:
        cols.entries.append(("list", "LHEPdfWeight", pdf_weights))
    for name, values in (extra_lists or {}).items():
        cols.entries.append(("list", name, values.astype(np.float32)))
    cols.entries.append(("collection", "GenPart", genpart.counts,
                         {name: _cast(name, v) for name, v in genpart.fields.items()}))
    cols.entries.append(("collection", "GenJet", reco.genjet.counts, _collection_fields(reco.genjet)))
    cols.entries.append(("collection", "Electron", reco.electron.counts,
                         _collection_fields(reco.electron)))
    cols.entries.append(("collection", "Muon", reco.muon.counts, _collection_fields(reco.muon)))
    cols.entries.append(("collection", "Jet", reco.jet.counts, _collection_fields(reco.jet)))
    for name, values in reco.met.items():
        cols.scalar(name, values.astype(np.float32))
    zero_counts = np.zeros(n, dtype=np.int64)
    for name, dtypes in PLACEHOLDER_COLLECTIONS.items():
        cols.entries.append(("collection", name, zero_counts,
                             {f: np.zeros(0, dtype=dt) for f, dt in dtypes.items()}))
    return cols


def simulate_columns(config: AnalysisConfig, dataset: str, n: int,
                     rng: np.random.Generator) -> EventColumns:
    """Generate, reconstruct and convert ``n`` toy events of ``dataset`` to branch arrays."""
    sample = sample_of(config, dataset)
    hard = hard_process(config, dataset, n, rng)
    reco = reconstruct(rng, hard)
    toy = theory.THEORY_TOYS[sample.process]
    gen_weight = theory.gen_weights(rng, n).astype(np.float32)
    gen = hard.gen
    k = gen.pdg.shape[1]
    genpart = Collection(np.full(n, k), {
        "pt": gen.p4.pt.ravel(), "eta": gen.p4.eta.ravel(), "phi": gen.p4.phi.ravel(),
        "mass": gen.mass.ravel(), "pdgId": gen.pdg.ravel(),
        "genPartIdxMother": np.tile(gen.mother, n), "status": np.tile(gen.status, n),
        "statusFlags": np.full(n * k, HARD_FLAGS),
    })
    return event_columns(
        config, n, gen_weight=gen_weight, cp_int=hard.cp_int, cp_quad=hard.cp_quad,
        scale_weights=theory.scale_weights(hard.scale, toy),
        pdf_weights=theory.pdf_weights(hard.scale, hard.rapidity, toy),
        genpart=genpart, reco=reco)


def to_branches(cols: EventColumns) -> dict[str, np.ndarray | ak.Array]:
    """Flat NanoAOD branch names → numpy arrays (flat branches, counters) or jagged arrays."""
    out: dict[str, np.ndarray | ak.Array] = {}
    for entry in cols.entries:
        kind, name = entry[0], entry[1]
        if kind == "scalar":
            out[name] = entry[2]
        elif kind == "list":
            values = entry[2]
            counts = np.full(cols.n, values.shape[1], dtype=np.int32)
            out["n" + name] = counts
            out[name] = _jagged(_offsets(counts), values.ravel())
        else:
            counts, fields = entry[2], entry[3]
            offsets = _offsets(counts)
            out["n" + name] = counts.astype(np.int32)
            for fname, flat in fields.items():
                out[f"{name}_{fname}"] = _jagged(offsets, flat)
    return out


def to_tree_data(cols: EventColumns) -> dict[str, np.ndarray | ak.Array]:
    """Branch data for uproot's ``mktree``/``extend``: one jagged record array per
    collection (uproot writes the ``n<Collection>`` counter and ``<Collection>_<field>``)."""
    out: dict[str, np.ndarray | ak.Array] = {}
    for entry in cols.entries:
        kind, name = entry[0], entry[1]
        if kind == "scalar":
            out[name] = entry[2]
        elif kind == "list":
            values = entry[2]
            out[name] = _jagged(_offsets(np.full(cols.n, values.shape[1])), values.ravel())
        else:
            counts, fields = entry[2], entry[3]
            record = ak.contents.RecordArray(
                [ak.contents.NumpyArray(v) for v in fields.values()], list(fields),
                length=int(counts.sum()))
            out[name] = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(_offsets(counts)),
                                                             record))
    return out


def simulate(config: AnalysisConfig, dataset: str, n: int,
             rng: np.random.Generator) -> dict[str, np.ndarray | ak.Array]:
    """In-memory branches of one chunk of ``n`` events of ``dataset``.

    Keys are the branch names as written (``nJet``, ``Jet_pt``, ``MET_pt``, ...):
    numpy arrays for flat branches and counters, jagged awkward arrays otherwise.
    ``luminosityBlock`` is 1 and ``event`` runs 1..n (the writer renumbers them).
    """
    return to_branches(simulate_columns(config, dataset, n, rng))
