"""Which Pythia 8 setup generates which ``Sample.process`` of the configs.

Pythia processes (13 TeV pp, NNPDF2.3 LO / Monash defaults):

- ``wh``: ``HiggsSM:ffbar2HW``, H → bb̄, W → eν, μν, τν (W decay correlations
  kept by Pythia's resonance-decay matrix elements);
- ``ttbar_semileptonic`` and ``ttbar_nonprompt``: ``Top:gg2ttbar`` +
  ``Top:qqbar2ttbar`` with one W → ℓν (ℓ = e, μ, τ) and the other W → qq̄';
  Pythia's decay channels are set per W charge, so each block of events runs
  two Pythia instances (W⁺ → ℓν and W⁻ → ℓν), half of the events each,
  interleaved; non-prompt leptons come from the real b- and c-hadron decays;
- ``ttbar_dileptonic``: both W → ℓν;
- ``wjets``: W + jet (``WeakBosonAndParton:qqbar2Wg`` and ``qg2Wq``,
  p̂_T > 20 GeV), W → eν, μν, τν, with W + bb̄ from g → bb̄ in the shower;
- ``wbb``: W + bb̄ (Pythia has no W bb̄ matrix element and W + jets gives two
  b jets in about one event in a hundred): the toy's parton-level W(→ ℓν) bb̄
  events written as LHE and showered;
- ``wz``: ``WeakDoubleBoson:ffbar2ZW`` with W → ℓν and Z → ee, μμ;
- ``ssww_ew`` and ``ssww_qcd``: the toy's parton-level events of the same
  process (polarised for ``ssww_ew``) written as LHE and showered
  (:mod:`ewpolar.generator.pythia.lhe`), so their polarisation truth is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from ewpolar.core.config import AnalysisConfig, Sample
from ewpolar.core.errors import InputError

__all__ = ["PYTHIA_PROCESSES", "PythiaProcess", "base_settings", "process_settings", "pythia_sample"]

_W_LEPTONIC = "11 13 15"
_W_HADRONIC = "1 2 3 4 5"


@dataclass(frozen=True)
class PythiaProcess:
    """Settings of one process.

    ``charge_split``: the settings depend on the lepton charge (half the events
    each); ``from_toy_lhe``: the toy's parton-level events showered through LHE;
    ``cp_weights``: the CP weights are computed from the hard process.
    """

    settings: tuple[str, ...] = ()
    charge_split: bool = False
    from_toy_lhe: bool = False
    cp_weights: bool = False


_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
_WJETS = ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
          "PhaseSpace:pTHatMin = 20.", "24:onMode = off", f"24:onIfAny = {_W_LEPTONIC}")

PYTHIA_PROCESSES: dict[str, PythiaProcess] = {
    "wh": PythiaProcess(("HiggsSM:ffbar2HW = on", "25:onMode = off", "25:onIfMatch = 5 -5",
                         "24:onMode = off", f"24:onIfAny = {_W_LEPTONIC}"), cp_weights=True),
    "ttbar_semileptonic": PythiaProcess(_TTBAR, charge_split=True),
    "ttbar_nonprompt": PythiaProcess(_TTBAR, charge_split=True),
    "ttbar_dileptonic": PythiaProcess((*_TTBAR, "24:onMode = off", f"24:onIfAny = {_W_LEPTONIC}")),
    "wbb": PythiaProcess(from_toy_lhe=True),
    "wjets": PythiaProcess(_WJETS),
    "wz": PythiaProcess(("WeakDoubleBoson:ffbar2ZW = on", "24:onMode = off",
                         f"24:onIfAny = {_W_LEPTONIC}", "23:onMode = off", "23:onIfAny = 11 13")),
    "ssww_ew": PythiaProcess(from_toy_lhe=True),
    "ssww_qcd": PythiaProcess(from_toy_lhe=True),
}
"""Pythia setup per process name (``samples.<name>.process`` in the config)."""


def base_settings(seed: int, *, mpi: bool) -> list[str]:
    """Settings common to every run: quiet, 13 TeV, seeded, MPI on request."""
    return [
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Init:showChangedSettings = off",
        "Init:showChangedParticleData = off",
        "Init:showProcesses = off",
        "Beams:eCM = 13000.",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        f"PartonLevel:MPI = {'on' if mpi else 'off'}",
        # stable within the detector: K_S, Λ etc. decay, b and c hadrons decay
        "ParticleDecays:limitTau0 = on",
        "ParticleDecays:tau0Max = 10.",
    ]


def process_settings(process: str, lepton_charge: int = 1) -> list[str]:
    """Pythia settings of ``process`` (for ``charge_split`` processes: of one lepton charge)."""
    spec = PYTHIA_PROCESSES[process]
    settings = list(spec.settings)
    if spec.charge_split:
        lep_sign, had_sign = ("Pos", "Neg") if lepton_charge > 0 else ("Neg", "Pos")
        settings += ["24:onMode = off", f"24:on{lep_sign}IfAny = {_W_LEPTONIC}",
                     f"24:on{had_sign}IfAny = {_W_HADRONIC}"]
    return settings


def pythia_sample(config: AnalysisConfig, dataset: str) -> Sample:
    """The config's sample ``dataset``, checked to be one the Pythia backend can make."""
    sample = config.samples.get(dataset)
    if sample is None:
        raise InputError(f"dataset '{dataset}' is not a sample of the {config.channel} config"
                         f" (samples: {', '.join(config.samples)})")
    if sample.process not in PYTHIA_PROCESSES:
        raise InputError(f"samples.{dataset}.process: the Pythia backend has no process"
                         f" '{sample.process}' (known: {', '.join(PYTHIA_PROCESSES)})")
    if sample.process == "ssww_ew" and sample.polarization is None:
        raise InputError(f"samples.{dataset}.polarization: process ssww_ew needs LL, LT or TT")
    return sample
