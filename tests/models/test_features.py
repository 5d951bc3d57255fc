"""The feature registry: its lab-frame and WW-frame angles, and what a feature table accepts."""

from __future__ import annotations

import numpy as np
import pytest
from ewpolar.core.config import load_config
from ewpolar.core.errors import InputError
from ewpolar.generator import simulate
from ewpolar.models.features import FEATURES, FeatureContext, build_features


class _Variables:
    """The few event variables the W-frame features read, from given four-vectors."""

    def __init__(self, lep, met_xy, b1, b2):
        self._lep, self.met_pxpy, self._b = lep, met_xy, (b1, b2)

    def lepton_p4(self, n):
        return self._lep

    def bjet_p4(self, n):
        return self._b[n]


def _p4(rng, n, mass):
    px, py, pz = rng.normal(0.0, 60.0, (3, n))
    return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + mass**2)


def _lab_cos_theta_star(lep, w):
    """cos of the angle between the lepton in the W rest frame and the W flight direction,
    written out with the Lorentz boost of the lepton's momentum (c = 1)."""
    p_l, p_w = np.stack(lep[:3]), np.stack(w[:3])
    beta = p_w / w[3]
    b2 = np.sum(beta**2, axis=0)
    gamma = 1.0 / np.sqrt(1.0 - b2)
    bp = np.sum(beta * p_l, axis=0)
    p_rest = p_l + ((gamma - 1.0) * bp / b2 - gamma * lep[3]) * beta
    return np.sum(p_rest * p_w, axis=0) / (np.linalg.norm(p_rest, axis=0)
                                           * np.linalg.norm(p_w, axis=0))


def test_cos_theta_star_lab_is_the_angle_against_the_w_flight_direction():
    rng = np.random.default_rng(4)
    n = 500
    lep = _p4(rng, n, 0.0)
    met_xy = tuple(rng.normal(0.0, 40.0, (2, n)))
    ctx = FeatureContext(None, _Variables(lep, met_xy, _p4(rng, n, 4.8), _p4(rng, n, 4.8)))
    got = FEATURES["cos_theta_star_lab"](ctx)
    w = tuple(a + b for a, b in zip(lep, ctx.neutrino, strict=True))
    want = _lab_cos_theta_star(lep, w)
    ok = np.isfinite(want)
    assert ok.sum() > 0.9 * n
    np.testing.assert_allclose(got[ok], want[ok], atol=1e-9)


@pytest.fixture(scope="module")
def ssww_branches():
    cfg = load_config("ssww")
    return cfg, simulate(cfg, "ssww_LL", 1500, np.random.default_rng(2))


def test_the_two_angles_differ(ssww_branches):
    """``cos_theta_star`` (each lepton, WW frame) and ``cos_theta_star_lab`` are different numbers."""
    cfg, branches = ssww_branches
    lab = build_features(branches, cfg, names=("cos_theta_star_lab",)).column("cos_theta_star_lab")
    assert len(lab) > 100
    assert np.all(np.abs(lab) <= 1.0)
    from ewpolar.models.features import events_from_branches
    from ewpolar.selections.objects import build_objects
    from ewpolar.selections.variables import EventVariables

    variables = EventVariables(build_objects(events_from_branches(branches), cfg.objects))
    ctx = FeatureContext(None, variables, cfg.regions["signal"])
    ww = FEATURES["cos_theta_star"](ctx)
    lab_all = FEATURES["cos_theta_star_lab"](ctx)
    both = np.isfinite(ww[:, 0]) & np.isfinite(lab_all)
    assert both.sum() > 100
    assert np.mean(np.abs(ww[both, 0] - lab_all[both])) > 0.05


def test_per_lepton_features_are_not_table_columns(ssww_branches):
    cfg, branches = ssww_branches
    with pytest.raises(InputError, match="'cos_theta_star' has 2 values per event") as err:
        build_features(branches, cfg, names=("mjj", "cos_theta_star"))
    assert "\n" not in str(err.value)


def test_unknown_feature_lists_the_known_ones(ssww_branches):
    cfg, branches = ssww_branches
    with pytest.raises(InputError, match="unknown features") as err:
        build_features(branches, cfg, names=("cos_theta",))
    assert "cos_theta_star_lab" in str(err.value)
