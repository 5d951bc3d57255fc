"""Which toy model generates which ``Sample.process`` of the configs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ewpolar.core.config import AnalysisConfig, Sample
from ewpolar.core.errors import InputError
from ewpolar.generator import ssww, wh
from ewpolar.generator.record import HardEvent

__all__ = ["PROCESSES", "expected_helicity_fractions", "hard_process", "sample_of"]

Model = Callable[[np.random.Generator, int, AnalysisConfig, Sample], HardEvent]


def _tlf(cfg: AnalysisConfig) -> float:
    return cfg.generator.transverse_left_fraction


PROCESSES: dict[str, Model] = {
    "ssww_ew": lambda rng, n, cfg, s: ssww.ssww_ew(
        rng, n, polarization=s.polarization or "", transverse_left_fraction=_tlf(cfg)),
    "ssww_qcd": lambda rng, n, cfg, s: ssww.ssww_qcd(rng, n, transverse_left_fraction=_tlf(cfg)),
    "wz": lambda rng, n, cfg, s: ssww.wz(rng, n, transverse_left_fraction=_tlf(cfg)),
    "ttbar_nonprompt": lambda rng, n, cfg, s: ssww.ttbar_nonprompt(rng, n),
    "wh": lambda rng, n, cfg, s: wh.wh(
        rng, n, transverse_left_fraction=_tlf(cfg),
        cp_interference_scale=cfg.generator.cp_interference_scale),
    "ttbar_semileptonic": lambda rng, n, cfg, s: wh.ttbar_semileptonic(rng, n),
    "wbb": lambda rng, n, cfg, s: wh.wbb(rng, n, transverse_left_fraction=_tlf(cfg)),
}
"""Toy model per process name (``samples.<name>.process`` in the config)."""


def sample_of(config: AnalysisConfig, dataset: str) -> Sample:
    """The config's sample ``dataset``, checked to be one the generator can make."""
    sample = config.samples.get(dataset)
    if sample is None:
        raise InputError(f"dataset '{dataset}' is not a sample of the {config.channel} config"
                         f" (samples: {', '.join(config.samples)})")
    if sample.process not in PROCESSES:
        raise InputError(f"samples.{dataset}.process: the toy generator has no process"
                         f" '{sample.process}' (known: {', '.join(PROCESSES)})")
    if sample.process == "ssww_ew" and sample.polarization is None:
        raise InputError(f"samples.{dataset}.polarization: process ssww_ew needs LL, LT or TT")
    return sample


def hard_process(config: AnalysisConfig, dataset: str, n: int,
                 rng: np.random.Generator) -> HardEvent:
    """Generate ``n`` events of ``dataset`` before detector simulation."""
    sample = sample_of(config, dataset)
    return PROCESSES[sample.process](rng, n, config, sample)


def expected_helicity_fractions(config: AnalysisConfig, dataset: str) -> tuple[float, float, float]:
    """Per-W helicity fractions (f0, f_L, f_R) in the WW rest frame that ``dataset`` is
    generated with (ssWW EW and QCD datasets).

    LL → (1, 0, 0); TT → (0, t, 1 − t); LT → (0.5, 0.5 t, 0.5 (1 − t)), with
    t = ``generator.transverse_left_fraction``; QCD W±W±jj uses f0 = 0.2.

    Example:
        >>> from ewpolar.core.config import load_config
        >>> f0, f_left, f_right = expected_helicity_fractions(load_config("ssww"), "ssww_TT")
        >>> round(f0, 3), round(f_left, 3), round(f_right, 3)
        (0.0, 0.7, 0.3)
    """
    sample = sample_of(config, dataset)
    tlf = _tlf(config)
    if sample.process == "ssww_ew":
        return ssww.helicity_fractions(sample.polarization, tlf)
    if sample.process == "ssww_qcd":
        return ssww.helicity_fractions(None, tlf, ssww.QCD_LONGITUDINAL_FRACTION)
    raise InputError(f"dataset '{dataset}' (process {sample.process}): helicity fractions are"
                     " defined for the W±W±jj datasets only")
