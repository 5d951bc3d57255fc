"""Polarized same-sign WW scattering (W±W±jj → ℓ±ν ℓ±ν jj): the coffea processor.

Regions, weights, systematics, cutflows and the output layout are those of
:mod:`ewpolar.processors.base`. Histograms: one per config ``histograms`` key (axes
dataset, region, systematic, then the observable); the observables are the
features of :data:`ewpolar.models.features.FEATURES` (names as config keys), e.g.

* per event: ``mjj``, ``dy_jj``, ``dphi_jj``, ``mll``, ``dphi_ll``, ``dr_ll``,
  ``lep1_pt``, ``lep2_pt``, ``lep1_eta``, ``lep2_eta``, ``jet1_pt``, ``jet2_pt``,
  ``jet1_eta``, ``jet2_eta``, ``met``, ``n_jets``, ``n_bjets``, ``mt_ww``,
  ``r_pt``, ``mbb``;
* per lepton (two entries per event, each with the event weight):
  ``zeppenfeld``, ``cos_theta_star`` (WW frame, reconstructed with the
  neutrinos sharing E_T^miss) and ``cos_theta_star_truth`` (generator level,
  read from ``GenPart`` only when the config asks for it).

Classifier inputs (:data:`ewpolar.models.training.inputs.SSWW_INPUTS`) are names of these
features: the training set and the processor's ONNX inference both compute
them with the same functions. The score templates (``template_<name>``) are
filled in the regions the config's ``templates`` name.

The ssWW K-factors (``systematics.kfactor``, a correctionlib file binned in m_jj
per polarization state LL/LT/TT; backgrounds K = 1) scale the nominal weight
and give the ``kfactor_up`` / ``kfactor_down`` categories.
"""

from __future__ import annotations

from ewpolar.processors.base import AnalysisProcessor

__all__ = ["SSWWProcessor"]


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
