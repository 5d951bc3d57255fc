"""Processes of the ssWW channel: polarized EW W±W±jj, QCD W±W±jj, WZ and non-prompt tt̄.

Toy model (choices of this generator, not predictions)
------------------------------------------------------
**EW W±W±jj** (``ssww_ew``, polarized). W⁺W⁺ : W⁻W⁻ = 2 : 1; each W decays to eν
or μν (50 % each). Helicities: LL → (0, 0); TT → both transverse; LT → one of
the two (at random) 0, the other transverse; a transverse W has λ = −1 with
probability ``generator.transverse_left_fraction``, else +1. Kinematics depend on
n_T, the number of transverse W's, so a classifier sees more than decay angles:

- tag quark i (the one that radiated W i): pT from the effective-W shapes of
  :func:`~ewpolar.generator.spectra.tag_parton_pt` (longitudinal W: soft,
  M = 80 GeV; transverse: harder, M = 55 GeV);
- rapidity gap Δy_jj = 1.5 + Gamma(3, 1.05 − 0.1 n_T) (LL jets a little more
  forward), centred at y0 ~ N(0, 0.7); azimuths uniform;
- m_WW = m_W1 + m_W2 + Gamma(2, 90 + 35 n_T GeV) (LL softer, TT harder);
  WW rapidity y0 + N(0, 0.4); the WW system balances the tag quarks and the
  radiation (mean 0.8 partons);
- W direction in the WW rest frame: cos θ ∝ 1 + 0.6 n_T cos²θ.

In the WW rest frame the W's decay with cos θ* drawn for their helicity about
their flight direction (docs/physics.md §2); everything is then boosted to the lab.

**QCD W±W±jj** (``ssww_qcd``): same chain with an unpolarized mix per W
(f_0 = 0.2, the rest transverse split by the same left fraction), softer
and less forward jets (pT shape "transverse" with M = 40 GeV, Δy_jj = 0.3 +
Gamma(2, 0.9)), m_WW scale 80 + 25 n_T GeV, more radiation (mean 1.5).

**WZ** (``wz``): W⁺Z : W⁻Z = 3 : 2, W → ℓν, Z → ℓℓ (e/μ), W with f_0 = 0.3,
Z leptons ∝ 1 + cos²θ; m_WZ = m_W + m_Z + Gamma(2, 100 GeV); jets VBS-like in
25 % of events, otherwise QCD-like. A lepton outside the detector acceptance
is simply not reconstructed, which makes WZ a background to the 2-lepton region.

**Non-prompt tt̄** (``ttbar_nonprompt``): semileptonic tt̄ (:mod:`.ttbar`) plus a
non-prompt lepton (e/μ, random charge) from one b quark: it carries a fraction
z = 0.05 + 0.75 Beta(2, 3) of the b momentum, within ~0.08 in η and φ; an
invisible fraction U(0, 0.15) escapes as a neutrino; the rest is the b jet.
The hadronic activity around the lepton, (1 − z − z_ν)/z of its energy, sets its
isolation (see :mod:`.detector`), so energetic non-prompt leptons look prompt more often.

GenPart layout
--------------
EW/QCD ssWW: 0 W₁, 1 W₂, 2 q₁, 3 q₂, 4 ℓ₁ [0], 5 ν₁ [0], 6 ℓ₂ [1], 7 ν₂ [1].
WZ: 0 W, 1 Z, 2 q₁, 3 q₂, 4 ℓ [0], 5 ν [0], 6 ℓ⁻ [1], 7 ℓ⁺ [1].
tt̄: see :mod:`ewpolar.generator.ttbar` (the non-prompt lepton is not stored).
Mothers in brackets; particles without one have mother −1. Status: bosons 62,
quarks 23, leptons and neutrinos 1.
"""

from __future__ import annotations

import numpy as np
from ewpolar.generator.constants import GAMMA_Z, MASS_Z
from ewpolar.generator.decays import (
    decay_w_leptonic,
    decay_z_leptonic,
    lepton_flavours,
    sample_helicities,
    w_masses,
)
from ewpolar.generator.kinematics import Vec4, breit_wigner_mass, two_body_decay, wrap_phi
from ewpolar.generator.record import (
    GenRecordBuilder,
    HardEvent,
    Leptons,
    Partons,
    charged_lepton_mass,
    isr_partons,
    quark_mass,
)
from ewpolar.generator.spectra import (
    cos_theta_quadratic,
    mass_above_threshold,
    system_momentum,
    tag_parton_pt,
)
from ewpolar.generator.ttbar import GEN_LEPTON_SLOT, PARTON_B_HAD, PARTON_B_LEP, semileptonic_ttbar

__all__ = [
    "QCD_LONGITUDINAL_FRACTION",
    "WZ_LONGITUDINAL_FRACTION",
    "helicity_fractions",
    "ssww_ew",
    "ssww_qcd",
    "ttbar_nonprompt",
    "wz",
]

QCD_LONGITUDINAL_FRACTION = 0.2
WZ_LONGITUDINAL_FRACTION = 0.3

# outgoing quark of q → q' W±: W⁺ from d-type ← u (d), ū ← d̄ (−2), ...
_TAG_PDG = {1: (np.array([1, -2, 3, -4]), np.array([0.6, 0.25, 0.1, 0.05])),
            -1: (np.array([2, -1, 4, -3]), np.array([0.6, 0.25, 0.1, 0.05]))}
_JET_PDG = (np.array([21, 1, 2, -1, -2, 3, -3, 4, -4]),
            np.array([0.40, 0.15, 0.15, 0.10, 0.10, 0.04, 0.03, 0.02, 0.01]))


def helicity_fractions(polarization: str | None, transverse_left_fraction: float,
                       longitudinal_fraction: float | None = None) -> tuple[float, float, float]:
    """Expected per-W fractions (f0, f_L, f_R).

    LL → (1, 0, 0); TT → (0, t, 1 − t); LT → (0.5, 0.5 t, 0.5 (1 − t)) with
    t = transverse_left_fraction; an unpolarized sample uses ``longitudinal_fraction``.
    """
    t = transverse_left_fraction
    f0 = {"LL": 1.0, "LT": 0.5, "TT": 0.0}.get(polarization or "", longitudinal_fraction)
    if f0 is None:
        raise ValueError(f"unknown polarization {polarization!r}")
    return f0, (1.0 - f0) * t, (1.0 - f0) * (1.0 - t)


def _choose(rng: np.random.Generator, values: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    idx = np.searchsorted(np.cumsum(probs), rng.random(n) * probs.sum(), side="right")
    return values[np.minimum(idx, len(values) - 1)].astype(np.int32)


def _tag_pdg(rng: np.random.Generator, charge: np.ndarray) -> np.ndarray:
    plus = _choose(rng, *_TAG_PDG[1], charge.shape[0])
    minus = _choose(rng, *_TAG_PDG[-1], charge.shape[0])
    return np.where(charge > 0, plus, minus)


def _polarized_helicities(rng: np.random.Generator, n: int, polarization: str,
                          tlf: float) -> tuple[np.ndarray, np.ndarray]:
    transverse = (np.where(rng.random(n) < tlf, -1, 1).astype(np.int8),
                  np.where(rng.random(n) < tlf, -1, 1).astype(np.int8))
    zero = np.zeros(n, dtype=np.int8)
    if polarization == "LL":
        return zero, zero.copy()
    if polarization == "TT":
        return transverse
    if polarization == "LT":
        first_long = rng.random(n) < 0.5
        return (np.where(first_long, zero, transverse[0]),
                np.where(first_long, transverse[1], zero))
    raise ValueError(f"unknown polarization {polarization!r}")


def _dijet(rng: np.random.Generator, pt1: np.ndarray, pt2: np.ndarray, dy: np.ndarray,
           y0: np.ndarray, pdg1: np.ndarray, pdg2: np.ndarray) -> tuple[Vec4, Vec4]:
    n = pt1.shape[0]
    side = np.where(rng.random(n) < 0.5, 0.5, -0.5) * dy
    phi1 = 2.0 * np.pi * rng.random(n) - np.pi
    phi2 = 2.0 * np.pi * rng.random(n) - np.pi
    return (Vec4.from_ptyphim(pt1, y0 + side, phi1, quark_mass(pdg1)),
            Vec4.from_ptyphim(pt2, y0 - side, phi2, quark_mass(pdg2)))


def _ww_jj(rng: np.random.Generator, hel1: np.ndarray, hel2: np.ndarray, *, ew: bool) -> HardEvent:
    n = hel1.shape[0]
    charge = np.where(rng.random(n) < 2.0 / 3.0, 1, -1)
    m1, m2 = w_masses(rng, n), w_masses(rng, n)
    long1, long2 = hel1 == 0, hel2 == 0
    n_t = (~long1).astype(np.float64) + (~long2)

    y0 = 0.7 * rng.standard_normal(n)
    if ew:
        pt1 = tag_parton_pt(rng, long1, 80.0, 55.0)
        pt2 = tag_parton_pt(rng, long2, 80.0, 55.0)
        dy = 1.5 + rng.gamma(3.0, 1.0, n) * (1.05 - 0.1 * n_t)
        isr_mean, m_scale, y_spread = 0.8, 90.0 + 35.0 * n_t, 0.4
        pdg1, pdg2 = _tag_pdg(rng, charge), _tag_pdg(rng, charge)
    else:
        no = np.zeros(n, dtype=bool)
        pt1, pt2 = tag_parton_pt(rng, no, 0.0, 40.0), tag_parton_pt(rng, no, 0.0, 40.0)
        dy = 0.3 + rng.gamma(2.0, 0.9, n)
        isr_mean, m_scale, y_spread = 1.5, 80.0 + 25.0 * n_t, 0.6
        pdg1, pdg2 = _tag_pdg(rng, charge), _choose(rng, *_JET_PDG, n)
    q1, q2 = _dijet(rng, pt1, pt2, dy, y0, pdg1, pdg2)
    isr = isr_partons(rng, n, isr_mean)
    rx, ry = isr.transverse_sum()
    rx, ry = rx + q1.px + q2.px, ry + q1.py + q2.py

    m_ww = mass_above_threshold(rng, m1 + m2, 2.0, m_scale)
    y_ww = y0 + y_spread * rng.standard_normal(n)
    ww = system_momentum(-rx, -ry, y_ww, m_ww)

    zeros = np.zeros(n)
    cos_ww = cos_theta_quadratic(rng, 0.6 * n_t, n)
    phi_ww = 2.0 * np.pi * rng.random(n)
    w1, w2 = two_body_decay(Vec4(zeros, zeros, zeros, m_ww), m1, m2, cos_ww, phi_ww,
                            (zeros, zeros, np.ones(n)))
    d1 = decay_w_leptonic(rng, w1, charge, hel1, lepton_flavours(rng, n))
    d2 = decay_w_leptonic(rng, w2, charge, hel2, lepton_flavours(rng, n))

    gen = GenRecordBuilder()
    gen.add(w1.boost_from(ww), 24 * charge, m1, status=62)
    gen.add(w2.boost_from(ww), 24 * charge, m2, status=62)
    gen.add(q1, pdg1, quark_mass(pdg1), status=23)
    gen.add(q2, pdg2, quark_mass(pdg2), status=23)
    l1, l2 = d1.first.boost_from(ww), d2.first.boost_from(ww)
    gen.add(l1, d1.first_pdg, charged_lepton_mass(d1.first_pdg), mother=0)
    gen.add(d1.second.boost_from(ww), d1.second_pdg, 0.0, mother=0)
    gen.add(l2, d2.first_pdg, charged_lepton_mass(d2.first_pdg), mother=1)
    gen.add(d2.second.boost_from(ww), d2.second_pdg, 0.0, mother=1)

    return HardEvent(
        gen=gen.build(),
        leptons=Leptons.from_slots([l1, l2], [d1.first_pdg, d2.first_pdg], [4, 6]),
        partons=Partons.concat([Partons.from_slots([q1, q2], [pdg1, pdg2]), isr]),
        scale=m_ww,
        rapidity=y_ww,
        info={"helicity1": hel1, "helicity2": hel2,
              "cos_theta_star1": d1.cos_theta, "cos_theta_star2": d2.cos_theta},
    )


def ssww_ew(rng: np.random.Generator, n: int, *, polarization: str,
            transverse_left_fraction: float) -> HardEvent:
    """EW W±W±jj with both W's in the given polarization state (LL, LT, TT)."""
    hel1, hel2 = _polarized_helicities(rng, n, polarization, transverse_left_fraction)
    return _ww_jj(rng, hel1, hel2, ew=True)


def ssww_qcd(rng: np.random.Generator, n: int, *, transverse_left_fraction: float) -> HardEvent:
    """QCD W±W±jj with an unpolarized helicity mix."""
    f_left = (1.0 - QCD_LONGITUDINAL_FRACTION) * transverse_left_fraction
    hel1 = sample_helicities(rng, n, QCD_LONGITUDINAL_FRACTION, f_left)
    hel2 = sample_helicities(rng, n, QCD_LONGITUDINAL_FRACTION, f_left)
    return _ww_jj(rng, hel1, hel2, ew=False)


def wz(rng: np.random.Generator, n: int, *, transverse_left_fraction: float) -> HardEvent:
    """W±Z → ℓν ℓℓ with two jets (VBS-like in 25 % of events, QCD-like otherwise)."""
    charge = np.where(rng.random(n) < 0.6, 1, -1)
    f_left = (1.0 - WZ_LONGITUDINAL_FRACTION) * transverse_left_fraction
    hel = sample_helicities(rng, n, WZ_LONGITUDINAL_FRACTION, f_left)
    mw = w_masses(rng, n)
    mz = breit_wigner_mass(rng, n, MASS_Z, GAMMA_Z, MASS_Z - 10 * GAMMA_Z, MASS_Z + 10 * GAMMA_Z)

    vbs_like = rng.random(n) < 0.25
    no = np.zeros(n, dtype=bool)
    scale_t = np.where(vbs_like, 55.0, 40.0)
    pt1, pt2 = tag_parton_pt(rng, no, 0.0, scale_t), tag_parton_pt(rng, no, 0.0, scale_t)
    dy = np.where(vbs_like, 1.5 + rng.gamma(3.0, 1.0, n), 0.3 + rng.gamma(2.0, 0.9, n))
    y0 = 0.7 * rng.standard_normal(n)
    pdg1, pdg2 = _choose(rng, *_JET_PDG, n), _choose(rng, *_JET_PDG, n)
    q1, q2 = _dijet(rng, pt1, pt2, dy, y0, pdg1, pdg2)
    isr = isr_partons(rng, n, 1.5)
    rx, ry = isr.transverse_sum()
    rx, ry = rx + q1.px + q2.px, ry + q1.py + q2.py

    m_wz = mass_above_threshold(rng, mw + mz, 2.0, 100.0)
    y_wz = y0 + 0.6 * rng.standard_normal(n)
    wz_sys = system_momentum(-rx, -ry, y_wz, m_wz)
    zeros = np.zeros(n)
    cos_wz = cos_theta_quadratic(rng, 0.5, n)
    phi_wz = 2.0 * np.pi * rng.random(n)
    w_rf, z_rf = two_body_decay(Vec4(zeros, zeros, zeros, m_wz), mw, mz, cos_wz, phi_wz,
                                (zeros, zeros, np.ones(n)))
    dw = decay_w_leptonic(rng, w_rf, charge, hel, lepton_flavours(rng, n))
    lm, lp, zflav = decay_z_leptonic(rng, z_rf)

    gen = GenRecordBuilder()
    gen.add(w_rf.boost_from(wz_sys), 24 * charge, mw, status=62)
    gen.add(z_rf.boost_from(wz_sys), 23, mz, status=62)
    gen.add(q1, pdg1, quark_mass(pdg1), status=23)
    gen.add(q2, pdg2, quark_mass(pdg2), status=23)
    lw = dw.first.boost_from(wz_sys)
    gen.add(lw, dw.first_pdg, charged_lepton_mass(dw.first_pdg), mother=0)
    gen.add(dw.second.boost_from(wz_sys), dw.second_pdg, 0.0, mother=0)
    lm, lp = lm.boost_from(wz_sys), lp.boost_from(wz_sys)
    gen.add(lm, zflav, charged_lepton_mass(zflav), mother=1)
    gen.add(lp, -zflav, charged_lepton_mass(zflav), mother=1)

    return HardEvent(
        gen=gen.build(),
        leptons=Leptons.from_slots([lw, lm, lp], [dw.first_pdg, zflav, -zflav], [4, 6, 7]),
        partons=Partons.concat([Partons.from_slots([q1, q2], [pdg1, pdg2]), isr]),
        scale=m_wz,
        rapidity=y_wz,
    )


def ttbar_nonprompt(rng: np.random.Generator, n: int) -> HardEvent:
    """Semileptonic tt̄ with one non-prompt lepton from a b-quark decay."""
    tt = semileptonic_ttbar(rng, n, isr_mean=1.5)
    partons = tt.partons
    from_had = rng.random(n) < 0.5
    parent = np.where(from_had, PARTON_B_HAD, PARTON_B_LEP)
    rows = np.arange(n)
    b = partons.p4[rows, parent]

    z = 0.05 + 0.75 * rng.beta(2.0, 3.0, n)
    z_nu = 0.15 * rng.random(n)
    flavour = lepton_flavours(rng, n)
    charge = np.where(rng.random(n) < 0.5, 1, -1)
    pdg = (-charge * flavour).astype(np.int32)
    lep = Vec4.from_ptetaphim(z * b.pt, b.eta + 0.08 * rng.standard_normal(n),
                              wrap_phi(b.phi + 0.08 * rng.standard_normal(n)),
                              charged_lepton_mass(pdg))
    remnant = b - lep - b.scale(z_nu)
    for comp in ("px", "py", "pz", "e"):
        getattr(partons.p4, comp)[rows, parent] = getattr(remnant, comp)

    return HardEvent(
        gen=tt.builder.build(),
        leptons=Leptons.from_slots([tt.lepton, lep], [tt.lepton_pdg, pdg], [GEN_LEPTON_SLOT, -1],
                                   parent_parton=[-1, parent],
                                   activity=[0.0, (1.0 - z - z_nu) / z]),
        partons=partons,
        scale=tt.scale,
        rapidity=tt.rapidity,
    )
