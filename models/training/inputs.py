"""Inputs and labels of the ssWW classifiers (docs/physics.md §1a).

:data:`SSWW_INPUTS` is the one ordered list of classifier inputs. Each name is an
observable of :meth:`ewpolar.processors.ssww.SSWWProcessor.feature_functions`, so the
training set (:mod:`ewpolar.models.training.build`) and the processor's inference compute
every input with the same code; the model card stores the order the network was
trained with, and inference follows the card.

:data:`SSWW_CLASSIFIERS` says which events each classifier is trained on and
what its labels mean, from the sample's ``kind`` and ``polarization`` (fileset
metadata, else the config):

============  ==========================  ==============================  ============
classifier    label 1                     label 0                         events
============  ==========================  ==============================  ============
sig_vs_bkg    EW W±W±jj (kind signal)     backgrounds (kind background)   all simulation
ll_vs_tx      W_L W_L                     W_L W_T + W_T W_T               signal only
lx_vs_tt      W_L W_L + W_L W_T           W_T W_T                         signal only
============  ==========================  ==============================  ============

Example:
    >>> SSWW_CLASSIFIERS["lx_vs_tt"].label("signal", "LT")
    1
    >>> SSWW_CLASSIFIERS["ll_vs_tx"].label("background", None) is None
    True
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSWW_CLASSIFIERS", "SSWW_INPUTS", "ClassifierTarget"]

#: classifier inputs, in the order of the feature columns (GeV for momenta and masses)
SSWW_INPUTS: tuple[str, ...] = (
    "lep1_pt",
    "lep1_eta",
    "lep2_pt",
    "lep2_eta",
    "jet1_pt",
    "jet1_eta",
    "jet2_pt",
    "jet2_eta",
    "mjj",  # m_jj of the two leading jets
    "dy_jj",  # |Δy_jj|
    "dphi_jj",  # |Δφ_jj|
    "mll",  # m_ℓℓ of the two leading leptons
    "dphi_ll",  # |Δφ_ℓℓ|
    "met",  # E_T^miss
    "mt_ww",  # transverse mass of ℓℓ + E_T^miss
    "lep1_zeppenfeld",  # ζ of the leading lepton w.r.t. the two leading jets
    "lep2_zeppenfeld",
    "r_pt",  # pT(ℓ1) pT(ℓ2) / (pT(j1) pT(j2))
    "n_jets",
)


@dataclass(frozen=True)
class ClassifierTarget:
    """Which events a classifier sees and their labels.

    Attributes:
        name: classifier name (the config's ``models`` key).
        positive: what label 1 means (the network outputs its probability).
        negative: what label 0 means.
        positive_polarizations: for a polarization classifier, the signal
            polarization states with label 1 (the other states get 0 and
            backgrounds are left out); None for signal against background.
    """

    name: str
    positive: str
    negative: str
    positive_polarizations: frozenset[str] | None = None

    @property
    def signal_only(self) -> bool:
        """True when only signal samples (with a polarization state) are used."""
        return self.positive_polarizations is not None

    def label(self, kind: str, polarization: str | None) -> int | None:
        """Label of a sample's events, or None when the classifier does not use them."""
        if kind == "data":
            return None
        if self.positive_polarizations is None:
            return int(kind == "signal")
        if kind != "signal" or polarization is None:
            return None
        return int(polarization in self.positive_polarizations)

    def describe(self) -> dict[str, str]:
        """``{"1": ..., "0": ...}`` for the model card."""
        return {"1": self.positive, "0": self.negative}


SSWW_CLASSIFIERS: dict[str, ClassifierTarget] = {
    "sig_vs_bkg": ClassifierTarget(
        "sig_vs_bkg", "EW W±W±jj (samples of kind signal)", "backgrounds (kind background)"
    ),
    "ll_vs_tx": ClassifierTarget(
        "ll_vs_tx", "W_L W_L", "W_L W_T + W_T W_T (signal samples)", frozenset({"LL"})
    ),
    "lx_vs_tt": ClassifierTarget(
        "lx_vs_tt", "W_L W_L + W_L W_T", "W_T W_T (signal samples)", frozenset({"LL", "LT"})
    ),
}
