"""The HTCondor executor's job script holds the configured resources; TLS options are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ewpolar.core.config import default_config_path, load_config
from ewpolar.core.errors import ConfigError, InputError
from ewpolar.runner.run import condor_cluster, tls_security


def _config_with(tmp_path: Path, condor: dict) -> Path:
    raw = yaml.safe_load(default_config_path("wh").read_text(encoding="utf-8"))
    raw["condor"] = condor
    path = tmp_path / "wh.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_condor_job_script_holds_resources(tmp_path: Path) -> None:
    pytest.importorskip("dask_jobqueue")
    cfg = load_config(_config_with(tmp_path, {
        "cores": 3, "memory": "6 GB", "disk": "5 GB",
        "job_extra_directives": {"+JobFlavour": '"longlunch"', "requirements": "OpSysAndVer == \"AlmaLinux9\""},
        "adapt_minimum": 0, "adapt_maximum": 40,
    }))
    cluster = condor_cluster(cfg.condor)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "MY.DaskWorkerCores = 3" in script
    assert "MY.DaskWorkerMemory = 6000000000" in script
    assert "MY.DaskWorkerDisk = 5000000000" in script
    assert '+JobFlavour = "longlunch"' in script
    assert 'requirements = OpSysAndVer == "AlmaLinux9"' in script


def test_condor_bad_adaptive_bounds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapt_minimum"):
        load_config(_config_with(tmp_path, {"adapt_minimum": 5}))


def test_tls_needs_all_three_files(tmp_path: Path) -> None:
    assert tls_security(None, None, None) is None
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    with pytest.raises(InputError, match="--tls-cert"):
        tls_security(str(ca), None, None)
    with pytest.raises(InputError, match="file not found"):
        tls_security(str(ca), str(tmp_path / "no.pem"), str(tmp_path / "no.key"))
