"""Fixtures shared by the test folders: the shipped configs, loaded once per session."""

from __future__ import annotations

import pytest
from ewpolar.core.config import AnalysisConfig, load_config


@pytest.fixture(scope="session")
def ssww_config() -> AnalysisConfig:
    return load_config("ssww")


@pytest.fixture(scope="session")
def wh_config() -> AnalysisConfig:
    return load_config("wh")
