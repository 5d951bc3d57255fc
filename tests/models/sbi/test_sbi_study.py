"""The SBI study end to end through ``ewpolar sbi``, and its user errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("onnx")

from ewpolar.models.cli import sbi
from ewpolar.models.runtime import load_model
from ewpolar.models.sbi.study import FISHER_FLAG_FRACTION, _information_warning


def test_sbi_command_end_to_end(tmp_path) -> None:
    out = tmp_path / "sbi"
    result = CliRunner().invoke(sbi, [
        "--events", "12000", "--seed", "3", "--epochs", "2", "--layers", "1", "--width", "8",
        "--scan-points", "21", "--sally-bins", "5", "--analysis-fit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "limits.md").read_text()
    for label in ("(a′) fit_wh", "(a) binned", "(b′) fit_wh: SALLY score", "(b) SALLY",
                  "(c) CARL", "(c) ALICE", "(c) ALICES", "truth"):
        assert label in table, label
    assert "68% CL" in table
    assert "95% CL" in table
    limits = json.loads((out / "limits.json").read_text())
    assert set(limits["methods"]) == {"analysis_fit", "analysis_fit_sally", "binned", "sally",
                                      "carl", "alice", "alices", "truth"}
    assert (out / "analysis_fit" / "run" / "histograms.root").is_file()
    # the score-binned fit of the analysis chain: the exported SALLY read by the processor
    assert (out / "analysis_fit" / "sally_score.onnx").is_file()
    assert (out / "analysis_fit" / "fit_sally" / "results.json").is_file()
    lo, hi = limits["methods"]["analysis_fit_sally"]["interval_68"]
    assert lo < 0 < hi
    truth = limits["methods"]["truth"]
    lo, hi = truth["interval_68"]
    assert lo < 0 < hi  # the Asimov data are the SM
    assert limits["fisher_information"]["truth"] >= limits["fisher_information"]["binned"]
    assert (out / "likelihood_scans.png").stat().st_size > 1000
    for method in ("sally", "carl", "alice", "alices"):
        assert load_model(out / f"{method}.onnx").card.kind == method
    # an estimator that carries < 25 % of the truth's information is flagged, never bare
    info_truth = limits["fisher_information"]["truth"]
    for key, m in limits["methods"].items():
        projected = m["fisher_information_projected"]
        weak = projected is not None and projected < FISHER_FLAG_FRACTION * info_truth
        assert m["usable"] is not weak, key
        if weak:
            assert f"WARNING: {m['label']}" in table
            assert f"| {m['label']} | ⚠ not usable:" in table
            assert f"ewpolar: warning: {m['label']}" in result.stderr


def test_weak_estimators_are_flagged() -> None:
    from ewpolar.models.training.mlp import TrainingHistory

    history = TrainingHistory(train_loss=[0.7] * 12, val_loss=[0.69] * 12, best_epoch=2)
    warning = _information_warning(5.6, 823.0, history)
    assert "0.7% of the truth's 823" in warning
    assert "best epoch 2 of 12" in warning
    assert _information_warning(400.0, 823.0, history) == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--config", "ssww"], "needs the WH config"),
    (["--methods", "carl,nope"], "unknown ['nope']"),
    (["--features", "lep_pt,nope"], "unknown features"),
])
def test_sbi_command_user_errors(tmp_path, args, message) -> None:
    result = CliRunner().invoke(sbi, [*args, "--events", "2000", "--epochs", "1",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("ewpolar: error: ")
    assert message in result.output
