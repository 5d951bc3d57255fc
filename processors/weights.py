"""Event weights and systematic variations of the processors.

:class:`EventWeights` builds, per chunk, coffea's ``Weights``: ``genWeight`` (if
present) × ``xsec_fb × luminosity_fb / sumw`` (from the fileset metadata; both
needed, else 1, with a note), then one weight per configured systematic, and
the map of systematic categories (the histograms' ``systematic`` axis, named
by :mod:`ewpolar.core.naming`) to ``Weights`` modifiers:

* ``nominal``
* ``normsys`` (e.g. luminosity): ``lumi_up`` / ``lumi_down`` = nominal × (1 ± size)
* ``scale``: ``scale_up`` / ``scale_down``, the envelope (max / min per event)
  of the six non-nominal 7-point variations of LHEScaleWeight relative to its
  nominal member (index 4 of nine). ``mode: all`` instead gives ``scale_0`` …
  ``scale_8``, one per member in the NanoAOD (μR, μF) order (an eight-member
  array is the nine without the nominal).
* ``pdf``: ``pdf_up`` / ``pdf_down`` = nominal × (1 ± δ) with, relative to member 0,
  δ = √(Σ_i (w_i/w_0 − 1)²) (``pdf_scheme: hessian``) or the standard deviation
  of w_i/w_0 (``pdf_scheme: replicas``).
* ``correction`` (e.g. the ssWW K-factors): ``<key>_up`` / ``<key>_down``; the
  nominal value multiplies the nominal weight (see :meth:`EventWeights.correction`).
* ``jes``: ``jes_up`` / ``jes_down``, shape variations (:func:`ewpolar.selections.shapes.shape_variations`):
  jets rebuilt from ``Jet_{pt,mass}_jesTotal{Up,Down}``, MET from
  ``MET_{pt,phi}_jesTotal{Up,Down}``, object and event selection and observables
  recomputed, nominal weight.

The up/down weights can be evaluated only for the events some region selects
(the only ones they are used for); the others keep their nominal weight. A
systematic whose branches the input lacks is skipped with a note; data (sample
kind "data") get no weights and no systematics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numba
import numpy as np
from coffea.analysis_tools import Weights
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import ConfigError
from ewpolar.core.naming import (
    NOMINAL,
    SCALE_7POINT,
    SCALE_NOMINAL_MEMBER,
    scale_member,
    systematic_prefix,
    variation_names,
)
from ewpolar.inputs.adapt import add_profile_weights
from ewpolar.selections.objects import flat_parts
from ewpolar.selections.variables import EventVariables

__all__ = ["EventWeights", "SampleInfo", "nonfinite_generator_weights", "sample_info"]

#: the scale variations of the envelope: the 7-point members other than the nominal one
_SCALE_ENVELOPE = tuple(i for i in SCALE_7POINT if i != SCALE_NOMINAL_MEMBER)
#: longest run numpy's pairwise summation adds without splitting it (PW_BLOCKSIZE)
_PAIRWISE_BLOCK = 128


@dataclass(frozen=True)
class SampleInfo:
    """What the processor knows about the dataset of a chunk."""

    dataset: str
    kind: str
    polarization: str | None
    xsec_fb: float | None
    sumw: float | None

    @property
    def is_data(self) -> bool:
        return self.kind == "data"


def sample_info(config: AnalysisConfig, dataset: str, meta: Mapping[str, Any],
                notes: set[str]) -> SampleInfo:
    """The sample of a chunk from its fileset metadata, else the config's ``samples``."""
    sample = config.samples.get(dataset)
    kind = meta.get("kind") or (sample.kind if sample else None)
    if kind is None:
        kind = "background"
        notes.add("sample: no 'kind' in the metadata or the config; treated as simulation")
    pol = meta.get("polarization") or (sample.polarization if sample else None)

    def number(key: str) -> float | None:
        value = meta.get(key)
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            notes.add(f"sample: metadata '{key}' = {value!r} is not a number; ignored")
            return None

    return SampleInfo(dataset=dataset, kind=str(kind), polarization=pol,
                      xsec_fb=number("xsec_fb"), sumw=number("sumw"))


def nonfinite_generator_weights(events: ak.Array) -> int:
    """Events of the chunk whose ``genWeight`` is NaN or infinite (they get weight 0)."""
    if "genWeight" not in set(events.fields):
        return 0
    return int(np.count_nonzero(~np.isfinite(_flat(events.genWeight))))


def _flat(array: Any) -> np.ndarray:
    return np.asarray(ak.to_numpy(array), dtype=np.float64)


def _fixed_width(array: ak.Array, n_events: int) -> np.ndarray | None:
    """A jagged per-event array with one common length as a 2D numpy array, else None.

    The array has the dtype of the input (a view of the read buffer where possible).
    """
    offsets, content = flat_parts(array)
    counts = np.diff(offsets)
    if n_events == 0:
        return np.zeros((0, 0))
    if not np.all(counts == counts[0]):
        return None
    return content.reshape(n_events, int(counts[0]))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 1 where den is 0."""
    out = np.ones(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den != 0)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _pairwise_sum(a, n):
    """numpy's pairwise sum of a[:n] for n <= 128 (the same rounding as ``np.sum``)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _hessian_delta(w, rows, out):
    """out[q] = √(Σ_i (w_i/w_0 − 1)²) of row rows[q] (w_i/w_0 = 1 where w_0 = 0): the
    operations of the numpy expression in :func:`pdf_weights`, without its temporaries."""
    k = w.shape[1]
    sq = np.empty(k - 1)
    for q in range(rows.shape[0]):
        r = rows[q]
        w0 = np.float64(w[r, 0])
        for i in range(1, k):
            rel = (np.float64(w[r, i]) / w0 if w0 != 0 else 1.0) - 1.0
            sq[i - 1] = rel * rel
        out[q] = np.sqrt(0.0 + _pairwise_sum(sq, k - 1))


def _two_sided(key: str) -> dict[str, str]:
    """Categories ``<prefix>_up`` / ``<prefix>_down`` → the ``Weights`` modifiers of ``key``."""
    prefix = systematic_prefix(key)
    up, down = variation_names(key)
    return {up: f"{prefix}Up", down: f"{prefix}Down"}


def scale_weights(events: ak.Array, weights: Weights, key: str, mode: str, notes: set[str],
                  selected: np.ndarray | None = None) -> dict[str, str]:
    """Add the LHEScaleWeight variations of systematic ``key`` (envelope or every member)."""
    prefix = systematic_prefix(key)
    if "LHEScaleWeight" not in events.fields:
        notes.add(f"{prefix}: no LHEScaleWeight branch; scale variations skipped")
        return {}
    n = len(events)
    w = _fixed_width(events.LHEScaleWeight, n)
    if w is None or (n and w.shape[1] not in (8, 9)):
        notes.add(f"{prefix}: LHEScaleWeight does not have 9 (or 8) members in every event; "
                  "scale variations skipped")
        return {}
    rows = slice(None) if selected is None else selected
    if n == 0:
        w = np.ones((0, 9))
    else:
        w = np.asarray(w[rows], dtype=np.float64)
        if w.shape[1] == 8:  # nominal member left out: put it back as 1
            w = np.insert(w, SCALE_NOMINAL_MEMBER, 1.0, axis=1)
    ratios = _ratio(w, w[:, [SCALE_NOMINAL_MEMBER]])
    if mode == "all":
        names = [str(i) for i in range(9)]
        variations = [np.ones(n) for _ in range(9)]
        for i, v in enumerate(variations):
            v[rows] = ratios[:, i]
        weights.add_multivariation(prefix, np.ones(n), names, variations,
                                   [v.copy() for v in variations])
        return {scale_member(key, i): f"{prefix}_{i}Up" for i in range(9)}
    env = ratios[:, list(_SCALE_ENVELOPE)]
    up, down = np.ones(n), np.ones(n)
    if len(env):
        up[rows] = env.max(axis=1)
        down[rows] = env.min(axis=1)
    weights.add(prefix, np.ones(n), up, down)
    return _two_sided(key)


def pdf_weights(events: ak.Array, weights: Weights, key: str, scheme: str, notes: set[str],
                selected: np.ndarray | None = None) -> dict[str, str]:
    """Add the LHEPdfWeight up/down variation of systematic ``key`` (Hessian or replicas)."""
    prefix = systematic_prefix(key)
    if "LHEPdfWeight" not in events.fields:
        notes.add(f"{prefix}: no LHEPdfWeight branch; PDF variations skipped")
        return {}
    n = len(events)
    w = _fixed_width(events.LHEPdfWeight, n)
    if w is None or (n and w.shape[1] < 2):
        notes.add(f"{prefix}: LHEPdfWeight has no common member count (≥ 2) in every event; "
                  "PDF variations skipped")
        return {}
    delta = np.zeros(n)
    if n:
        rows = np.arange(n) if selected is None else np.asarray(selected, dtype=np.int64)
        if scheme != "replicas" and w.shape[1] - 1 <= _PAIRWISE_BLOCK:
            out = np.empty(len(rows))
            _hessian_delta(np.ascontiguousarray(w), rows, out)
            delta[rows] = out
        else:
            ws = np.asarray(w[rows], dtype=np.float64)
            rel = _ratio(ws[:, 1:], ws[:, :1]) - 1.0
            if scheme == "replicas":
                if rel.shape[1] > 1:
                    delta[rows] = rel.std(axis=1, ddof=1)
            else:
                delta[rows] = np.sqrt(np.sum(rel**2, axis=1))
        if scheme != "replicas" and w.shape[1] != 31:
            notes.add(f"{prefix}: LHEPdfWeight has {w.shape[1]} members, combined as "
                      f"{w.shape[1] - 1} Hessian eigenvectors (set pdf_scheme: replicas "
                      "for a replica set)")
    weights.add(prefix, np.ones(n), 1.0 + delta, np.clip(1.0 - delta, 0.0, None))
    return _two_sided(key)


class EventWeights:
    """The event weights and systematic variations of an analysis config.

    The correction files are read at construction (small JSON), so that remote
    workers need no file access; the correctionlib objects are made on first
    use in each process (they are not pickled).
    """

    def __init__(self, config: AnalysisConfig) -> None:
        self.config = config
        self._correction_json = {
            key: config.resolve(s.file).read_text(encoding="utf-8")
            for key, s in config.systematics.items()
            if s.kind == "correction" and s.file is not None
        }
        self._corrections: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_corrections"] = {}  # rebuilt from the JSON text on first use
        return state

    def weights(self, events: ak.Array, sample: SampleInfo, nominal: EventVariables,
                notes: set[str], selected: np.ndarray | None = None
                ) -> tuple[Weights, dict[str, str | None]]:
        """The ``Weights`` of the chunk and the systematic category → weight modifier map.

        Args:
            events: the chunk.
            sample: its sample.
            nominal: the nominal objects of the chunk (for corrections that read them).
            notes: where skipped systematics and assumptions are noted.
            selected: indices of the events whose weight variations are used (those
                some region selects); the up/down weights of the other events are
                left equal to their nominal weight. None: all events.
        """
        n = len(events)
        weights = Weights(n, storeIndividual=True)
        categories: dict[str, str | None] = {NOMINAL: None}
        if sample.is_data:
            return weights, categories
        if "genWeight" in set(events.fields):
            gen = _flat(events.genWeight)
            bad = ~np.isfinite(gen)
            if bad.any():
                # one NaN weight turns every sum it enters into NaN: such an event is a
                # generator fault, and it is left out (weight 0) with a note, not summed
                gen = np.where(bad, 0.0, gen)
                notes.add(f"weights: dataset '{sample.dataset}': genWeight is NaN or infinite "
                          "in some events; they get weight 0 (count in metrics.json "
                          "'events_with_bad_weights')")
            weights.add("genWeight", gen)
        else:
            notes.add("weights: no genWeight branch; every event has generator weight 1")
        if sample.xsec_fb is not None and sample.sumw:
            norm = sample.xsec_fb * self.config.luminosity_fb / sample.sumw
        else:
            norm = 1.0
            notes.add("weights: no xsec_fb/sumw in the metadata; not normalised to the "
                      "luminosity (weight = genWeight)")
        weights.add("norm", np.full(n, norm))

        for key, syst in self.config.systematics.items():
            if syst.kind == "normsys":
                if syst.size is None:
                    notes.add(f"{key}: normsys without a size; skipped")
                    continue
                ones = np.ones(n)
                weights.add(systematic_prefix(key), ones, ones * (1 + syst.size),
                            ones * (1 - syst.size))
                categories |= _two_sided(key)
            elif syst.kind == "scale":
                categories |= scale_weights(events, weights, key, syst.mode, notes, selected)
            elif syst.kind == "pdf":
                categories |= pdf_weights(events, weights, key, syst.pdf_scheme, notes, selected)
            elif syst.kind == "correction":
                categories |= self.correction(key, sample, nominal, weights, notes, selected)
            # "jes" is a shape variation: ewpolar.selections.shapes
        # weight variations the input profile names (weight branches of the file)
        categories |= add_profile_weights(events, weights, notes)
        return weights, categories

    def correction(self, key: str, sample: SampleInfo, nominal: EventVariables,
                   weights: Weights, notes: set[str],
                   selected: np.ndarray | None = None) -> dict[str, str]:
        """A correctionlib correction as a weight with up/down variations.

        The correction named ``key`` in the file (or its only correction) is
        evaluated with inputs by name: ``polarization`` (the sample's
        polarization state, "none" for other samples), ``mjj`` (m_jj of the two
        leading nominal jets, GeV; 0 without two jets) and ``syst`` ("nominal",
        "up", "down"). The K-factor is evaluated once, at the nominal m_jj, and
        also applies to the JES-shifted selections. With ``selected``, the up/down
        values are evaluated for those events only (the others keep the nominal K).

        Raises:
            ConfigError: the file has several corrections and none named ``key``.
        """
        if key not in self._corrections:
            import correctionlib

            cset = correctionlib.CorrectionSet.from_string(self._correction_json[key])
            names = list(cset)
            if key in names:
                self._corrections[key] = cset[key]
            elif len(names) == 1:
                self._corrections[key] = cset[names[0]]
            else:
                raise ConfigError(f"systematics.{key}.file: no correction named '{key}' "
                                  f"(corrections: {', '.join(names)})")
        corr = self._corrections[key]
        n = len(nominal.n_leptons)
        values: dict[str, np.ndarray] = {}
        for syst in ("nominal", "up", "down"):  # values of the correction's "syst" input
            rows = slice(None) if syst == "nominal" or selected is None else selected
            args = []
            for var in corr.inputs:
                if var.name == "polarization":
                    args.append(sample.polarization or "none")
                elif var.name == "mjj":
                    args.append(np.nan_to_num(nominal.mjj[rows], nan=0.0))
                elif var.name == "syst":
                    args.append(syst)
                else:
                    notes.add(f"{key}: correction input '{var.name}' is not known; skipped")
                    return {}
            k = np.asarray(corr.evaluate(*args), dtype=np.float64)
            if syst == "nominal" or selected is None:
                values[syst] = np.broadcast_to(k, (n,)).copy()
            else:
                values[syst] = values["nominal"].copy()
                values[syst][rows] = k
        weights.add(systematic_prefix(key), values["nominal"], values["up"], values["down"])
        return _two_sided(key)

