"""Toy event weights: genWeight, LHEScaleWeight (9) and LHEPdfWeight (31).

genWeight
    Positive, log-normal with σ = 0.1 and mean 1 (a toy for the spread of
    generator weights); only ratios to the dataset's sum matter.

LHEScaleWeight
    The usual NanoAOD order of (μR, μF) ∈ {0.5, 1, 2}², μR outer:
    index 3·i_R + i_F with i = 0, 1, 2 for factors 0.5, 1, 2; index 4 is the
    nominal (1.0). With L = ln(Q / Q_ref) of the event's hard scale Q (the mass
    of the produced system: m_WW, m_WZ, m_tt̄, m_WH, m_Wbb),

        w(k_R, k_F) = exp(−δ_R(Q) log₂ k_R − δ_F(Q) log₂ k_F),
        δ_R = a_R (1 + s_R L),  δ_F = a_F (1 + s_F L),

    so the variations grow (or change sign) with Q and change shapes, not only
    normalisations. Weights are clipped to [0.5, 2].

LHEPdfWeight
    Index 0 is the nominal (1.0); indices 1–30 mimic the 30 symmetric Hessian
    eigenvectors of PDF4LHC15_nnlo_30 (uncertainty = √Σ_k (w_k − 1)²):

        w_k = 1 + σ_k [cos(2.4 k) + sin(1.7 k) L / 2 + cos(0.9 k + 0.5) (y² − 1) / 2],
        σ_k = a_PDF · 0.92^(k−1),

    with y the rapidity of the hard system; clipped to [0.8, 1.2].

The per-process constants (a_R, s_R, a_F, s_F, Q_ref, a_PDF) are in
:data:`THEORY_TOYS`: small μR dependence for the purely electroweak processes,
larger for QCD-induced ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["THEORY_TOYS", "TheoryToy", "gen_weights", "pdf_weights", "scale_weights"]

N_SCALE, N_PDF = 9, 31
_LOG2_FACTORS = np.array([-1.0, 0.0, 1.0])  # log2 of 0.5, 1, 2
# index 3·i_R + i_F
_LOG2_KR = np.repeat(_LOG2_FACTORS, 3)
_LOG2_KF = np.tile(_LOG2_FACTORS, 3)
_K = np.arange(1, N_PDF)
_PDF_A = np.cos(2.4 * _K)
_PDF_B = np.sin(1.7 * _K) / 2.0
_PDF_C = np.cos(0.9 * _K + 0.5) / 2.0
_PDF_DECAY = 0.92 ** (_K - 1)
_PDF_A32, _PDF_B32, _PDF_C32 = (x.astype(np.float32) for x in (_PDF_A, _PDF_B, _PDF_C))
_PDF_SIGMA32 = _PDF_DECAY.astype(np.float32)


@dataclass(frozen=True)
class TheoryToy:
    """Constants of the toy scale and PDF weights of one process (see the module docstring)."""

    a_r: float
    s_r: float
    a_f: float
    s_f: float
    q_ref: float
    a_pdf: float


THEORY_TOYS: dict[str, TheoryToy] = {
    "ssww_ew": TheoryToy(a_r=0.01, s_r=0.5, a_f=0.05, s_f=0.8, q_ref=400.0, a_pdf=0.008),
    "ssww_qcd": TheoryToy(a_r=0.15, s_r=0.3, a_f=0.04, s_f=-0.6, q_ref=350.0, a_pdf=0.010),
    "wz": TheoryToy(a_r=0.03, s_r=0.6, a_f=0.03, s_f=0.5, q_ref=350.0, a_pdf=0.008),
    "ttbar_nonprompt": TheoryToy(a_r=0.10, s_r=0.3, a_f=0.02, s_f=-1.0, q_ref=500.0, a_pdf=0.012),
    "ttbar_semileptonic": TheoryToy(a_r=0.10, s_r=0.3, a_f=0.02, s_f=-1.0, q_ref=500.0,
                                    a_pdf=0.012),
    "wh": TheoryToy(a_r=0.005, s_r=0.5, a_f=0.02, s_f=0.6, q_ref=300.0, a_pdf=0.006),
    "wbb": TheoryToy(a_r=0.12, s_r=0.3, a_f=0.03, s_f=-0.5, q_ref=300.0, a_pdf=0.010),
}


def gen_weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """Positive toy generator weights, log-normal with σ = 0.1 and mean 1."""
    return np.exp(0.1 * rng.standard_normal(n) - 0.005)


def scale_weights(q: np.ndarray, toy: TheoryToy) -> np.ndarray:
    """(n, 9) μR/μF weights relative to the nominal."""
    lq = np.log(q / toy.q_ref)
    d_r = toy.a_r * (1.0 + toy.s_r * lq)
    d_f = toy.a_f * (1.0 + toy.s_f * lq)
    w = np.exp(-d_r[:, None] * _LOG2_KR[None, :] - d_f[:, None] * _LOG2_KF[None, :])
    return np.clip(w, 0.5, 2.0)


def pdf_weights(q: np.ndarray, y: np.ndarray, toy: TheoryToy) -> np.ndarray:
    """(n, 31) float32 PDF weights: nominal then 30 Hessian-like eigenvector variations."""
    n = q.shape[0]
    lq = np.log(q / toy.q_ref).astype(np.float32)[:, None]
    y2 = (y * y - 1.0).astype(np.float32)[:, None]
    out = np.empty((n, N_PDF), dtype=np.float32)
    out[:, 0] = 1.0
    var = out[:, 1:]
    np.multiply(_PDF_B32, lq, out=var)
    var += _PDF_A32
    var += _PDF_C32 * y2
    var *= _PDF_SIGMA32 * np.float32(toy.a_pdf)
    var += np.float32(1.0)
    np.clip(var, np.float32(0.8), np.float32(1.2), out=var)
    return out
