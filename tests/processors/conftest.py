"""Shared fixtures of the processor tests: toy samples, configs, the real CMS file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coffea import processor
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory
from ewpolar.core.config import AnalysisConfig
from ewpolar.generator import generate

CMS_FILE = "nanoAOD_2015_CMS_Open_Data_ttbar.root"
#: toy events per dataset (split by the generator over the config's files_per_dataset)
N_EVENTS = 3000
SSWW_DATASETS = ["ssww_TT", "wz"]
WH_DATASETS = ["wh", "ttbar"]


def _make_fileset(config: AnalysisConfig, datasets: list[str], out: Path) -> dict[str, Any]:
    path = generate(config, events=N_EVENTS, seed=11, out=out, datasets=datasets)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ssww_fileset(ssww_config, tmp_path_factory) -> dict[str, Any]:
    """Toy ssWW samples (a signal state and WZ) as a coffea fileset with metadata."""
    return _make_fileset(ssww_config, SSWW_DATASETS, tmp_path_factory.mktemp("ssww"))


@pytest.fixture(scope="session")
def wh_fileset(wh_config, tmp_path_factory) -> dict[str, Any]:
    """Toy WH samples (signal with CP weights, tt̄) as a coffea fileset with metadata."""
    return _make_fileset(wh_config, WH_DATASETS, tmp_path_factory.mktemp("wh"))


def run_fileset(proc: processor.ProcessorABC, fileset: dict[str, Any],
                chunksize: int = 100_000) -> dict[str, Any]:
    """Run ``proc`` over ``fileset`` with coffea's Runner and the iterative executor."""
    runner = processor.Runner(executor=processor.IterativeExecutor(), schema=NanoAODSchema,
                              chunksize=chunksize)
    return runner(fileset, proc)


@pytest.fixture(scope="session")
def run() -> Callable[..., dict[str, Any]]:
    return run_fileset


def load_events(path: str | Path, metadata: dict[str, Any] | None = None,
                access_log: list | None = None):
    """NanoEvents of one whole file (virtual mode), as coffea's Runner makes them."""
    return NanoEventsFactory.from_root(
        {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual",
        metadata=dict(metadata or {}), access_log=access_log,
    ).events()


@pytest.fixture(scope="session")
def events_of() -> Callable[..., Any]:
    return load_events


@pytest.fixture(scope="session")
def ssww_output(ssww_config, ssww_fileset) -> dict[str, Any]:
    """The ssWW processor's accumulated output over the toy samples (several chunks per file)."""
    from ewpolar.processors.ssww import SSWWProcessor

    return run_fileset(SSWWProcessor(ssww_config), ssww_fileset, chunksize=700)


@pytest.fixture(scope="session")
def wh_output(wh_config, wh_fileset) -> dict[str, Any]:
    """The WH processor's accumulated output over the toy samples."""
    from ewpolar.processors.wh import WHProcessor

    return run_fileset(WHProcessor(wh_config), wh_fileset)


@pytest.fixture(scope="session")
def cms_nanoaod() -> Path:
    """The real CMS NanoAOD test file (scikit-hep-testdata; seeded offline from ../shared)."""
    skhep_testdata = pytest.importorskip("skhep_testdata")
    cache = Path.home() / ".local" / "skhepdata"
    shared = Path(__file__).resolve().parents[3] / "shared" / "testdata" / CMS_FILE
    if not (cache / CMS_FILE).exists() and shared.exists():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, cache / CMS_FILE)
    try:
        return Path(skhep_testdata.data_path(CMS_FILE))
    except Exception as exc:  # no cache and no network
        pytest.skip(f"{CMS_FILE} is neither in ~/.local/skhepdata nor downloadable: {exc}")
