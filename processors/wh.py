"""WH (W → ℓν, H → bb̄) with CP violation in the HWW vertex: the coffea processor.

Regions, weights, systematics, cutflows and the output layout are those of
:mod:`ewpolar.processors.base`.

Histograms (axes dataset, region, systematic, then the observables):

* ``q_cos_delta_plus_ptw``: 2D, Q_ℓ · cos δ⁺ × p_T^W, when the config has both
  ``q_cos_delta_plus`` and ``ptw`` axes (the p_T^W edges are the STXS-like bins);
* one 1D histogram for every other config ``histograms`` key: ``mbb``, ``mt_tot``,
  and any of ``ptw``, ``q_cos_delta_plus``, ``cos_delta_plus``, ``mt_w``,
  ``lep1_pt``, ``met``, ``n_jets``, ``n_bjets``, ... .

Observables (docs/physics.md §1b): H = b1 + b2 (two leading b-jets); the neutrino p_z
from the W-mass constraint with the region's ``neutrino_rule``; W = ℓ + ν;
cos δ⁺ from :func:`ewpolar.observables.wh_cos_delta_plus_p4`, multiplied by the
lepton charge Q_ℓ; p_T^W = |p_T(ℓ) + p_T^miss|; m_T^tot of ℓ, ν (E_T^miss), b1, b2.

Estimator observables (optional, config ``estimators``): the output of an ONNX
estimator (SALLY's score t̂(x), or ln r̂(x|c) of an ALICES ratio at the config's
``parameter`` c) is an observable like the others: a 1D histogram named after
it (binning: the ``histograms`` entry of that name) and, with a ``ptw`` axis, a
2D ``<name>_ptw`` (estimator × p_T^W) that ``fit.signal_observable`` can name, so
that the WH fit runs on score-binned templates (the estimator axis needs an edge
at 0 for the category fit). k-fold estimators are routed by event number like
the classifiers (:mod:`ewpolar.processors.scoring`). Without ``estimators``
nothing changes.

CP interpretation: per event w(c) = CPWeight_sm + c·CPWeight_int + c²·CPWeight_quad
(genWeight = CPWeight_sm). For samples with these branches, two extra categories
of the ``systematic`` axis are filled with the nominal selection:

* ``cp_int``:  normalisation × CPWeight_int (same normalisation as nominal: xsec × lumi / sumw, sumw of the SM weights)
* ``cp_quad``: normalisation × CPWeight_quad

so per bin the expected yield is N(c) = nominal + c·cp_int + c²·cp_quad, and the
signal strength μ(c) = 1 + A c + B c² has A = cp_int / nominal and
B = cp_quad / nominal. ``nominal`` itself is the SM (c = 0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import awkward as ak
import numpy as np
from coffea.analysis_tools import Weights
from ewpolar.core.config import AnalysisConfig, load_config
from ewpolar.core.naming import CP_INT, CP_QUAD
from ewpolar.models.features import FEATURES, FeatureContext
from ewpolar.processors.base import AnalysisProcessor
from ewpolar.processors.filling import HistSpec
from ewpolar.processors.scoring import estimator_observable, find_estimators
from ewpolar.processors.weights import SampleInfo

__all__ = ["CP_CATEGORIES", "WHProcessor"]

#: extra systematic-axis categories of the WH signal: interference and quadratic weights
#: (branch ``CPWeight_<field>``)
CP_CATEGORIES = {CP_INT: "int", CP_QUAD: "quad"}

_2D = ("q_cos_delta_plus", "ptw")


class WHProcessor(AnalysisProcessor):
    """coffea processor of the WH CP analysis.

    Args:
        config: the WH analysis config (``config/wh.yaml``), validated or a path.
        regions: region names to run (None: all regions of the config).

    Raises:
        ConfigError: an unknown region (the message lists the valid ones), a
            non-WH config, or a histogram whose observable is unknown.
    """

    channel = "wh"

    def __init__(self, config: AnalysisConfig | str | Path,
                 regions: Sequence[str] | str | None = None) -> None:
        if not isinstance(config, AnalysisConfig):
            config = load_config(config)
        # before the base checks the histograms against feature_functions()
        self._estimators = (find_estimators(config, FEATURES, type(self).__name__)
                            if config.channel == self.channel else {})
        super().__init__(config, regions)

    def feature_functions(self) -> Mapping[str, Callable[[FeatureContext], np.ndarray]]:
        """The registry's features and the config's estimator observables."""
        if not self._estimators:
            return FEATURES
        out = dict(FEATURES)
        for name, model in self._estimators.items():
            ref = self.config.estimators[name]
            out[name] = partial(estimator_observable, model, ref.output, ref.parameter, FEATURES)
        return out

    def extra_columns(self) -> frozenset[str]:
        """The CP weights of the WH signal (and ``event`` for k-fold estimators)."""
        names = {f"CPWeight_{field}" for field in CP_CATEGORIES.values()}
        if self._estimators:
            names.add("event")
        return frozenset(names)

    def hist_specs(self) -> list[HistSpec]:
        keys = list(self.config.histograms)
        specs = []
        if all(k in keys for k in _2D):
            specs.append(HistSpec("_".join(_2D), _2D))
            keys = [k for k in keys if k not in _2D]
        if "ptw" in self.config.histograms:
            specs += [HistSpec(f"{name}_ptw", (name, "ptw")) for name in self._estimators]
        return specs + [HistSpec(k, (k,)) for k in keys]

    def _extra_weights(self, events: ak.Array, sample: SampleInfo, weights: Weights,
                       mask: np.ndarray, notes: set[str]) -> dict[str, np.ndarray]:
        if sample.is_data:
            return {}
        cp = _cp_weights(events)
        if cp is None:
            if sample.kind == "signal":
                notes.add("cp: no CPWeight_int/CPWeight_quad branches; cp_int/cp_quad not filled")
            return {}
        # every weight except genWeight (= CPWeight_sm): the normalisation (and corrections)
        norm = weights.partial_weight(exclude=["genWeight"])[mask]
        return {cat: norm * np.asarray(ak.to_numpy(cp[field][mask]), dtype=np.float64)
                for cat, field in CP_CATEGORIES.items()}


def _cp_weights(events: ak.Array) -> ak.Array | None:
    """The CPWeight_{sm,int,quad} branches (NanoAODSchema groups them as ``CPWeight``)."""
    if "CPWeight" not in events.fields:
        return None
    cp = events.CPWeight
    return cp if all(f in ak.fields(cp) for f in CP_CATEGORIES.values()) else None
