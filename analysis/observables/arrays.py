"""Observables of whole events: awkward candidates in, numpy arrays aligned with the events out.

The compiled kernels of :mod:`ewpolar.observables.kernels` take flat float64
arrays. The functions here sit one step above them:

* :func:`to_pxpypze` and :func:`nth_pxpypze` read awkward records, coffea
  candidates (``pt, eta, phi[, mass]``, e.g. ``events.Muon`` or
  ``events.GenPart``) or `vector` Momentum4D records in any coordinate system,
  into the ``(px, py, pz, e)`` arrays the kernels take;
  :func:`to_momentum4d` goes the other way, to `vector` Momentum4D records
  whose methods (``mass``, ``boostCM_of_p4``, ``deltaR``, ...) are convenient
  for interactive work.
* :func:`lepton_pair_cos_theta_star` (ssWW, from generator neutrinos),
  :func:`lepton_pair_cos_theta_star_p4` (ssWW, from the missing p_T) and
  :func:`wh_cos_delta_plus_p4` (WH) build the W and Higgs candidates of an
  event and call the kernels; the processors call the ``_p4`` forms on the
  four-vectors they already hold.

The numbers always come from the kernels (pt/eta/phi/mass columns are
converted by :func:`~ewpolar.observables.kernels.ptetaphim_to_pxpypze`), so a
helper and a processor agree bit for bit on the same inputs; `vector` is used
for coordinate systems that have no fast path and to return records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import awkward as ak
import numpy as np
import vector
from ewpolar.observables.kernels import (
    MW_GEV,
    NEUTRINO_PZ_RULES,
    FourArrays,
    cos_delta_plus,
    cos_theta_star,
    neutrino_four_vector,
    neutrino_pz,
    ptetaphim_to_pxpypze,
)
from vector.backends.awkward import VectorAwkward4D

__all__ = [
    "lepton_pair_cos_theta_star",
    "lepton_pair_cos_theta_star_p4",
    "nth_pxpypze",
    "to_momentum4d",
    "to_pxpypze",
    "wh_cos_delta_plus_p4",
]

#: Field names converted by the pt/eta/phi/mass kernel: coffea candidates, and
#: `vector` records, which store pt, eta, phi, mass as rho, eta, phi, tau.
_PT_ETA_PHI = (("pt", "eta", "phi", "mass"), ("rho", "eta", "phi", "tau"))
#: Cartesian field names read directly (coffea, `vector` and plain records).
_CARTESIAN = (("px", "py", "pz", "E"), ("x", "y", "z", "t"), ("px", "py", "pz", "energy"))


def _column(records: ak.Array, name: str) -> np.ndarray:
    """One field of a 1-D record array as numpy (a view when there is no None); None -> nan."""
    col = records[name]
    if isinstance(col.layout, ak.contents.NumpyArray) or not col.layout.is_option:
        return ak.to_numpy(col)
    return np.asarray(ak.to_numpy(ak.fill_none(col, np.nan)), dtype=np.float64)


def _records_pxpypze(records: ak.Array) -> FourArrays:
    """(px, py, pz, e) of a 1-D record array; None records give nan."""
    fields = set(ak.fields(records))
    for names in _PT_ETA_PHI:
        if set(names[:3]) <= fields:
            cols = [_column(records, f) for f in names[:3]]
            mass = names[3]
            cols.append(_column(records, mass) if mass in fields else np.zeros(len(records)))
            return ptetaphim_to_pxpypze(*cols)
    for names in _CARTESIAN:
        if set(names) <= fields:
            return tuple(np.array(_column(records, f), dtype=np.float64) for f in names)  # type: ignore[return-value]
    if isinstance(records, VectorAwkward4D):
        # other coordinate systems of vector (rho, phi, z, t; x, y, eta, tau; ...)
        return tuple(  # type: ignore[return-value]
            np.asarray(ak.to_numpy(ak.fill_none(getattr(records, c), np.nan)), dtype=np.float64)
            for c in ("x", "y", "z", "t")
        )
    raise TypeError(
        "candidates need fields pt, eta, phi[, mass], px, py, pz, E or x, y, z, t, or "
        f"vector Momentum4D behaviour; got {sorted(fields)}"
    )


def to_pxpypze(candidates: ak.Array) -> FourArrays:
    """Candidates as four float64 numpy arrays px, py, pz, E (GeV).

    Args:
        candidates: Awkward record array with fields ``pt, eta, phi[, mass]``
            (coffea ``PtEtaPhiMCandidate``; missing ``mass`` means massless),
            ``px, py, pz, E`` or ``x, y, z, t``, or `vector` Momentum4D records in
            any coordinate system. One record per event (``n * Record``, None
            allowed) or a jagged array (``n * var * Record``), which is flattened.

    Returns:
        ``(px, py, pz, e)``, GeV: one entry per event for 1-D input (nan for
        None), one per candidate for jagged input
        (``ak.unflatten(x, ak.num(candidates))`` restores the event structure).

    Raises:
        TypeError: Records without momentum fields.
        ValueError: Input that is neither 1-D nor jagged.
    """
    arr = ak.Array(candidates)
    if arr.ndim == 2:
        arr = ak.flatten(arr, axis=1)
    elif arr.ndim != 1:
        raise ValueError(f"expected 1-D or jagged candidates, got {arr.ndim} dimensions")
    return _records_pxpypze(arr)


def nth_pxpypze(candidates: ak.Array, n: int = 0) -> FourArrays:
    """The n-th candidate of each event (0 = leading in the array's order) as px, py, pz, E.

    Args:
        candidates: Jagged record array (``n_events * var * Record``), fields as
            in :func:`to_pxpypze`. NanoAOD collections are p_T-ordered.
        n: Index within the event.

    Returns:
        ``(px, py, pz, e)`` float64 arrays of length n_events, GeV; nan for
        events with fewer than ``n + 1`` candidates.
    """
    arr = ak.Array(candidates)
    if arr.ndim != 2:
        raise ValueError(f"expected jagged candidates (n * var * record), got {arr.type}")
    counts = np.asarray(ak.to_numpy(ak.fill_none(ak.num(arr, axis=1), 0)), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    present = counts > n
    values = _records_pxpypze(ak.flatten(arr, axis=1)[starts[present] + n])
    out = tuple(np.full(len(counts), np.nan) for _ in range(4))
    for o, v in zip(out, values, strict=True):
        o[present] = v
    return out  # type: ignore[return-value]


def to_momentum4d(candidates: ak.Array | Sequence[Any]) -> ak.Array:
    """Candidates or ``(px, py, pz, e)`` arrays as `vector` Momentum4D records (GeV).

    Args:
        candidates: Anything :func:`to_pxpypze` reads (1-D or jagged; the
            structure is kept), or a tuple of four arrays ``(px, py, pz, e)``
            such as :func:`nth_pxpypze` returns.

    Returns:
        An awkward array of Momentum4D records with fields ``px, py, pz, E``
        and vector's behaviour (``.mass``, ``.boostCM_of_p4(...)``, ``.deltaR(...)``,
        sums with ``+``), without registering vector globally.

    Example:
        >>> import numpy as np
        >>> v = to_momentum4d((np.array([3.0]), np.zeros(1), np.array([4.0]), np.array([13.0])))
        >>> float(v.mass[0])
        12.0
    """
    if isinstance(candidates, tuple) and len(candidates) == 4:
        px, py, pz, e = (np.asarray(c, dtype=np.float64) for c in candidates)
        return vector.zip({"px": px, "py": py, "pz": pz, "E": e})
    arr = ak.Array(candidates)
    px, py, pz, e = to_pxpypze(arr)
    flat = vector.zip({"px": px, "py": py, "pz": pz, "E": e})
    if arr.ndim == 2:
        counts = ak.to_numpy(ak.fill_none(ak.num(arr, axis=1), 0))
        return ak.unflatten(flat, counts)
    return flat


def _add(a: FourArrays, b: FourArrays) -> FourArrays:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3])


def _valid(*vectors: FourArrays) -> np.ndarray:
    """Events where every given four-vector is present (missing ones are nan)."""
    ok = np.ones(len(vectors[0][0]), dtype=bool)
    for v in vectors:
        ok &= ~np.isnan(v[3])
    return ok


def _pair_cos_theta_star(l1: FourArrays, l2: FourArrays, n1: FourArrays, n2: FourArrays,
                         ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w1 = _add(l1, n1)
    w2 = _add(l2, n2)
    frame = _add(w1, w2)
    c1 = cos_theta_star(*l1, *w1, *frame)
    c2 = cos_theta_star(*l2, *w2, *frame)
    return np.where(ok, c1, np.nan), np.where(ok, c2, np.nan)


def lepton_pair_cos_theta_star(
    leptons: ak.Array, neutrinos: ak.Array
) -> tuple[np.ndarray, np.ndarray]:
    """cos θ* of the two leading leptons in the WW rest frame, from their neutrinos (docs/physics.md §2).

    W_i = ℓ_i + ν_i, F = W_1 + W_2, ``cos θ*_i = cos_theta_star(ℓ_i, W_i, F)``,
    with ``neutrinos[:, i]`` the partner of ``leptons[:, i]`` (e.g. generator
    leptons and neutrinos). For reconstructed events, where only the missing
    p_T is known, see :func:`lepton_pair_cos_theta_star_p4`.

    Args:
        leptons: Jagged lepton candidates (fields as in :func:`to_pxpypze`); the
            first two are used.
        neutrinos: Jagged neutrinos, ordered to match the leptons.

    Returns:
        ``(cos θ*_1, cos θ*_2)``, float64 arrays aligned with the events; nan
        for events with fewer than two leptons or two neutrinos. Kernel
        conventions (see :func:`~ewpolar.observables.kernels.cos_theta_star`)
        apply to the others.
    """
    l1, l2 = nth_pxpypze(leptons, 0), nth_pxpypze(leptons, 1)
    n1, n2 = nth_pxpypze(neutrinos, 0), nth_pxpypze(neutrinos, 1)
    return _pair_cos_theta_star(l1, l2, n1, n2, _valid(l1, l2, n1, n2))


def lepton_pair_cos_theta_star_p4(
    l1: FourArrays,
    l2: FourArrays,
    met_px: np.ndarray,
    met_py: np.ndarray,
    *,
    mw: float = MW_GEV,
) -> tuple[np.ndarray, np.ndarray]:
    """cos θ* of two leptons in the WW rest frame with the neutrinos from the missing p_T (ssWW).

    The two neutrinos are not measurable; this proxy (docs/physics.md §1a, §2) gives
    each half of the missing p_T and solves its p_z from the W-mass constraint
    (:func:`~ewpolar.observables.kernels.neutrino_pz`, rule ``"min_abs"``); then
    W_i = ℓ_i + ν_i, F = W_1 + W_2 and ``cos θ*_i = cos_theta_star(ℓ_i, W_i, F)``.
    It is an approximation, not the generator-level angle.

    Args:
        l1, l2: (px, py, pz, E) of the leading and subleading lepton (nan where
            absent), GeV.
        met_px, met_py: Missing transverse momentum, GeV.
        mw: W mass of the neutrino p_z constraint, GeV.

    Returns:
        ``(cos θ*_1, cos θ*_2)``, float64; nan where a lepton or the missing p_T
        is missing.
    """
    mx, my = 0.5 * met_px, 0.5 * met_py
    n1 = neutrino_four_vector(mx, my, neutrino_pz(*l1, mx, my, mw=mw, rule="min_abs"))
    n2 = neutrino_four_vector(mx, my, neutrino_pz(*l2, mx, my, mw=mw, rule="min_abs"))
    return _pair_cos_theta_star(l1, l2, n1, n2, _valid(l1, l2) & ~np.isnan(mx))


def wh_cos_delta_plus_p4(
    lepton: FourArrays,
    b1: FourArrays,
    b2: FourArrays,
    met_px: np.ndarray,
    met_py: np.ndarray,
    rule: str = "wh_beta",
    *,
    mw: float = MW_GEV,
) -> np.ndarray:
    """cos δ⁺ per WH event (docs/physics.md §1b) from the lepton, the two leading b-jets and the MET.

    H = b1 + b2; the neutrino p_z is solved with
    :func:`~ewpolar.observables.kernels.neutrino_pz` (``rule``, H as the Higgs
    candidate); then :func:`~ewpolar.observables.kernels.cos_delta_plus` of ℓ,
    ν and H. Multiply by the lepton charge for the binned Q_ℓ · cos δ⁺.

    Args:
        lepton, b1, b2: (px, py, pz, E) of the lepton and the two leading b-jets
            (nan where absent), GeV; :func:`nth_pxpypze` gives them from
            candidates.
        met_px, met_py: Missing transverse momentum, GeV.
        rule: Neutrino p_z rule, one of ``NEUTRINO_PZ_RULES``.
        mw: W mass of the constraint, GeV.

    Returns:
        cos δ⁺, float64, aligned with the events; nan where the lepton, a b-jet
        or the missing p_T is missing.

    Raises:
        ValueError: Unknown ``rule``.
    """
    if rule not in NEUTRINO_PZ_RULES:
        raise ValueError(
            f"unknown neutrino_pz rule {rule!r}; valid rules: {', '.join(NEUTRINO_PZ_RULES)}"
        )
    higgs = _add(b1, b2)
    h_px, h_py, h_pz, h_e = higgs
    pz = neutrino_pz(*lepton, met_px, met_py, mw=mw, rule=rule,
                     h_px=h_px, h_py=h_py, h_pz=h_pz, h_e=h_e)
    nu = neutrino_four_vector(met_px, met_py, pz)
    ok = _valid(lepton, higgs) & ~np.isnan(met_px) & ~np.isnan(met_py)
    return np.where(ok, cos_delta_plus(*lepton, *nu, *higgs), np.nan)
