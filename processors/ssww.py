"""Polarized same-sign WW scattering (W±W±jj → ℓ±ν ℓ±ν jj): the coffea processor.

Regions, weights, systematics, cutflows and the output layout are those of
:mod:`ewpolar.processors.common`. Histograms: one per config ``histograms`` key (axes
dataset, region, systematic, then the observable); observables this processor
computes (names as config keys):

* per event: ``mjj``, ``dy_jj`` (|Δy| of the two leading jets), ``dphi_jj``,
  ``mll``, ``dphi_ll``, ``dr_ll``, ``lep1_pt``, ``lep2_pt``, ``lep1_eta``,
  ``lep2_eta``, ``jet1_pt``, ``jet2_pt``, ``jet1_eta``, ``jet2_eta``, ``met``,
  ``n_jets``, ``n_bjets``, ``mt_ww`` (transverse mass of ℓℓ + E_T^miss), ``r_pt``
  (p_T(ℓ1) p_T(ℓ2) / (p_T(j1) p_T(j2))), ``mbb``;
* per lepton (two entries per event, each with the event weight):
  ``zeppenfeld`` (ζ of each of the two leading leptons w.r.t. the two leading jets),
  ``cos_theta_star`` and ``cos_theta_star_truth``; ``lep1_zeppenfeld`` and
  ``lep2_zeppenfeld`` are the two ζ as per-event observables (classifier inputs).

Classifier inputs (:data:`ewpolar.models.training.inputs.SSWW_INPUTS`) are names of these
observables: the training set and the processor's ONNX inference both compute
them here.

``cos_theta_star`` (reconstructed, an approximation): the two neutrinos are not
measured, so each W is built as W_i = ℓ_i + ν_i with ν_i carrying half of the
missing p_T and its p_z from the W-mass constraint (smaller |p_z| root); θ*_i is
the angle of ℓ_i in the W_i rest frame against the W_i direction in the
W_1 + W_2 frame (:func:`ewpolar.observables.lepton_pair_cos_theta_star_p4`).

``cos_theta_star_truth`` (generator level, only when the config asks for it, as
it reads ``GenPart``): charged leptons (e, μ, τ) whose mother is a W boson; for
events with exactly two of them, θ* of each lepton in its mother W's rest frame
against that W's direction in the frame of the two W's. Events with another
number of W → ℓν decays (e.g. W+jets, WZ) have no entry.

The ssWW K-factors (``systematics.kfactor``, a correctionlib file binned in m_jj
per polarization state LL/LT/TT; backgrounds K = 1) scale the nominal weight
and give the ``kfactor_up`` / ``kfactor_down`` categories.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
from ewpolar import observables as obs
from ewpolar.processors.common import AnalysisProcessor, FeatureContext
from ewpolar.selections.objects import flat_parts

__all__ = ["SSWWProcessor"]

def _cos_theta_star_reco(ctx: FeatureContext) -> np.ndarray:
    c1, c2 = obs.lepton_pair_cos_theta_star_p4(ctx.p4("lepton", 0), ctx.p4("lepton", 1),
                                               *ctx.met_pxpy())
    return np.stack([c1, c2], axis=1)


@numba.njit(cache=True, nogil=True)
def _w_decay_leptons(offsets, pdg_id, mother, events, out):
    """For the events ``events``: the first two charged leptons whose mother is a W,
    and their mothers.

    out[k] = (ℓ1, ℓ2, W of ℓ1, W of ℓ2) of event events[k] as flat indices (-1 where
    absent); returns the number of such leptons per event.
    """
    count = np.zeros(events.shape[0], np.int64)
    for k in range(events.shape[0]):
        i = events[k]
        out[k, :] = -1
        for j in range(offsets[i], offsets[i + 1]):
            a = abs(pdg_id[j])
            if a != 11 and a != 13 and a != 15:
                continue
            m = mother[j]
            if m < 0:
                continue
            mj = offsets[i] + m
            if abs(pdg_id[mj]) != 24:
                continue
            if count[k] < 2:
                out[k, count[k]] = j
                out[k, 2 + count[k]] = mj
            count[k] += 1
    return count


def _cos_theta_star_truth(ctx: FeatureContext) -> np.ndarray:
    n = len(ctx.events)
    if "GenPart" not in ctx.events.fields:
        ctx.notes.add("cos_theta_star_truth: no GenPart collection; not filled")
        return np.full((n, 2), np.nan)
    # the flat columns of the whole chunk (no copies) and the events wanted in them
    if ctx.chunk is not None and ctx.index is not None:
        gen, events = ctx.chunk.GenPart, np.asarray(ctx.index, dtype=np.int64)
    else:
        gen, events = ctx.events.GenPart, np.arange(n, dtype=np.int64)
    offsets, pdg_id = flat_parts(gen["pdgId"])
    index = np.empty((n, 4), dtype=np.int64)
    two = _w_decay_leptons(offsets, pdg_id, flat_parts(gen["genPartIdxMother"])[1], events,
                           index) == 2
    columns = [flat_parts(gen[f])[1] for f in ("pt", "eta", "phi", "mass")]
    found = index[two].T.copy()  # (ℓ1, ℓ2, W1, W2) × events with two W → ℓν
    l1, l2, w1, w2 = (obs.ptetaphim_to_pxpypze(*(c[found[k]] for c in columns))
                      for k in range(4))
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    out = np.full((n, 2), np.nan)
    out[two, 0] = obs.cos_theta_star(*l1, *w1, *frame)
    out[two, 1] = obs.cos_theta_star(*l2, *w2, *frame)
    return out


def _lepton_zeppenfeld(ctx: FeatureContext, n: int) -> np.ndarray:
    return obs.zeppenfeld(*ctx.p4("lepton", n), *ctx.p4("jet", 0), *ctx.p4("jet", 1))


def _zeppenfeld(ctx: FeatureContext) -> np.ndarray:
    return np.stack([_lepton_zeppenfeld(ctx, i) for i in (0, 1)], axis=1)


class SSWWProcessor(AnalysisProcessor):
    """coffea processor of the ssWW polarization analysis.

    Args:
        config: the ssWW analysis config (``config/ssww.yaml``), validated or a path.
        regions: region names to run (None: all regions of the config).

    Raises:
        ConfigError: an unknown region (the message lists the valid ones), a
            non-ssWW config, or a histogram whose observable is unknown.
    """

    channel = "ssww"
    score_templates = True
    jes_independent = frozenset({"cos_theta_star_truth"})

    def extra_columns(self) -> frozenset[str]:
        """The generator record, when cos θ* at truth level is histogrammed or a classifier input."""
        used = {key for spec in self.hist_specs() for key in spec.axes} | set(self.classifier_inputs)
        if "cos_theta_star_truth" not in used:
            return frozenset()
        fields = ("pt", "eta", "phi", "mass", "pdgId", "genPartIdxMother")
        return frozenset({"nGenPart", *(f"GenPart_{f}" for f in fields)})

    def feature_functions(self) -> dict[str, Callable[[FeatureContext], np.ndarray]]:
        return {
            **super().feature_functions(),
            "dphi_jj": lambda c: obs.delta_phi_jj(*c.p4("jet", 0), *c.p4("jet", 1)),
            "dphi_ll": lambda c: obs.delta_phi_ll(*c.p4("lepton", 0), *c.p4("lepton", 1)),
            "mt_ww": lambda c: obs.mt_ww(*c.p4("lepton", 0), *c.p4("lepton", 1), *c.met_pxpy()),
            "r_pt": lambda c: obs.r_pt(*c.p4("lepton", 0), *c.p4("lepton", 1),
                                       *c.p4("jet", 0), *c.p4("jet", 1)),
            "zeppenfeld": _zeppenfeld,
            "lep1_zeppenfeld": lambda c: _lepton_zeppenfeld(c, 0),
            "lep2_zeppenfeld": lambda c: _lepton_zeppenfeld(c, 1),
            "cos_theta_star": _cos_theta_star_reco,
            "cos_theta_star_truth": _cos_theta_star_truth,
        }
