"""Classifier scoring of the processors: the ONNX models of the score templates.

The config's ``models`` that a ``templates`` entry uses are found at
construction (:func:`find_classifiers`: ``config.resolve``; the model card is
read, the file's bytes are read once and checked against the card's sha256, and
every input the card lists must be a feature of :data:`ewpolar.models.features.FEATURES`).
The models' bytes travel with the pickled processor, so workers need no access
to the files; the onnxruntime session is created on first use in each worker
process (one intra-op thread, keyed by the model's sha256) and reused for every
chunk. A config without models, or model files that do not exist, give no
templates and a note; a model that does not match its card is an error.

:func:`classifier_scores` scores a batch of events: once per variation (nominal
and each JES shift, whose inputs are recomputed on the shifted jets and
selection), the events selected by any region, so that onnxruntime gets few,
large batches.

Estimator observables (WH, optional config key ``estimators``):
:func:`find_estimators` loads each listed ONNX estimator (a SALLY score, an
ALICES ratio at a fixed c, ...) with the same checks, and
:func:`estimator_observable` evaluates one on the events of a feature context:
its inputs are the card's features (plus the parameter input of a
parameterised estimator, set to the config's ``parameter``), k-fold models
choose the fold by event number exactly like the classifiers, and events with
a missing input get NaN (not filled).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import awkward as ak
import numpy as np
from ewpolar.core.config import AnalysisConfig
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.models.features import FeatureContext
from ewpolar.models.runtime import Classifier, ModelCard, OnnxModel

__all__ = ["classifier_inputs", "classifier_scores", "estimator_observable", "find_classifiers",
           "find_estimators"]


def find_classifiers(config: AnalysisConfig, known: Collection[str], owner: str,
                     score_templates: bool) -> tuple[dict[str, Classifier], tuple[str, ...]]:
    """The classifiers the config's templates need, with their sessions not yet created.

    Args:
        config: the analysis config (``models`` and ``templates``).
        known: the features a model input may name.
        owner: who computes the inputs (for the error message), e.g. the processor's class.
        score_templates: the channel's fit uses score templates: say so in a note when
            the config lists no classifier or a template's model is not available.

    Returns:
        ``({model name: Classifier}, notes)``; a model whose ``.onnx`` file
        does not exist is left out with a note.

    Raises:
        InputError: a model card that is missing or invalid, or a file whose
            sha256 differs from its card.
        ConfigError: a card input that is not a known feature.
    """
    notes: list[str] = []
    if not config.models:
        if score_templates:
            notes.append("models: the config lists no classifier; no score templates filled")
        return {}, tuple(notes)
    used = [m for m in config.models
            if any(m in (t.x, t.y) for t in config.templates.values())]
    classifiers: dict[str, Classifier] = {}
    for name in used:
        path = config.resolve(config.models[name].path)
        if not path.is_file():
            notes.append(f"models.{name}: {config.models[name].path} not found; "
                         "templates using it are not filled")
            continue
        card = ModelCard.read(path.with_suffix(".json"))
        missing = [i for i in card.inputs if i not in known]
        if missing:
            raise ConfigError(
                f"{config.source or 'config'}: models.{name}: model {name!r} ({path.name}) takes "
                f"inputs that {owner} does not compute: missing {missing}")
        # the model's bytes are read and checked against the card here, once; they
        # travel with the pickled processor, so workers need no access to the file
        try:
            classifiers[name] = Classifier(path, card, intra_op_threads=1, inter_op_threads=1)
            # a file whose bytes match its card but that onnxruntime cannot load is found
            # here, in one line, not by every worker at its first chunk
            classifiers[name].session()
        except InputError as err:
            raise InputError(f"models.{name}: {err}") from None
    for tname, tmpl in config.templates.items():
        absent = [m for m in (tmpl.x, tmpl.y) if m not in classifiers]
        if absent and score_templates:
            notes.append(f"templates.{tname}: model(s) {', '.join(absent)} not available; "
                         f"template_{tname} not filled")
    return classifiers, tuple(notes)


def classifier_inputs(classifiers: Mapping[str, Classifier]) -> tuple[str, ...]:
    """Features the classifiers take (union of their cards' inputs, in order)."""
    names: dict[str, None] = {}
    for clf in classifiers.values():
        names.update(dict.fromkeys(clf.inputs))
    return tuple(names)


def classifier_scores(classifiers: Mapping[str, Classifier], events_sel: ak.Array,
                      features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every classifier's score of the selected events.

    Args:
        classifiers: the models by name.
        events_sel: the events (NanoEvents); their ``event`` numbers choose each
            classifier's fold model.
        features: feature name → one float per event, for every input of the models.

    Returns:
        ``{model name: probability of the positive class per event}``.

    Raises:
        InputError: an input that is not one number per event.
    """
    event = np.asarray(ak.to_numpy(events_sel.event))
    matrices: dict[tuple[str, ...], np.ndarray] = {}
    scores = {}
    for name, clf in classifiers.items():
        if clf.inputs not in matrices:
            matrix = np.empty((len(event), len(clf.inputs)), dtype=np.float32)
            for j, key in enumerate(clf.inputs):
                column = features[key]
                if column.ndim != 1:
                    raise InputError(f"model {name!r}: input {key!r} has {column.shape[1]} "
                                     "values per event; a classifier input needs one")
                matrix[:, j] = column
            matrices[clf.inputs] = matrix
        scores[name] = clf.predict(matrices[clf.inputs], event)
    return scores


def _parameter_input(card: ModelCard) -> str | None:
    """The parameter input of a parameterised estimator (card ``extra.ratio.parameter``)."""
    ratio = card.extra.get("ratio") if isinstance(card.extra, Mapping) else None
    return ratio.get("parameter") if isinstance(ratio, Mapping) else None


def find_estimators(config: AnalysisConfig, known: Collection[str],
                    owner: str) -> dict[str, OnnxModel]:
    """The ONNX estimators of the config's ``estimators``, loaded and checked.

    Raises:
        ConfigError: a missing file, an unknown output, a card input that is not a
            known feature, a parameterised estimator without ``parameter`` (or a
            parameter given to one without that input), or a name that is
            already a feature.
        InputError: a card that does not match its file.
    """
    where = config.source or "config"
    out: dict[str, OnnxModel] = {}
    for name, ref in config.estimators.items():
        if name in known:
            raise ConfigError(f"{where}: estimators.{name}: '{name}' is already an observable; "
                              "choose another name")
        path = config.resolve(ref.path)
        if not path.is_file():
            raise ConfigError(f"{where}: estimators.{name}: {ref.path} not found")
        card = ModelCard.read(path.with_suffix(".json"))
        if ref.output not in card.outputs:
            raise ConfigError(f"{where}: estimators.{name}.output: model {path.name} has no "
                              f"output '{ref.output}' (outputs: {', '.join(card.outputs)})")
        parameter = _parameter_input(card)
        if (parameter is None) != (ref.parameter is None):
            raise ConfigError(
                f"{where}: estimators.{name}.parameter: "
                + (f"model {path.name} takes the parameter '{parameter}'; give its value"
                   if parameter is not None else f"model {path.name} takes no parameter"))
        missing = [i for i in card.inputs if i != parameter and i not in known]
        if missing:
            raise ConfigError(f"{where}: estimators.{name}: model {path.name} takes inputs that "
                              f"{owner} does not compute: missing {missing}")
        try:
            out[name] = OnnxModel(path, card, intra_op_threads=1, inter_op_threads=1)
        except InputError as err:
            raise InputError(f"estimators.{name}: {err}") from None
    return out


def estimator_observable(model: OnnxModel, output: str, parameter: float | None,
                         functions: Mapping[str, Callable[[FeatureContext], np.ndarray]],
                         ctx: FeatureContext) -> np.ndarray:
    """The estimator's ``output`` for every event of ``ctx`` (NaN where an input is missing).

    Args:
        model: the estimator.
        output: its graph output to return.
        parameter: value of the parameter input of a parameterised estimator.
        functions: the feature functions that compute its other inputs.
        ctx: the events (their ``event`` numbers choose a k-fold model's fold).
    """
    name = _parameter_input(model.card)
    columns = []
    for key in model.inputs:
        if key == name:
            columns.append(None)
            continue
        column = np.asarray(functions[key](ctx), dtype=np.float64)
        if column.ndim != 1:
            raise InputError(f"model {model.name!r}: input {key!r} has {column.shape[1]} values "
                             "per event; an estimator input needs one")
        columns.append(column)
    n = next((c.shape[0] for c in columns if c is not None), 0)
    matrix = np.empty((n, len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        matrix[:, j] = parameter if column is None else column
    good = np.isfinite(matrix).all(axis=1)
    values = np.full(n, np.nan)
    if good.any():
        event = None
        if model.card.k >= 2:
            event = np.asarray(ak.to_numpy(ctx.events.event))[good]
        values[good] = model.predict(matrix[good], event, output=output)
    return values
