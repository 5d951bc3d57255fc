"""Backwards elimination of classifier inputs, judged by the cross-validated AUC.

Start from all inputs. At each iteration, rank the current inputs by importance,
drop the least important one and cross-validate again with the rest. Stop when
``min_inputs`` remain or when the AUC falls more than ``tolerance`` below the AUC
with all inputs (that last drop is recorded but not accepted).

Two importance measures:

- ``"shuffle"``: permutation importance on held-out data: the AUC drop of each
  fold model on its own held-out fold when one input column is shuffled. One
  training per iteration; fast.
- ``"retrain"``: the AUC drop when the network is retrained without the input.
  One cross-validation per input per iteration; slow, but finds inputs that are
  redundant with others (shuffling one of two copies still hurts a network that
  uses both; retraining without it does not).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ewpolar.models.training.crossval import CrossValidationResult, cross_validate
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.metrics import weighted_roc_auc
from ewpolar.models.training.mlp import MLPConfig

__all__ = [
    "EliminationResult",
    "EliminationStep",
    "backward_elimination",
    "permutation_importance",
    "plot_elimination",
    "save_elimination_plot",
]

log = logging.getLogger(__name__)

Mode = Literal["shuffle", "retrain"]


@dataclass(frozen=True)
class EliminationStep:
    """One iteration of the elimination.

    Attributes:
        iteration: 0 for all inputs, then 1, 2, ...
        inputs: inputs the network was cross-validated with.
        auc: mean held-out AUC with these inputs.
        dropped: the input removed relative to the previous step (None at 0).
        importances: importance of each input of the previous step, which
            chose ``dropped`` (empty at 0).
        accepted: False for the final step that lost more than the tolerance.
    """

    iteration: int
    inputs: tuple[str, ...]
    auc: float
    dropped: str | None
    importances: dict[str, float] = field(default_factory=dict)
    accepted: bool = True


@dataclass
class EliminationResult:
    """History of a backwards elimination.

    Attributes:
        mode: ``"shuffle"`` or ``"retrain"``.
        tolerance: largest accepted AUC loss relative to all inputs.
        steps: one entry per iteration.
    """

    mode: str
    tolerance: float
    steps: list[EliminationStep]

    @property
    def baseline_auc(self) -> float:
        """AUC with all inputs."""
        return self.steps[0].auc

    @property
    def selected_inputs(self) -> tuple[str, ...]:
        """Inputs of the last accepted step."""
        return [s for s in self.steps if s.accepted][-1].inputs

    @property
    def dropped(self) -> list[str]:
        """Inputs removed, in order (accepted steps only)."""
        return [s.dropped for s in self.steps if s.accepted and s.dropped is not None]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {
            "mode": self.mode,
            "tolerance": self.tolerance,
            "selected_inputs": list(self.selected_inputs),
            "steps": [asdict(s) | {"inputs": list(s.inputs)} for s in self.steps],
        }


def permutation_importance(
    cv: CrossValidationResult,
    training_set: TrainingSet,
    *,
    seed: int = 0,
    n_repeats: int = 1,
) -> dict[str, float]:
    """AUC drop of each input when its column is shuffled in the held-out folds.

    Each fold model is scored on its own held-out fold, once as is and once per
    input with that column permuted among the fold's events; the drops are
    averaged over folds and repeats.

    Args:
        cv: cross-validation whose models are probed.
        training_set: the events it was trained on (same inputs).
        seed: seed of the permutations.
        n_repeats: permutations per input and fold.

    Returns:
        ``{input: mean AUC drop}``; near 0 (or negative) for useless inputs.
    """
    if tuple(training_set.inputs) != tuple(cv.inputs):
        raise ValueError("training set inputs differ from the cross-validation's")
    rng = np.random.default_rng(seed)
    fold_of = training_set.folds(cv.k)
    drops = {name: [] for name in training_set.inputs}
    for fold, model in zip(cv.folds, cv.models, strict=True):
        held = fold_of == fold
        x = training_set.features[held]
        y = training_set.labels[held]
        w = training_set.weights[held]
        base = weighted_roc_auc(model.predict_proba(x), y, w)
        for j, name in enumerate(training_set.inputs):
            for _ in range(n_repeats):
                shuffled = x.copy()
                shuffled[:, j] = x[rng.permutation(x.shape[0]), j]
                drops[name].append(base - weighted_roc_auc(model.predict_proba(shuffled), y, w))
    return {name: float(np.mean(values)) for name, values in drops.items()}


def backward_elimination(
    training_set: TrainingSet,
    config: MLPConfig,
    *,
    mode: Mode = "shuffle",
    k: int = 5,
    n_folds: int | None = None,
    min_inputs: int = 1,
    tolerance: float = 0.005,
    seed: int = 0,
    n_repeats: int = 1,
    on_step: Callable[[EliminationStep], None] | None = None,
    on_cross_validation: Callable[[tuple[str, ...]], None] | None = None,
) -> EliminationResult:
    """Drop the least important input repeatedly while the AUC holds.

    Args:
        training_set: events with all candidate inputs.
        config: network and training settings (fixed during elimination).
        mode: ``"shuffle"`` (permutation importance) or ``"retrain"``.
        k: number of folds.
        n_folds: cross-validate only the first n folds (default: all k).
        min_inputs: stop when this many inputs remain.
        tolerance: stop when the AUC falls more than this below the AUC with
            all inputs; the step that did so is kept with ``accepted=False``.
        seed: seed of the permutations (``"shuffle"`` mode).
        n_repeats: permutations per input and fold (``"shuffle"`` mode).
        on_step: called with each :class:`EliminationStep` once it is done.
        on_cross_validation: called with the inputs of each cross-validation before it
            starts (progress reporting).

    Returns:
        The history; ``result.selected_inputs`` is the chosen set.
    """
    if mode not in ("shuffle", "retrain"):
        raise ValueError(f"mode must be 'shuffle' or 'retrain', got {mode!r}")
    if min_inputs < 1:
        raise ValueError("min_inputs must be at least 1")
    folds = range(k if n_folds is None else int(n_folds))

    def evaluate(names: Sequence[str]) -> tuple[CrossValidationResult, TrainingSet]:
        if on_cross_validation is not None:
            on_cross_validation(tuple(names))
        subset = training_set.select_inputs(names)
        return cross_validate(subset, config, k=k, folds=folds), subset

    inputs = tuple(training_set.inputs)
    cv, subset = evaluate(inputs)
    baseline = cv.mean_auc
    steps = [EliminationStep(0, inputs, baseline, None)]
    log.info("all %d inputs: AUC %.4f", len(inputs), baseline)
    if on_step is not None:
        on_step(steps[0])
    iteration = 0
    while len(inputs) > min_inputs:
        iteration += 1
        if mode == "shuffle":
            importances = permutation_importance(
                cv, subset, seed=seed + iteration, n_repeats=n_repeats
            )
            dropped = min(inputs, key=lambda name: importances[name])
            remaining = tuple(name for name in inputs if name != dropped)
            cv, subset = evaluate(remaining)
        else:
            trials = {}
            for name in inputs:
                trials[name] = evaluate(tuple(n for n in inputs if n != name))
            importances = {name: cv.mean_auc - trials[name][0].mean_auc for name in inputs}
            dropped = min(inputs, key=lambda name: importances[name])
            remaining = tuple(name for name in inputs if name != dropped)
            cv, subset = trials[dropped]
        accepted = baseline - cv.mean_auc <= tolerance
        steps.append(
            EliminationStep(iteration, remaining, cv.mean_auc, dropped, importances, accepted)
        )
        log.info(
            "iteration %d: dropped %s, AUC %.4f%s",
            iteration, dropped, cv.mean_auc, "" if accepted else " (beyond tolerance, stop)",
        )
        if on_step is not None:
            on_step(steps[-1])
        if not accepted:
            break
        inputs = remaining
    return EliminationResult(mode=mode, tolerance=tolerance, steps=steps)


def plot_elimination(result: EliminationResult) -> Any:
    """Figure of the AUC against the iteration, labelled with the dropped inputs.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no display).

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(6.0, 0.5 * len(result.steps) + 3), 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    its = [s.iteration for s in result.steps]
    aucs = [s.auc for s in result.steps]
    ax.plot(its, aucs, marker="o", color="C0", label=f"held-out AUC ({result.mode})")
    rejected = [s for s in result.steps if not s.accepted]
    if rejected:
        ax.plot([s.iteration for s in rejected], [s.auc for s in rejected], "x",
                color="C3", markersize=10, label="beyond tolerance")
    ax.axhline(result.baseline_auc - result.tolerance, color="grey", linestyle="--",
               label=f"all inputs − {result.tolerance:g}")
    ax.set_xticks(its)
    ax.set_xticklabels(
        ["all"] + [f"−{s.dropped}" for s in result.steps[1:]], rotation=45, ha="right"
    )
    ax.set_xlabel("iteration (input dropped)")
    ax.set_ylabel("AUC")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def save_elimination_plot(result: EliminationResult, path: str | Path) -> Path:
    """Write :func:`plot_elimination` to ``path`` (PNG by suffix) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_elimination(result).savefig(path, dpi=120)
    return path
