"""The statistics of any pyhf workspace: a published likelihood, a colleague's workspace, a patch.

:func:`load_workspace` reads a workspace JSON file and applies patches (JSON Patch
files, or one patch of a pyhf patchset as ``FILE:NAME``); :func:`fit_workspace`
gives the best fit with the POI's profile-likelihood interval, the discovery
significance, the CLs at requested POI values and the 95 % CL upper limit with
its expected band (all asymptotic, :mod:`ewpolar.stats.likelihood`), optionally
the nuisance-parameter ranking and a toy-based limit, and writes
``results.json`` (:class:`ewpolar.core.results.WorkspaceResults`) with the patched
``workspace.json`` beside it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonpatch
import pyhf
from ewpolar.core.errors import InputError
from ewpolar.core.outputs import ensure_writable_dir
from ewpolar.core.results import CLsPoint, WorkspaceResults, write_results
from ewpolar.stats.likelihood import (
    _CLs,
    _expected_cls,
    _fit,
    _Likelihood,
    _ranking,
    _significance,
    _stat_only,
    _upper_limit,
    mc_stat_parameters,
    numpy_backend,
    upper_limit_toys,
)
from ewpolar.stats.workspace import model_and_data, validate

__all__ = ["fit_workspace", "load_workspace"]

log = logging.getLogger(__name__)


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def _split_patch(text: str) -> tuple[Path, str | None]:
    """``FILE`` or ``FILE:NAME`` (a patch of a patchset)."""
    path = Path(text)
    if path.is_file() or ":" not in text:
        return path, None
    file, name = text.rsplit(":", 1)
    return Path(file), name


def load_workspace(path: str | Path, patches: Sequence[str] = ()) -> pyhf.Workspace:
    """A workspace file with ``patches`` applied in order, validated against pyhf's schema.

    Each patch is a JSON Patch file (a list of operations, as the published
    ``patch.*.json`` of HEPData likelihoods) or ``PATCHSET:NAME``, one patch of a
    pyhf patchset file.

    Raises:
        InputError: a file is missing or not JSON, a patch does not apply, a patch
            name is not in its patchset, or the result is not a valid workspace.
    """
    path = Path(path)
    spec = _read(path)
    for text in patches:
        file, name = _split_patch(text)
        patch = _read(file)
        try:
            if isinstance(patch, dict) and "patches" in patch:
                if name is None:
                    names = [p["metadata"]["name"] for p in patch["patches"]]
                    raise InputError(f"{file}: a patchset; choose a patch as {file}:NAME"
                                     f" (e.g. {names[0] if names else 'NAME'})")
                patchset = pyhf.PatchSet(patch)
                spec = dict(patchset.apply(pyhf.Workspace(spec), name))
            else:
                spec = jsonpatch.apply_patch(copy.deepcopy(spec), patch)
        except InputError:
            raise
        except Exception as exc:  # jsonpatch / pyhf errors: one line naming the patch
            raise InputError(f"{text}: cannot apply the patch to {path}: {exc}") from None
    try:
        return validate(spec)
    except Exception as exc:
        raise InputError(f"{path}: not a valid pyhf workspace"
                         f"{' after the patches' if patches else ''}: {str(exc).splitlines()[0]}") from None


def fit_workspace(path: str | Path, *, patches: Sequence[str] = (), mu: Sequence[float] = (1.0,),
                  ranking: bool = False, mc_stat: bool = True, toys: int = 0, seed: int = 0,
                  out: str | Path | None = None) -> WorkspaceResults:
    """Best fit, significance, CLs at ``mu`` and the upper limit of a workspace's POI.

    Args:
        path: workspace JSON file.
        patches: patches applied in order (see :func:`load_workspace`).
        mu: POI values at which to give CLs (observed and expected band).
        ranking: add the nuisance-parameter ranking (impacts on the POI).
        mc_stat: also give the POI's interval without the MC-statistics parameters.
        toys: pseudo-experiments per POI value for a toy-based limit (0: none).
        out: folder for results.json and workspace.json; None: write nothing.
    """
    t0 = time.perf_counter()
    out_dir = ensure_writable_dir(out) if out is not None else None
    ws = load_workspace(path, patches)
    notes: list[str] = []
    with numpy_backend():
        model, data = model_and_data(ws)
        if not model.config.poi_name:
            raise InputError(f"{path}: the measurement has no parameter of interest")
        lik = _Likelihood(model, data)
        poi = model.config.poi_index
        best = _fit(lik, intervals=[poi])
        if mc_stat and mc_stat_parameters(model):
            iv = best.intervals[model.config.poi_name]
            best = dataclasses.replace(best, intervals={
                model.config.poi_name: _stat_only(lik, lik.global_fit(), iv, poi)})
        if ranking:
            best = dataclasses.replace(best, ranking=_ranking(lik, lik.global_fit(), best, [poi],
                                                              skip=mc_stat_parameters(model)))
        sig = _significance(lik)
        lim = _upper_limit(lik)
        calc = _CLs(lik)
        cls = [CLsPoint(float(m), calc.cls(float(m)), _expected_cls(calc.sqrt_qmu_a(float(m))))
               for m in mu]
        lim_toys = upper_limit_toys(model, data, ntoys=toys, seed=seed, asymptotic=lim) if toys else None
    if not best.converged:
        notes.append(f"the fit did NOT converge (edm {best.edm:.3g}); its numbers are unreliable")
    iv = best.interval(model.config.poi_name)
    for flag, side, edge in ((iv.low_open, "lower", iv.low), (iv.high_open, "upper", iv.high)):
        if flag:
            notes.append(f"the {side} edge of the 68% CL interval of {model.config.poi_name} is"
                         f" the parameter bound {edge:g}: open")
    results = WorkspaceResults(str(path), list(patches), model.config.poi_name, best, sig, lim, cls,
                               notes=notes, seconds=time.perf_counter() - t0, workspace=dict(ws),
                               limit_toys=lim_toys)
    if out_dir is not None:
        write_results(results, out_dir)
    return results
