"""Event-level quantities that region cuts and histograms use.

:class:`EventVariables` wraps the selected :class:`~selections.objects.Objects` of
one chunk and computes each quantity on first use, with the numba kernels of
:mod:`analysis.observables`. Every quantity is a float64 numpy array with one
entry per event; an event without the objects a quantity needs (e.g. m_jj with
fewer than two jets) gets NaN, so every cut on it fails (NaN compares false).

Pair quantities use the two leading (highest-pT) objects: m_ℓℓ and ΔR_ℓℓ of the
two leading leptons, m_jj and |Δy_jj| of the two leading jets, m_bb of the two
leading b-jets.
"""

from __future__ import annotations

from functools import cached_property

import awkward as ak
import numpy as np

from analysis import observables as obs
from selections.objects import Objects

__all__ = ["Z_MASS_GEV", "EventVariables"]

#: Z-boson mass for the Z veto and the WZ control region, GeV (PDG).
Z_MASS_GEV = 91.1876


def _counts(collection: ak.Array) -> np.ndarray:
    return np.asarray(ak.to_numpy(ak.num(collection, axis=1)), dtype=np.int64)


def _nth(collection: ak.Array, n: int, field: str) -> np.ndarray:
    padded = ak.pad_none(collection[field], n + 1, axis=1, clip=True)[:, n]
    return np.asarray(ak.to_numpy(ak.fill_none(padded, np.nan)), dtype=np.float64)


class EventVariables:
    """Lazily computed event-level quantities of one chunk for one JES variation."""

    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._p4: dict[tuple[str, int], tuple[np.ndarray, ...]] = {}

    def _nth_p4(self, kind: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = (kind, n)
        if key not in self._p4:
            self._p4[key] = obs.nth_pxpypze(getattr(self.objects, kind), n)
        return self._p4[key]  # type: ignore[return-value]

    # -- leptons ---------------------------------------------------------------
    @cached_property
    def n_leptons(self) -> np.ndarray:
        """Number of selected leptons (e and μ)."""
        return _counts(self.objects.leptons)

    @cached_property
    def same_sign(self) -> np.ndarray:
        """True when the event has at least two selected leptons, all of one charge."""
        charge = self.objects.leptons.charge
        total = np.asarray(ak.to_numpy(ak.sum(charge, axis=1)))
        return (self.n_leptons >= 2) & (np.abs(total) == self.n_leptons)

    def lepton_p4(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(px, py, pz, E) of the n-th leading lepton (NaN where absent), GeV."""
        return self._nth_p4("leptons", n)

    def lepton(self, n: int, field: str) -> np.ndarray:
        """One field ("pt", "eta", "phi", "charge", "pdgId") of the n-th lepton, NaN where absent."""
        return _nth(self.objects.leptons, n, field)

    @cached_property
    def mll(self) -> np.ndarray:
        """Invariant mass of the two leading leptons, GeV."""
        return obs.mll(*self.lepton_p4(0), *self.lepton_p4(1))

    @cached_property
    def dr_ll(self) -> np.ndarray:
        """ΔR = √(Δη² + Δφ²) of the two leading leptons."""
        deta = self.lepton(0, "eta") - self.lepton(1, "eta")
        dphi = np.abs(self.lepton(0, "phi") - self.lepton(1, "phi"))
        dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
        return np.hypot(deta, dphi)

    @cached_property
    def is_ee(self) -> np.ndarray:
        """True when the two leading leptons are both electrons."""
        return (np.abs(self.lepton(0, "pdgId")) == 11) & (np.abs(self.lepton(1, "pdgId")) == 11)

    @cached_property
    def sfos_z_distance(self) -> np.ndarray:
        """Smallest |m_ℓℓ − m_Z| over same-flavour opposite-charge lepton pairs (NaN if none), GeV."""
        pairs = ak.combinations(self.objects.leptons, 2, fields=["a", "b"])
        sfos = pairs[(pairs.a.pdgId == -pairs.b.pdgId)]
        counts = ak.num(sfos, axis=1)
        a = obs.to_pxpypze(sfos.a)
        b = obs.to_pxpypze(sfos.b)
        dist = ak.unflatten(np.abs(obs.mll(*a, *b) - Z_MASS_GEV), counts)
        best = ak.fill_none(ak.min(dist, axis=1), np.nan)
        return np.asarray(ak.to_numpy(best), dtype=np.float64)

    # -- missing transverse momentum ---------------------------------------------
    @property
    def met(self) -> np.ndarray:
        """Missing transverse momentum magnitude, GeV."""
        return self.objects.met_pt

    @cached_property
    def met_pxpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(px, py) of the missing transverse momentum, GeV."""
        return self.met * np.cos(self.objects.met_phi), self.met * np.sin(self.objects.met_phi)

    # -- jets --------------------------------------------------------------------
    @cached_property
    def n_jets(self) -> np.ndarray:
        """Number of selected jets."""
        return _counts(self.objects.jets)

    def jet_p4(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(px, py, pz, E) of the n-th leading jet (NaN where absent), GeV."""
        return self._nth_p4("jets", n)

    def jet(self, n: int, field: str) -> np.ndarray:
        """One field ("pt", "eta", "phi", "mass") of the n-th leading jet, NaN where absent."""
        return _nth(self.objects.jets, n, field)

    @cached_property
    def jet1_pt(self) -> np.ndarray:
        """Leading-jet pT, GeV."""
        return self.jet(0, "pt")

    @cached_property
    def jet2_pt(self) -> np.ndarray:
        """Subleading-jet pT, GeV."""
        return self.jet(1, "pt")

    @cached_property
    def mjj(self) -> np.ndarray:
        """Invariant mass of the two leading jets, GeV."""
        return obs.mjj(*self.jet_p4(0), *self.jet_p4(1))

    @cached_property
    def dy_jj(self) -> np.ndarray:
        """|Δy| (rapidity) of the two leading jets."""
        return obs.delta_y_jj(*self.jet_p4(0), *self.jet_p4(1))

    # -- b-jets ------------------------------------------------------------------
    @cached_property
    def n_bjets(self) -> np.ndarray:
        """Number of b-tagged jets."""
        return _counts(self.objects.bjets)

    def bjet_p4(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(px, py, pz, E) of the n-th leading b-jet (NaN where absent), GeV."""
        return self._nth_p4("bjets", n)

    @cached_property
    def mbb(self) -> np.ndarray:
        """Invariant mass of the two leading b-jets (the H → bb̄ candidate), GeV."""
        return obs.pair_mass(*self.bjet_p4(0), *self.bjet_p4(1))
