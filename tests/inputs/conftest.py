"""Fixtures of the input-profile tests: the real PHYSLITE and CMS files, toy samples as
NanoAOD and as a CP-algorithm-style flat ntuple."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ewpolar.core.config import AnalysisConfig
from ewpolar.generator import generate
from flat_writer import write_flat_fileset

PHYSLITE_RNTUPLE = "uproot-physlite-rntuple_v1-0-0-0.root"
CMS_TTREE = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
CMS_RNTUPLE = "cmsopendata2015_ttbar_19980_NANOAOD_RNTupleImporter_rntuple_v1-0-0-1.root"
#: toy events per dataset
N_EVENTS = 1500


def _testdata(name: str) -> Path:
    skhep_testdata = pytest.importorskip("skhep_testdata")
    try:
        return Path(skhep_testdata.data_path(name))
    except Exception as exc:  # not in the local cache and no network
        pytest.skip(f"{name} not available: {exc}")


@pytest.fixture(scope="session")
def physlite_file() -> Path:
    return _testdata(PHYSLITE_RNTUPLE)


@pytest.fixture(scope="session")
def cms_ttree() -> Path:
    return _testdata(CMS_TTREE)


@pytest.fixture(scope="session")
def cms_rntuple() -> Path:
    return _testdata(CMS_RNTUPLE)


def _toy(config: AnalysisConfig, datasets: list[str], out: Path) -> dict[str, Any]:
    path = generate(config, events=N_EVENTS, seed=5, out=out, datasets=datasets)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ssww_samples(ssww_config, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(NanoAOD fileset, flat fileset) of the same toy ssWW events."""
    nano = _toy(ssww_config, ["ssww_LL", "wz"], tmp_path_factory.mktemp("ssww_nano"))
    return nano, write_flat_fileset(nano, ssww_config, tmp_path_factory.mktemp("ssww_flat"))


@pytest.fixture(scope="session")
def wh_samples(wh_config, tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any]]:
    """(NanoAOD fileset, flat fileset) of the same toy WH events."""
    nano = _toy(wh_config, ["wh", "ttbar"], tmp_path_factory.mktemp("wh_nano"))
    return nano, write_flat_fileset(nano, wh_config, tmp_path_factory.mktemp("wh_flat"))
