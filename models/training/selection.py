"""Backwards elimination of classifier inputs, judged by the cross-validated AUC.

Start from all inputs. At each iteration, rank the current inputs by importance,
drop the least important one and cross-validate again with the rest. A step is
*accepted* when its AUC passes the acceptance criterion against the reference
(all inputs); the elimination stops after ``patience`` rejected steps in a row
or when ``min_inputs`` remain, and selects the inputs of the last accepted step.

Importance (``mode``):

- ``"shuffle"``: permutation importance on held-out data: the AUC drop of each
  fold model on its own held-out fold when one input column is shuffled. One
  cross-validation per iteration; fast.
- ``"retrain"``: the AUC drop when the network is retrained without the input.
  One cross-validation per input per iteration; slow, but finds inputs that are
  redundant with others (shuffling one of two copies still hurts a network that
  uses both; retraining without it does not).
- ``"hybrid"``: rank by permutation importance, then retrain without each of the
  ``hybrid_candidates`` least important inputs and drop the one whose removal
  costs least: nearly the choices of ``"retrain"`` for a few cross-validations.

Acceptance criterion (``criterion``, with the AUC loss Δ = AUC_ref − AUC):

- ``"absolute"``: Δ ≤ ``tolerance``;
- ``"relative"``: Δ ≤ ``tolerance`` · (AUC_ref − 0.5), a fraction of the
  separation power;
- ``"std"``: Δ ≤ ``tolerance`` · σ_ref, with σ_ref the standard error of the
  reference's mean AUC (spread of its fold AUCs over all repeats / √their number):
  losses compatible with the noise of the cross-validation are accepted.

``repeats`` cross-validates every input set that many times with different
network seeds and averages the AUCs (and the permutation importances), which
lowers the noise the choices are made on.

Unbiased re-evaluation. The AUCs the choices were made on are biased upwards
(the minimum of noisy losses was picked). After the elimination, the selected
inputs and all inputs are evaluated again on events that took no part in any
choice (:attr:`EliminationResult.final`): on the fixed test set when one is given
(``test``; the models of a full cross-validation of the remaining events score
it), otherwise on the folds not used for the choice (``n_folds`` < k; these
folds' models are trained now). When every fold was used and there is no test
set, no unbiased number exists and ``final`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from ewpolar.models.training.crossval import CrossValidationResult, cross_validate
from ewpolar.models.training.data import TrainingSet
from ewpolar.models.training.metrics import weighted_roc_auc
from ewpolar.models.training.mlp import MLPConfig

__all__ = [
    "CRITERIA",
    "MODES",
    "EliminationResult",
    "EliminationStep",
    "backward_elimination",
    "permutation_importance",
    "plot_elimination",
    "save_elimination_plot",
]

log = logging.getLogger(__name__)

Mode = Literal["shuffle", "retrain", "hybrid"]
Criterion = Literal["absolute", "relative", "std"]
#: importance measures of :func:`backward_elimination`
MODES = ("shuffle", "retrain", "hybrid")
#: acceptance criteria of :func:`backward_elimination`
CRITERIA = ("absolute", "relative", "std")
#: seed step between the repeated cross-validations of one input set
_REPEAT_SEED_STEP = 1000


@dataclass(frozen=True)
class EliminationStep:
    """One iteration of the elimination.

    Attributes:
        iteration: 0 for all inputs, then 1, 2, ...
        inputs: inputs the network was cross-validated with.
        auc: mean held-out AUC with these inputs (over folds and repeats).
        dropped: the input removed relative to the previous step (None at 0).
        importances: importance of each input of the previous step, which
            chose ``dropped`` (empty at 0).
        accepted: the step passed the acceptance criterion.
        auc_std: standard error of ``auc`` (spread of the fold AUCs over all repeats).
    """

    iteration: int
    inputs: tuple[str, ...]
    auc: float
    dropped: str | None
    importances: dict[str, float] = field(default_factory=dict)
    accepted: bool = True
    auc_std: float = 0.0


@dataclass
class EliminationResult:
    """History of a backwards elimination.

    Attributes:
        mode: ``"shuffle"``, ``"retrain"`` or ``"hybrid"``.
        tolerance: the acceptance criterion's parameter.
        steps: one entry per iteration.
        criterion: the acceptance criterion (see the module docstring).
        repeats: cross-validations per input set.
        final: the unbiased re-evaluation (see the module docstring): ``method``
            ("test set", "unused folds" or "none"), ``auc_all_inputs`` and
            ``auc_selected`` there, and the folds or test events used.
    """

    mode: str
    tolerance: float
    steps: list[EliminationStep]
    criterion: str = "absolute"
    repeats: int = 1
    final: dict[str, Any] = field(default_factory=dict)

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
        """Inputs removed, in order, up to the selected step."""
        last = [s for s in self.steps if s.accepted][-1].iteration
        return [s.dropped for s in self.steps[1:last + 1] if s.dropped is not None]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {
            "mode": self.mode,
            "criterion": self.criterion,
            "tolerance": self.tolerance,
            "repeats": self.repeats,
            "selected_inputs": list(self.selected_inputs),
            "steps": [asdict(s) | {"inputs": list(s.inputs)} for s in self.steps],
            "final": self.final,
        }


def permutation_importance(
    cv: CrossValidationResult,
    training_set: TrainingSet,
    *,
    seed: int = 0,
    n_repeats: int = 1,
    test: np.ndarray | None = None,
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
        test: the fixed test set the cross-validation was made with (its events
            are in no fold).

    Returns:
        ``{input: mean AUC drop}``; near 0 (or negative) for useless inputs.
    """
    if tuple(training_set.inputs) != tuple(cv.inputs):
        raise ValueError("training set inputs differ from the cross-validation's")
    rng = np.random.default_rng(seed)
    fold_of = training_set.folds(cv.k)
    if test is not None:
        fold_of = np.where(np.asarray(test, dtype=bool), -1, fold_of)
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


@dataclass
class _Evaluation:
    """The repeated cross-validations of one input set."""

    cvs: list[CrossValidationResult]
    subset: TrainingSet

    @property
    def auc(self) -> float:
        return float(np.mean([cv.mean_auc for cv in self.cvs]))

    @property
    def auc_std(self) -> float:
        aucs = np.concatenate([cv.fold_auc for cv in self.cvs])
        return float(np.std(aucs, ddof=1) / np.sqrt(aucs.size)) if aucs.size > 1 else 0.0


def _accepts(criterion: str, tolerance: float, reference: _Evaluation, auc: float) -> bool:
    loss = reference.auc - auc
    if criterion == "absolute":
        return loss <= tolerance
    if criterion == "relative":
        return loss <= tolerance * max(reference.auc - 0.5, 0.0)
    return loss <= tolerance * reference.auc_std


def backward_elimination(
    training_set: TrainingSet,
    config: MLPConfig,
    *,
    mode: Mode = "shuffle",
    k: int = 5,
    n_folds: int | None = None,
    offset: int = 0,
    test: np.ndarray | None = None,
    min_inputs: int = 1,
    tolerance: float = 0.005,
    criterion: Criterion = "absolute",
    repeats: int = 1,
    patience: int = 1,
    hybrid_candidates: int = 3,
    seed: int = 0,
    n_repeats: int = 1,
    on_step: Callable[[EliminationStep], None] | None = None,
    on_cross_validation: Callable[[tuple[str, ...]], None] | None = None,
    mapper: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] | None = None,
) -> EliminationResult:
    """Drop the least important input repeatedly while the AUC holds.

    Args:
        training_set: events with all candidate inputs.
        config: network and training settings (fixed during elimination).
        mode: ``"shuffle"``, ``"retrain"`` or ``"hybrid"`` (module docstring).
        k: number of folds.
        n_folds: cross-validate only n folds at each step (default: all k); the
            others are kept for the unbiased re-evaluation.
        offset: rotation of the folds used for the choice (folds ``(f + offset) % k``).
        test: boolean mask of a fixed test set, used by no cross-validation of
            the choice, only by the final re-evaluation.
        min_inputs: stop when this many inputs remain.
        tolerance: parameter of the acceptance criterion.
        criterion: ``"absolute"``, ``"relative"`` or ``"std"`` (module docstring).
        repeats: cross-validations (network seeds) per input set, averaged.
        patience: stop after this many rejected steps in a row (1: at the first).
        hybrid_candidates: inputs retrained per iteration in ``"hybrid"`` mode.
        seed: seed of the permutations.
        n_repeats: permutations per input and fold (``"shuffle"``, ``"hybrid"``).
        on_step: called with each :class:`EliminationStep` once it is done.
        on_cross_validation: called with the inputs of each cross-validation before it
            starts (progress reporting).
        mapper: runs independent cross-validations (the repeats, the candidates
            of ``"retrain"`` and ``"hybrid"``), e.g. as dask tasks
            (:func:`ewpolar.models.training.distributed.client_mapper`); default:
            one after the other here.

    Returns:
        The history; ``result.selected_inputs`` is the chosen set and
        ``result.final`` its unbiased re-evaluation.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
    if min_inputs < 1 or repeats < 1 or patience < 1 or hybrid_candidates < 1:
        raise ValueError("min_inputs, repeats, patience and hybrid_candidates must be at least 1")
    n_choice = k if n_folds is None else int(n_folds)
    if not 1 <= n_choice <= k:
        raise ValueError(f"n_folds must be in [1, {k}], got {n_folds}")
    folds = range(n_choice)

    run = mapper or (lambda function, items: [function(item) for item in items])

    def evaluate_many(name_sets: Sequence[Sequence[str]]) -> list[_Evaluation]:
        subsets, jobs = [], []
        for names in name_sets:
            if on_cross_validation is not None:
                on_cross_validation(tuple(names))
            subsets.append(training_set.select_inputs(names))
            jobs += [_CrossValidation(subsets[-1], _seeded(config, r), k, tuple(folds), offset,
                                      test) for r in range(repeats)]
        cvs = run(_cross_validate_job, jobs)
        return [_Evaluation(list(cvs[i * repeats:(i + 1) * repeats]), subset)
                for i, subset in enumerate(subsets)]

    def evaluate(names: Sequence[str]) -> _Evaluation:
        return evaluate_many([names])[0]

    def importance_by_shuffling(current: _Evaluation, iteration: int) -> dict[str, float]:
        per_repeat = [permutation_importance(cv, current.subset, seed=seed + iteration,
                                             n_repeats=n_repeats, test=test)
                      for cv in current.cvs]
        return {name: float(np.mean([imp[name] for imp in per_repeat]))
                for name in current.subset.inputs}

    inputs = tuple(training_set.inputs)
    current = evaluate(inputs)
    reference = current
    steps = [EliminationStep(0, inputs, current.auc, None, auc_std=current.auc_std)]
    log.info("all %d inputs: AUC %.4f ± %.4f", len(inputs), current.auc, current.auc_std)
    if on_step is not None:
        on_step(steps[0])
    iteration = 0
    rejected_in_a_row = 0
    while len(inputs) > min_inputs:
        iteration += 1
        if mode == "shuffle":
            importances = importance_by_shuffling(current, iteration)
            dropped = min(inputs, key=lambda name: importances[name])
            candidate = evaluate(tuple(n for n in inputs if n != dropped))
        else:
            if mode == "retrain":
                names = list(inputs)
                importances = {}
            else:
                importances = importance_by_shuffling(current, iteration)
                names = sorted(inputs, key=lambda name: importances[name])[:hybrid_candidates]
            trials = dict(zip(names, evaluate_many(
                [tuple(n for n in inputs if n != name) for name in names]), strict=True))
            retrained = {name: current.auc - trials[name].auc for name in names}
            if mode == "retrain":
                importances = retrained
            else:
                importances = {**importances,
                               **{f"{name} (retrained)": v for name, v in retrained.items()}}
            dropped = min(names, key=lambda name: retrained[name])
            candidate = trials[dropped]
        remaining = tuple(name for name in inputs if name != dropped)
        accepted = _accepts(criterion, tolerance, reference, candidate.auc)
        steps.append(EliminationStep(iteration, remaining, candidate.auc, dropped, importances,
                                     accepted, candidate.auc_std))
        log.info("iteration %d: dropped %s, AUC %.4f ± %.4f%s", iteration, dropped,
                 candidate.auc, candidate.auc_std, "" if accepted else " (not accepted)")
        if on_step is not None:
            on_step(steps[-1])
        rejected_in_a_row = 0 if accepted else rejected_in_a_row + 1
        if rejected_in_a_row >= patience:
            break
        inputs, current = remaining, candidate
    result = EliminationResult(mode=mode, tolerance=tolerance, steps=steps, criterion=criterion,
                               repeats=repeats)
    result.final = _final_evaluation(training_set, config, result, k=k, n_choice=n_choice,
                                     offset=offset, test=test, repeats=repeats,
                                     on_cross_validation=on_cross_validation, mapper=mapper)
    return result


@dataclass(frozen=True)
class _CrossValidation:
    """One cross-validation to run (picklable, for a mapper's workers)."""

    training_set: TrainingSet
    config: MLPConfig
    k: int
    folds: tuple[int, ...]
    offset: int
    test: np.ndarray | None


def _cross_validate_job(job: _CrossValidation) -> CrossValidationResult:
    return cross_validate(job.training_set, job.config, k=job.k, folds=job.folds,
                          offset=job.offset, test=job.test)


def _seeded(config: MLPConfig, repeat: int) -> MLPConfig:
    """The settings of repeat ``repeat`` (another network seed from the second on)."""
    return config if repeat == 0 else replace(config, seed=config.seed + _REPEAT_SEED_STEP * repeat)


def _final_evaluation(training_set: TrainingSet, config: MLPConfig, result: EliminationResult,
                      *, k: int, n_choice: int, offset: int, test: np.ndarray | None,
                      repeats: int,
                      on_cross_validation: Callable[[tuple[str, ...]], None] | None,
                      mapper: Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]] | None
                      = None) -> dict[str, Any]:
    """All inputs and the selected ones on events that took no part in the choice."""
    if test is not None:
        method, folds = "test set", range(k)
    elif n_choice < k:
        method, folds = "unused folds", range(n_choice, k)
    else:
        log.warning("every fold was used to choose the inputs and there is no test set: "
                    "no unbiased re-evaluation (use fewer folds or a test set)")
        return {"method": "none", "reason": "every fold was used for the choice and there is "
                                            "no test set"}
    out: dict[str, Any] = {"method": method}
    run = mapper or (lambda function, items: [function(item) for item in items])
    for key, names in (("all_inputs", tuple(training_set.inputs)),
                       ("selected", result.selected_inputs)):
        if on_cross_validation is not None:
            on_cross_validation(tuple(names))
        subset = training_set.select_inputs(names)
        cvs = run(_cross_validate_job,
                  [_CrossValidation(subset, _seeded(config, r), k, tuple(folds),
                                    offset if test is None else 0, test)
                   for r in range(repeats)])
        if test is not None:
            out[f"auc_{key}"] = float(np.mean([cv.test_auc for cv in cvs]))
        else:
            out[f"auc_{key}"] = float(np.mean([cv.mean_auc for cv in cvs]))
            out["folds"] = list(cvs[0].folds)
    if test is not None:
        out["test_events"] = int(np.count_nonzero(test))
    out["auc_choice_all_inputs"] = result.baseline_auc
    out["auc_choice_selected"] = [s for s in result.steps if s.accepted][-1].auc
    log.info("unbiased re-evaluation (%s): AUC %.4f with all inputs, %.4f with the %d selected",
             method, out["auc_all_inputs"], out["auc_selected"], len(result.selected_inputs))
    return out


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
    if result.criterion == "absolute":
        ax.axhline(result.baseline_auc - result.tolerance, color="grey", linestyle="--",
                   label=f"all inputs − {result.tolerance:g}")
    final = result.final
    if final.get("method") not in (None, "none"):
        ax.plot([its[0], [s for s in result.steps if s.accepted][-1].iteration],
                [final["auc_all_inputs"], final["auc_selected"]], "s", color="C2",
                label=f"re-evaluated on the {final['method']}")
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
