"""Semileptonic tt̄ production and decay, shared by the ssWW and WH background models.

Toy model: m_tt̄ = m_t1 + m_t2 + Gamma(1.6, 110 GeV); cos θ of the top in the tt̄
rest frame ∝ 1 + 0.5 cos²θ; y_tt̄ ~ N(0, 1); the tt̄ system recoils against
initial-state radiation. One top (t or t̄ with 50 %) decays to W → ℓν (e or μ),
the other to W → qq̄'. Tops decay isotropically; the W helicity follows the
leading-order fractions (docs/physics.md §2) about the W direction in the top rest
frame, and the W decays in that frame.

GenPart slots (mother in brackets):
0 t (leptonic side) [−1], 1 t (hadronic side) [−1], 2 W → ℓν [0], 3 b [0],
4 W → qq̄' [1], 5 b [1], 6 ℓ [2], 7 ν [2], 8 down-type q [4], 9 up-type q [4].
Parton slots: 0 b (leptonic side), 1 b (hadronic side), 2 and 3 the W quarks,
then three radiation slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ewpolar.generator.constants import GAMMA_T, MASS_B, MASS_T
from ewpolar.generator.decays import (
    decay_top_at_rest,
    decay_w_hadronic,
    decay_w_leptonic,
    lepton_flavours,
)
from ewpolar.generator.kinematics import Vec4, breit_wigner_mass, two_body_decay
from ewpolar.generator.record import (
    GenRecordBuilder,
    Partons,
    charged_lepton_mass,
    isr_partons,
    quark_mass,
)
from ewpolar.generator.spectra import cos_theta_quadratic, mass_above_threshold, system_momentum

__all__ = ["TTbar", "semileptonic_ttbar"]

GEN_LEPTON_SLOT = 6
PARTON_B_LEP, PARTON_B_HAD = 0, 1


@dataclass
class TTbar:
    """A generated semileptonic tt̄ chunk, ready to become a HardEvent."""

    builder: GenRecordBuilder
    lepton: Vec4
    lepton_pdg: np.ndarray
    partons: Partons
    scale: np.ndarray
    rapidity: np.ndarray


def semileptonic_ttbar(rng: np.random.Generator, n: int, *, isr_mean: float = 1.5) -> TTbar:
    """Generate ``n`` semileptonic tt̄ events (see the module docstring)."""
    sign = np.where(rng.random(n) < 0.5, 1, -1)  # charge of the leptonically decaying W
    mt1 = breit_wigner_mass(rng, n, MASS_T, GAMMA_T, MASS_T - 10 * GAMMA_T, MASS_T + 10 * GAMMA_T)
    mt2 = breit_wigner_mass(rng, n, MASS_T, GAMMA_T, MASS_T - 10 * GAMMA_T, MASS_T + 10 * GAMMA_T)
    isr = isr_partons(rng, n, isr_mean)
    rx, ry = isr.transverse_sum()
    m_tt = mass_above_threshold(rng, mt1 + mt2, 1.6, 110.0)
    y_tt = rng.standard_normal(n)
    tt = system_momentum(-rx, -ry, y_tt, m_tt)

    zeros = np.zeros(n)
    cos_t = cos_theta_quadratic(rng, 0.5, n)
    phi_t = 2.0 * np.pi * rng.random(n)
    t1_rf, t2_rf = two_body_decay(Vec4(zeros, zeros, zeros, m_tt), mt1, mt2, cos_t, phi_t,
                                  (zeros, zeros, np.ones(n)))

    flavour = lepton_flavours(rng, n)
    w1, b1, h1 = decay_top_at_rest(rng, mt1, sign)
    lep = decay_w_leptonic(rng, w1, sign, h1, flavour)
    w2, b2, h2 = decay_top_at_rest(rng, mt2, -sign)
    had = decay_w_hadronic(rng, w2, -sign, h2)

    def to_lab(v: Vec4, top_rf: Vec4) -> Vec4:
        return v.boost_from(top_rf).boost_from(tt)

    t1, t2 = t1_rf.boost_from(tt), t2_rf.boost_from(tt)
    w1_lab, b1_lab = to_lab(w1, t1_rf), to_lab(b1, t1_rf)
    l_lab, nu_lab = to_lab(lep.first, t1_rf), to_lab(lep.second, t1_rf)
    w2_lab, b2_lab = to_lab(w2, t2_rf), to_lab(b2, t2_rf)
    q1_lab, q2_lab = to_lab(had.first, t2_rf), to_lab(had.second, t2_rf)

    gen = GenRecordBuilder()
    gen.add(t1, 6 * sign, mt1, status=62)
    gen.add(t2, -6 * sign, mt2, status=62)
    gen.add(w1_lab, 24 * sign, w1.mass, mother=0, status=22)
    gen.add(b1_lab, 5 * sign, MASS_B, mother=0, status=23)
    gen.add(w2_lab, -24 * sign, w2.mass, mother=1, status=22)
    gen.add(b2_lab, -5 * sign, MASS_B, mother=1, status=23)
    gen.add(l_lab, lep.first_pdg, charged_lepton_mass(lep.first_pdg), mother=2, status=1)
    gen.add(nu_lab, lep.second_pdg, 0.0, mother=2, status=1)
    gen.add(q1_lab, had.first_pdg, quark_mass(had.first_pdg), mother=4, status=23)
    gen.add(q2_lab, had.second_pdg, quark_mass(had.second_pdg), mother=4, status=23)

    hard_partons = Partons.from_slots([b1_lab, b2_lab, q1_lab, q2_lab],
                                      [5 * sign, -5 * sign, had.first_pdg, had.second_pdg])
    return TTbar(
        builder=gen,
        lepton=l_lab,
        lepton_pdg=lep.first_pdg,
        partons=Partons.concat([hard_partons, isr]),
        scale=m_tt,
        rapidity=y_tt,
    )
