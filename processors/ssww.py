"""Polarized same-sign WW scattering (W±W±jj → ℓ±ν ℓ±ν jj): the coffea processor.

Regions, weights, systematics, cutflows and the output layout are those of
:mod:`processors.common`. Histograms: one per config ``histograms`` key (axes
dataset, region, systematic, then the observable); observables this processor
computes (names as config keys):

* per event: ``mjj``, ``dy_jj`` (|Δy| of the two leading jets), ``dphi_jj``,
  ``mll``, ``dphi_ll``, ``dr_ll``, ``lep1_pt``, ``lep2_pt``, ``lep1_eta``,
  ``lep2_eta``, ``jet1_pt``, ``jet2_pt``, ``jet1_eta``, ``jet2_eta``, ``met``,
  ``n_jets``, ``n_bjets``, ``mt_ww`` (transverse mass of ℓℓ + E_T^miss), ``r_pt``
  (p_T(ℓ1) p_T(ℓ2) / (p_T(j1) p_T(j2))), ``mbb``;
* per lepton (two entries per event, each with the event weight):
  ``zeppenfeld`` (ζ of each of the two leading leptons w.r.t. the two leading jets),
  ``cos_theta_star`` and ``cos_theta_star_truth``.

``cos_theta_star`` (reconstructed, an approximation): the two neutrinos are not
measured, so each W is built as W_i = ℓ_i + ν_i with ν_i carrying half of the
missing p_T and its p_z from the W-mass constraint (smaller |p_z| root); θ*_i is
the angle of ℓ_i in the W_i rest frame against the W_i direction in the
W_1 + W_2 frame (:func:`analysis.observables.lepton_pair_cos_theta_star`).

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

import awkward as ak
import numpy as np

from analysis import observables as obs
from processors.common import AnalysisProcessor, FeatureContext

__all__ = ["SSWWProcessor"]

_CHARGED_LEPTONS = (11, 13, 15)


def _cos_theta_star_reco(ctx: FeatureContext) -> np.ndarray:
    c1, c2 = obs.lepton_pair_cos_theta_star(ctx.objects.leptons, met=ctx.met)
    return np.stack([c1, c2], axis=1)


def _cos_theta_star_truth(ctx: FeatureContext) -> np.ndarray:
    n = len(ctx.events)
    if "GenPart" not in ctx.events.fields:
        ctx.notes.add("cos_theta_star_truth: no GenPart collection; not filled")
        return np.full((n, 2), np.nan)
    gen = ctx.events.GenPart
    apdg = abs(gen.pdgId)
    is_lepton = (apdg == _CHARGED_LEPTONS[0]) | (apdg == _CHARGED_LEPTONS[1]) | (
        apdg == _CHARGED_LEPTONS[2])
    leptons = gen[is_lepton]
    leptons = leptons[ak.fill_none(abs(leptons.parent.pdgId) == 24, False)]
    two = np.asarray(ak.to_numpy(ak.num(leptons, axis=1))) == 2
    w_bosons = leptons.parent
    l1, l2 = obs.nth_pxpypze(leptons, 0), obs.nth_pxpypze(leptons, 1)
    w1, w2 = obs.nth_pxpypze(w_bosons, 0), obs.nth_pxpypze(w_bosons, 1)
    frame = tuple(a + b for a, b in zip(w1, w2, strict=True))
    out = np.stack([obs.cos_theta_star(*l1, *w1, *frame), obs.cos_theta_star(*l2, *w2, *frame)],
                   axis=1)
    out[~two] = np.nan
    return out


def _zeppenfeld(ctx: FeatureContext) -> np.ndarray:
    j1, j2 = ctx.p4("jet", 0), ctx.p4("jet", 1)
    return np.stack([obs.zeppenfeld(*ctx.p4("lepton", i), *j1, *j2) for i in (0, 1)], axis=1)


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
    jes_independent = frozenset({"cos_theta_star_truth"})

    def feature_functions(self) -> dict[str, Callable[[FeatureContext], np.ndarray]]:
        return {
            **super().feature_functions(),
            "dphi_jj": lambda c: obs.delta_phi_jj(*c.p4("jet", 0), *c.p4("jet", 1)),
            "dphi_ll": lambda c: obs.delta_phi_ll(*c.p4("lepton", 0), *c.p4("lepton", 1)),
            "mt_ww": lambda c: obs.mt_ww(*c.p4("lepton", 0), *c.p4("lepton", 1), *c.met_pxpy()),
            "r_pt": lambda c: obs.r_pt(*c.p4("lepton", 0), *c.p4("lepton", 1),
                                       *c.p4("jet", 0), *c.p4("jet", 1)),
            "zeppenfeld": _zeppenfeld,
            "cos_theta_star": _cos_theta_star_reco,
            "cos_theta_star_truth": _cos_theta_star_truth,
        }
