"""Processes of the WH channel: W±H (H → bb̄) with CP weights, semileptonic tt̄, W + bb̄.

Toy model (choices of this generator, not predictions)
------------------------------------------------------
**WH** (``wh``): W⁺H : W⁻H = 61 : 39 (as σ(W⁺H)/σ(W⁻H) at 13 TeV);
m_WH = m_W + m_H + Gamma(1.2, 110 GeV); the W direction in the WH rest frame
follows 0.6 · 3/4 sin²θ + 0.4 · flat; y_WH ~ N(0, 1.1); the WH system recoils
against radiation (mean 1.2 partons). The W decays to eν/μν with helicity
fractions f_0 = 0.6, f_L = 0.4 t, f_R = 0.4 (1 − t) (t = transverse left
fraction) about its direction in the WH frame; H → bb̄ is isotropic.

CP weights. With Q_ℓ the lepton charge, p_T^W in GeV and
cos δ⁺ = p̂_ℓ^(W) · (p_H × p_W)/|p_H × p_W| from the true lepton, neutrino and
Higgs (docs/physics.md §1b: lepton boosted into the W rest frame, lab-frame H and W
3-momenta), each event gets relative weights

    a = κ · (p_T^W / 100 GeV) · Q_ℓ cos δ⁺           (interference, CP-odd)
    b = 0.35 · (κ · p_T^W / 100 GeV)²                 (quadratic term)

with κ = ``generator.cp_interference_scale``. The branches are
CPWeight_sm = genWeight, CPWeight_int = a · genWeight and
CPWeight_quad = b · genWeight, so w(c) = sm + c · int + c² · quad exactly for
any c_HW̃. Since |a| ≤ κ p_T^W/100 GeV, b ≥ 1.4 a²/4 and w(c) ≥ 0.29 sm > 0 for
every c. The SM kinematics are symmetric in Q_ℓ cos δ⁺ (uniform decay azimuth),
so the interference only creates an asymmetry, which grows with p_T^W.

**Semileptonic tt̄** (``ttbar_semileptonic``): :mod:`ewpolar.generator.ttbar`.

**W + bb̄** (``wbb``): W⁺ : W⁻ = 3 : 2; m_bb = 2 m_b + Gamma(1.3, 45 GeV)
(a falling spectrum under the Higgs peak); m_Wbb = m_W + m_bb + Gamma(1.5, 120 GeV);
W and bb̄ back to back, flat in cos θ, in the Wbb rest frame; bb̄ isotropic;
W with f_0 = 0.2. The background datasets carry CP weights with int = quad = 0.

GenPart layout
--------------
WH: 0 W, 1 H, 2 ℓ [0], 3 ν [0], 4 b [1], 5 b̄ [1].
W + bb̄: 0 W, 1 b, 2 b̄, 3 ℓ [0], 4 ν [0].
tt̄: see :mod:`ewpolar.generator.ttbar`.
"""

from __future__ import annotations

import numpy as np
from ewpolar.generator.constants import GAMMA_H, MASS_B, MASS_H
from ewpolar.generator.decays import (
    decay_isotropic,
    decay_w_leptonic,
    lepton_flavours,
    sample_helicities,
    w_masses,
)
from ewpolar.generator.kinematics import Vec4, breit_wigner_mass, two_body_decay
from ewpolar.generator.record import (
    GenRecordBuilder,
    HardEvent,
    Leptons,
    Partons,
    charged_lepton_mass,
    isr_partons,
)
from ewpolar.generator.spectra import (
    cos_theta_quadratic,
    cos_theta_sin2_mixture,
    mass_above_threshold,
    system_momentum,
)
from ewpolar.generator.ttbar import GEN_LEPTON_SLOT, semileptonic_ttbar

__all__ = ["QUAD_COEFFICIENT", "cos_delta_plus", "cp_relative_weights", "ttbar_semileptonic",
           "wbb", "wh"]

WH_LONGITUDINAL_FRACTION = 0.6
WBB_LONGITUDINAL_FRACTION = 0.2
QUAD_COEFFICIENT = 0.35


def cos_delta_plus(lep: Vec4, nu: Vec4, higgs: Vec4) -> np.ndarray:
    """cos δ⁺ = p̂_ℓ^(W) · (p_H × p_W)/|p_H × p_W| (arXiv:1409.5449; docs/physics.md §1b)."""
    w = lep + nu
    lw = lep.boost_to(w)
    nx = higgs.py * w.pz - higgs.pz * w.py
    ny = higgs.pz * w.px - higgs.px * w.pz
    nz = higgs.px * w.py - higgs.py * w.px
    return (lw.px * nx + lw.py * ny + lw.pz * nz) / (lw.p * np.sqrt(nx * nx + ny * ny + nz * nz))


def cp_relative_weights(ptw: np.ndarray, q_cos_delta: np.ndarray,
                        kappa: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative interference and quadratic weights (a, b) of the toy model above."""
    x = kappa * ptw / 100.0
    return x * q_cos_delta, QUAD_COEFFICIENT * x * x


def wh(rng: np.random.Generator, n: int, *, transverse_left_fraction: float,
       cp_interference_scale: float) -> HardEvent:
    """W±H → ℓν bb̄ with per-event relative CP weights."""
    charge = np.where(rng.random(n) < 0.61, 1, -1)
    f_left = (1.0 - WH_LONGITUDINAL_FRACTION) * transverse_left_fraction
    hel = sample_helicities(rng, n, WH_LONGITUDINAL_FRACTION, f_left)
    mw = w_masses(rng, n)
    mh = breit_wigner_mass(rng, n, MASS_H, GAMMA_H, MASS_H - 10 * GAMMA_H, MASS_H + 10 * GAMMA_H)
    isr = isr_partons(rng, n, 1.2)
    rx, ry = isr.transverse_sum()
    m_wh = mass_above_threshold(rng, mw + mh, 1.2, 110.0)
    y_wh = 1.1 * rng.standard_normal(n)
    sys = system_momentum(-rx, -ry, y_wh, m_wh)

    zeros = np.zeros(n)
    cos_w = cos_theta_sin2_mixture(rng, 0.6, n)
    phi_w = 2.0 * np.pi * rng.random(n)
    w_rf, h_rf = two_body_decay(Vec4(zeros, zeros, zeros, m_wh), mw, mh, cos_w, phi_w,
                                (zeros, zeros, np.ones(n)))
    dw = decay_w_leptonic(rng, w_rf, charge, hel, lepton_flavours(rng, n))
    b_rf, bbar_rf = decay_isotropic(rng, h_rf, MASS_B, MASS_B)

    w, h = w_rf.boost_from(sys), h_rf.boost_from(sys)
    lep, nu = dw.first.boost_from(sys), dw.second.boost_from(sys)
    b, bbar = b_rf.boost_from(sys), bbar_rf.boost_from(sys)

    gen = GenRecordBuilder()
    gen.add(w, 24 * charge, mw, status=62)
    gen.add(h, 25, mh, status=62)
    gen.add(lep, dw.first_pdg, charged_lepton_mass(dw.first_pdg), mother=0)
    gen.add(nu, dw.second_pdg, 0.0, mother=0)
    gen.add(b, 5, MASS_B, mother=1, status=23)
    gen.add(bbar, -5, MASS_B, mother=1, status=23)

    cdp = cos_delta_plus(lep, nu, h)
    a, bq = cp_relative_weights(w.pt, charge * cdp, cp_interference_scale)
    return HardEvent(
        gen=gen.build(),
        leptons=Leptons.from_slots([lep], [dw.first_pdg], [2]),
        partons=Partons.concat([Partons.from_slots([b, bbar], [5, -5]), isr]),
        scale=m_wh,
        rapidity=y_wh,
        cp_int=a,
        cp_quad=bq,
        info={"cos_delta_plus": cdp},
    )


def ttbar_semileptonic(rng: np.random.Generator, n: int) -> HardEvent:
    """Semileptonic tt̄ (one prompt lepton, four quarks)."""
    tt = semileptonic_ttbar(rng, n, isr_mean=1.5)
    return HardEvent(
        gen=tt.builder.build(),
        leptons=Leptons.from_slots([tt.lepton], [tt.lepton_pdg], [GEN_LEPTON_SLOT]),
        partons=tt.partons,
        scale=tt.scale,
        rapidity=tt.rapidity,
    )


def wbb(rng: np.random.Generator, n: int, *, transverse_left_fraction: float) -> HardEvent:
    """W(→ ℓν) + bb̄ continuum."""
    charge = np.where(rng.random(n) < 0.6, 1, -1)
    f_left = (1.0 - WBB_LONGITUDINAL_FRACTION) * transverse_left_fraction
    hel = sample_helicities(rng, n, WBB_LONGITUDINAL_FRACTION, f_left)
    mw = w_masses(rng, n)
    m_bb = mass_above_threshold(rng, np.full(n, 2.0 * MASS_B), 1.3, 45.0)
    isr = isr_partons(rng, n, 1.5)
    rx, ry = isr.transverse_sum()
    m_sys = mass_above_threshold(rng, mw + m_bb, 1.5, 120.0)
    y_sys = 1.1 * rng.standard_normal(n)
    sys = system_momentum(-rx, -ry, y_sys, m_sys)

    zeros = np.zeros(n)
    cos_w = cos_theta_quadratic(rng, 0.0, n)
    phi_w = 2.0 * np.pi * rng.random(n)
    w_rf, bb_rf = two_body_decay(Vec4(zeros, zeros, zeros, m_sys), mw, m_bb, cos_w, phi_w,
                                 (zeros, zeros, np.ones(n)))
    dw = decay_w_leptonic(rng, w_rf, charge, hel, lepton_flavours(rng, n))
    b_rf, bbar_rf = decay_isotropic(rng, bb_rf, MASS_B, MASS_B)

    w = w_rf.boost_from(sys)
    lep, nu = dw.first.boost_from(sys), dw.second.boost_from(sys)
    b, bbar = b_rf.boost_from(sys), bbar_rf.boost_from(sys)

    gen = GenRecordBuilder()
    gen.add(w, 24 * charge, mw, status=62)
    gen.add(b, 5, MASS_B, status=23)
    gen.add(bbar, -5, MASS_B, status=23)
    gen.add(lep, dw.first_pdg, charged_lepton_mass(dw.first_pdg), mother=0)
    gen.add(nu, dw.second_pdg, 0.0, mother=0)
    return HardEvent(
        gen=gen.build(),
        leptons=Leptons.from_slots([lep], [dw.first_pdg], [3]),
        partons=Partons.concat([Partons.from_slots([b, bbar], [5, -5]), isr]),
        scale=m_sys,
        rapidity=y_sys,
    )
