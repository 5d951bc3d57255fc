"""Config loading: the shipped configs validate; each kind of mistake gives one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.config import AnalysisConfig, config_hash, default_config_path, load_config
from ewpolar.core.errors import ConfigError


@pytest.fixture(scope="module")
def ssww_text() -> str:
    return default_config_path("ssww").read_text(encoding="utf-8")


@pytest.mark.parametrize("channel", ["ssww", "wh"])
def test_shipped_configs_validate(channel: str) -> None:
    cfg = load_config(default_config_path(channel))
    assert isinstance(cfg, AnalysisConfig)
    assert cfg.channel == channel
    assert cfg.regions
    assert cfg.samples
    # channel names are accepted as a shortcut for the shipped file
    assert config_hash(load_config(channel)) == config_hash(cfg)


def test_ssww_signal_samples_carry_polarization() -> None:
    cfg = load_config("ssww")
    pols = {s.polarization for s in cfg.samples.values() if s.kind == "signal"}
    assert pols == {"LL", "LT", "TT"}
    # the shipped fractions follow docs/physics.md §1a: LL ≈ 6–8 %, LT ≈ 35 %, TT ≈ 57 %
    sig = {s.polarization: s.xsec_fb for s in cfg.samples.values() if s.kind == "signal"}
    total = sum(sig.values())
    assert 0.06 <= sig["LL"] / total <= 0.08
    assert 0.33 <= sig["LT"] / total <= 0.37
    assert 0.55 <= sig["TT"] / total <= 0.60


# (description, edit of the ssww config text, expected pieces of the one-line message)
BAD_CASES = [
    ("misspelt nested key",
     lambda t: t.replace("    mjj_min: 500.0\n    dy_jj_min: 2.0\n    n_bjets_max: 0\n    zveto_ee",
                         "    mjj_mn: 500.0\n    dy_jj_min: 2.0\n    n_bjets_max: 0\n    zveto_ee", 1),
     ["regions.signal.mjj_mn", "unknown key", "did you mean 'mjj_min'"]),
    ("misspelt top-level key",
     lambda t: t.replace("luminosity_fb:", "luminosty_fb:"),
     ["luminosty_fb", "unknown key", "did you mean 'luminosity_fb'"]),
    ("wrong type",
     lambda t: t.replace("luminosity_fb: 140.0", "luminosity_fb: lots"),
     ["luminosity_fb", "valid number", "'lots'"]),
    ("wrong type in a sample",
     lambda t: t.replace("xsec_fb: 0.203", "xsec_fb: [1, 2]"),
     ["samples.ssww_LL.xsec_fb", "valid number"]),
    ("negative cross section",
     lambda t: t.replace("xsec_fb: 0.203", "xsec_fb: -1"),
     ["samples.ssww_LL.xsec_fb", "greater than 0"]),
    ("missing required key",
     lambda t: t.replace("channel: ssww\n", ""),
     ["channel", "required key is missing"]),
    ("bad enum value",
     lambda t: t.replace("polarization: LL", "polarization: LX"),
     ["samples.ssww_LL.polarization", "'LX'"]),
    ("unknown cross reference",
     lambda t: t.replace("x: sig_vs_bkg, y: ll_vs_tx", "x: sig_vs_bkg, y: ll_vs_txx"),
     ["templates.ll.y", "unknown model 'll_vs_txx'"]),
    ("template in an unknown region",
     lambda t: t.replace("y: ll_vs_tx, x_bins: 4, y_bins: 4, regions: [signal]",
                         "y: ll_vs_tx, x_bins: 4, y_bins: 4, regions: [signal, sr2]"),
     ["templates.ll.regions", "unknown region 'sr2'", "regions: signal, wz_cr"]),
    ("fit template not filled in the signal region",
     lambda t: t.replace("y: lx_vs_tt, x_bins: 4, y_bins: 4, regions: [signal]",
                         "y: lx_vs_tt, x_bins: 4, y_bins: 4, regions: [btag_cr]"),
     ["fit.fits.LX.template", "'lx' in region 'signal'", "(btag_cr) leave out"]),
    ("inverted cut range",
     lambda t: t.replace("mjj_min: 200.0\n    mjj_max: 500.0", "mjj_min: 600.0\n    mjj_max: 500.0"),
     ["regions.low_mjj_cr", "mjj_min = 600.0 is larger than mjj_max = 500.0"]),
    ("invalid YAML",
     lambda t: t + "\nbroken: [\n",
     ["invalid YAML", "line"]),
    ("missing referenced file",
     lambda t: t.replace("  jes: {kind: jes}", "  jes: {kind: jes}\n  extra: {kind: correction, file: nope.json}"),
     ["systematics.extra.file", "file not found: nope.json"]),
]


@pytest.mark.parametrize(("edit", "pieces"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_config_one_line(tmp_path: Path, ssww_text: str, edit, pieces: list[str]) -> None:
    bad_text = edit(ssww_text)
    assert bad_text != ssww_text, "the edit must change the config"
    path = tmp_path / "bad.yaml"
    path.write_text(bad_text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for piece in pieces:
        assert piece in msg, msg

    # the CLI turns it into one line on stderr and a non-zero exit, no traceback
    result = CliRunner().invoke(main, ["generate", "--channel", "ssww", "--events", "10",
                                       "--config", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [f"ewpolar: error: {msg}"]
    assert not (tmp_path / "o").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    result = CliRunner().invoke(main, ["generate", "--channel", "wh", "--config",
                                       str(tmp_path / "nope.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "config file not found" in result.stderr


def test_channel_mismatch_is_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["generate", "--channel", "ssww", "--config",
                                       str(default_config_path("wh")), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "is for channel 'wh'" in result.stderr


def test_config_is_immutable() -> None:
    cfg = load_config("wh")
    with pytest.raises(Exception, match="frozen"):
        cfg.luminosity_fb = 1.0  # type: ignore[misc]
