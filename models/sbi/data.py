"""Joint quantities and samples of the SBI study: WH events with their CP weights.

Each generated WH event carries three weights, sm, int and quad (``CPWeight_*``),
with w(c) = sm + c·int + c²·quad; from them come the joint likelihood ratio and
joint score (docs/physics.md §3) and the weighted training rows of the
parameterised ratio estimators (see :mod:`ewpolar.models.sbi`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.models.features import WH_FEATURES, FeatureTable, build_features

__all__ = [
    "PARAMETER",
    "CPSample",
    "cp_weight",
    "joint_likelihood_ratio",
    "joint_score",
    "ratio_training_data",
    "wh_sample",
]

log = logging.getLogger(__name__)

#: name of the coupling (the last input of the parameterised estimators)
PARAMETER = "c_HWtilde"
_CHUNK = 50_000


# --------------------------------------------------------------------------- joint quantities


def cp_weight(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c: float) -> np.ndarray:
    """w(c) = sm + c·int + c²·quad per event."""
    return sm + c * int_ + c * c * quad


def joint_likelihood_ratio(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c0: float,
                           c1: float) -> np.ndarray:
    """r(x, z|c0, c1) = [w(c0)/σ(c0)] / [w(c1)/σ(c1)], σ summed over the given events.

    >>> sm, i, q = np.array([1.0, 1.0]), np.array([0.5, -0.5]), np.array([0.1, 0.1])
    >>> joint_likelihood_ratio(sm, i, q, 0.0, 0.0).tolist()
    [1.0, 1.0]
    """
    w0, w1 = cp_weight(sm, int_, quad, c0), cp_weight(sm, int_, quad, c1)
    return (w0 / w0.sum()) / (w1 / w1.sum())


def joint_score(sm: np.ndarray, int_: np.ndarray, quad: np.ndarray, c: float) -> np.ndarray:
    """t(x, z|c) = (int + 2c·quad)/w(c) − (Σint + 2cΣquad)/σ(c), σ summed over the given events."""
    w = cp_weight(sm, int_, quad, c)
    return (int_ + 2 * c * quad) / w - (int_.sum() + 2 * c * quad.sum()) / w.sum()


# --------------------------------------------------------------------------- samples


@dataclass
class CPSample:
    """Selected events with features and CP weights.

    Attributes:
        names: feature names (columns of ``features``).
        features: float32 [n, d].
        sm, int_, quad: float64 [n] weights (w(c) = sm + c·int + c²·quad).
        events_per_weight: expected events per unit of weight
            (L · σ_gen / Σ_gen sm, divided by the fraction of the selected events
            this sample holds), so ν(c) = events_per_weight · Σ w(c).
    """

    names: tuple[str, ...]
    features: np.ndarray
    sm: np.ndarray
    int_: np.ndarray
    quad: np.ndarray
    events_per_weight: float

    def __len__(self) -> int:
        return self.features.shape[0]

    def weights(self, c: float) -> np.ndarray:
        """w(c) per event."""
        return cp_weight(self.sm, self.int_, self.quad, c)

    def expected_weights(self, c: float) -> np.ndarray:
        """Expected events per event, W_e(c)."""
        return self.events_per_weight * self.weights(c)

    def nu(self, c: float | np.ndarray) -> float | np.ndarray:
        """Expected number of selected events ν(c)."""
        c = np.asarray(c, dtype=np.float64)
        value = self.events_per_weight * (self.sm.sum() + c * self.int_.sum()
                                          + c * c * self.quad.sum())
        return float(value) if value.ndim == 0 else value

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """float32 [n, k] of the named features."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise InputError(f"features {missing} are not in the sample ({', '.join(self.names)})")
        return np.ascontiguousarray(self.features[:, [self.names.index(n) for n in names]])

    def split(self, test_fraction: float, seed: int) -> tuple[CPSample, CPSample]:
        """Random (train, test) split; each part's ``events_per_weight`` is rescaled."""
        if not 0.0 < test_fraction < 1.0:
            raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
        n = len(self)
        order = np.random.default_rng(seed).permutation(n)
        n_test = min(max(1, round(test_fraction * n)), n - 1)
        return self._take(np.sort(order[n_test:])), self._take(np.sort(order[:n_test]))

    def _take(self, idx: np.ndarray) -> CPSample:
        return CPSample(self.names, self.features[idx], self.sm[idx], self.int_[idx],
                        self.quad[idx], self.events_per_weight * len(self) / max(idx.size, 1))


def wh_sample(config: AnalysisConfig, events: int, seed: int, *, dataset: str | None = None,
              region: str = "signal", names: Sequence[str] | None = None) -> CPSample:
    """Generate ``events`` WH events (toy generator), select ``region``, build features.

    Args:
        config: the WH config (luminosity, cross section, object and region cuts).
        events: generated events (before selection), made in chunks of 50 000
            from one random stream seeded with ``seed``.
        dataset: the signal sample (default: the config's first ``kind: signal``).
        names: features (default: :data:`~ewpolar.models.features.WH_FEATURES`).

    Raises:
        ConfigError: not a WH config, or no signal sample.
        InputError: fewer than 100 events pass the selection.
    """
    from ewpolar.generator import simulate

    if config.channel != "wh":
        raise ConfigError(f"{config.source or 'config'}: SBI needs the WH config, "
                          f"got channel '{config.channel}'")
    if dataset is None:
        dataset = next((d for d, s in config.samples.items() if s.kind == "signal"), None)
        if dataset is None:
            raise ConfigError(f"{config.source or 'config'}: samples: no signal sample")
    sample = config.samples.get(dataset)
    if sample is None or sample.xsec_fb is None:
        raise ConfigError(f"{config.source or 'config'}: samples.{dataset}: needs xsec_fb")
    names = tuple(WH_FEATURES if names is None else names)
    rng = np.random.default_rng(seed)
    tables: list[FeatureTable] = []
    sum_sm = 0.0
    done = 0
    while done < events:
        m = min(_CHUNK, events - done)
        branches = simulate(config, dataset, m, rng)
        if "CPWeight_sm" not in branches:
            raise InputError(f"dataset '{dataset}' has no CPWeight_* branches")
        sum_sm += float(np.sum(branches["CPWeight_sm"], dtype=np.float64))
        tables.append(build_features(branches, config, region=region, names=names))
        done += m
    features = np.concatenate([t.values for t in tables])
    if features.shape[0] < 100:
        raise InputError(f"only {features.shape[0]} of {events} generated events pass region "
                         f"'{region}'; generate more events")
    cp = {k: np.concatenate([t.weights[f"CPWeight_{k}"] for t in tables])
          for k in ("sm", "int", "quad")}
    per_weight = config.luminosity_fb * float(sample.xsec_fb) / sum_sm
    log.info("WH sample: %d of %d events selected, ν(SM) = %.1f", features.shape[0], events,
             per_weight * cp["sm"].sum())
    return CPSample(names, features, cp["sm"], cp["int"], cp["quad"], per_weight)


def ratio_training_data(sample: CPSample, inputs: Sequence[str], c_max: float, *,
                        draws: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows for the parameterised ratio estimators (see the module docstring).

    Returns:
        ``features`` (inputs, then c), ``labels``, ``weights``, ``joint_ratio``
        r(x, z|c, 0), ``joint_score`` t(x, z|c) and ``pair`` per row (the two
        rows of one event and one drawn c, label 0 and label 1, share a ``pair``).
    """
    x = sample.columns(inputs)
    rng = np.random.default_rng(seed)
    sigma0 = sample.sm.sum()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                          ("features", "labels", "weights", "joint_ratio",
                                           "joint_score", "pair")}
    for draw in range(draws):
        c = rng.uniform(-c_max, c_max, size=len(sample))
        w_c = sample.sm + c * sample.int_ + c * c * sample.quad
        # σ(c) for each event's own c: Σ sm + c Σ int + c² Σ quad over the sample
        sigma_c = sigma0 + c * sample.int_.sum() + c * c * sample.quad.sum()
        p0 = w_c / sigma_c
        p1 = sample.sm / sigma0
        ratio = p0 / p1
        score = ((sample.int_ + 2 * c * sample.quad) / w_c
                 - (sample.int_.sum() + 2 * c * sample.quad.sum()) / sigma_c)
        rows = np.column_stack([x, c]).astype(np.float32)
        for label, weight in ((0.0, p0), (1.0, p1)):
            parts["features"].append(rows)
            parts["labels"].append(np.full(len(sample), label))
            parts["weights"].append(weight)
            parts["joint_ratio"].append(ratio)
            parts["joint_score"].append(score)
            parts["pair"].append(draw * len(sample) + np.arange(len(sample)))
    return {k: np.concatenate(v) for k, v in parts.items()}
