"""Every profile error is one line naming the file (and key): loading, checking against
the first file of each dataset, and coffea's failures to make events of a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ewpolar.cli import main
from ewpolar.core.errors import InputError
from ewpolar.inputs.check import check_profile
from ewpolar.inputs.profile import load_profile, shipped_profiles
from ewpolar.runner.run import run_analysis
from input_filesets import one_file_fileset

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

GOOD = """\
format: flat
tree: reco
units: MeV
systematics: {nominal: NOSYS}
objects:
  electron: {pt: "el_pt_{syst}", eta: el_eta, phi: el_phi, mass: "el_m_{syst}", charge: el_charge}
  muon: {pt: "mu_pt_{syst}", eta: mu_eta, phi: mu_phi, mass: "mu_m_{syst}", charge: mu_charge}
  jet: {pt: "jet_pt_{syst}", eta: jet_eta, phi: jet_phi, mass: "jet_m_{syst}"}
  met: {pt: "met_met_{syst}", phi: "met_phi_{syst}"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_shipped_profiles_load():
    assert shipped_profiles() == ["atlas-flat", "cms-opendata-2015", "nanoaod", "physlite"]
    for name in shipped_profiles():
        profile = load_profile(name)
        assert profile.name == name
    assert load_profile(None).identity
    assert load_profile("atlas-flat").shape_systematics == {
        "jes_up": "JET_JES__1up", "jes_down": "JET_JES__1down"}


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("format: flat", "format: delphes"),
     "format: Input should be 'nanoaod', 'physlite' or 'flat'"),
    (GOOD.replace("units: MeV", "units: TeV"), "units: Input should be 'MeV' or 'GeV'"),
    (GOOD.replace("eta: jet_eta,", "eta: jet_eta, colour: jet_c,"),
     "objects.jet.colour: unknown key"),
    (GOOD.replace("{nominal: NOSYS}", "{up: X}"),
     "systematics: needs a 'nominal' entry"),
    (GOOD.replace('mass: "jet_m_{syst}"', 'mass: jet_m, energy: jet_e'),
     "objects.jet: give mass or energy, not both"),
    (GOOD.replace('phi: "met_phi_{syst}"', 'mpx: met_x'), "objects.met: give pt/phi or mpx/mpy"),
    (GOOD.replace("tree: reco\n", ""), "tree: Field required"),
    ("format: [flat\n", "line 2: invalid YAML"),
    ("- a list\n", "(top level): expected a mapping of keys"),
])
def test_profile_file_errors_are_one_line(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_profile(path)
    msg = _one_line(err)
    assert msg.startswith(f"{path}: ")
    assert expected in msg


def test_unknown_profile_names_the_shipped_ones():
    with pytest.raises(InputError) as err:
        load_profile("delphes")
    assert _one_line(err) == ("--input delphes: no such profile file or shipped profile "
                              "(shipped: atlas-flat, cms-opendata-2015, nanoaod, physlite)")


def test_missing_branch_names_profile_key_and_branch(tmp_path, ssww_samples):
    _, flat = ssww_samples
    first = next(iter(next(iter(flat.values()))["files"]))
    path = _write(tmp_path, GOOD.replace('"jet_pt_{syst}"', '"jet_ptx_{syst}"'))
    with pytest.raises(InputError) as err:
        check_profile(load_profile(path), flat)
    assert _one_line(err) == f"{path}: objects.jet.pt: branch 'jet_ptx_NOSYS' not in {first}"
    # a pass-flag expression and a ratio name their missing branch
    path = _write(tmp_path, GOOD.replace("charge: el_charge}",
                                         "charge: el_charge, iso: el_ptcone / el_pt_NOSYS}"))
    with pytest.raises(InputError) as err:
        check_profile(load_profile(path), flat)
    assert _one_line(err) == f"{path}: objects.electron.iso: branch 'el_ptcone' not in {first}"
    path = _write(tmp_path, GOOD.replace("charge: mu_charge}",
                                         "charge: mu_charge, id: mu_quality & 3 <= 1}"))
    with pytest.raises(InputError) as err:
        check_profile(load_profile(path), flat)
    assert _one_line(err) == f"{path}: objects.muon.id: branch 'mu_quality' not in {first}"


def test_varied_branches_may_be_absent(tmp_path, ssww_samples):
    _, flat = ssww_samples
    path = _write(tmp_path, GOOD.replace("{nominal: NOSYS}",
                                         "{nominal: NOSYS, jer_up: JET_JER__1up}"))
    assert check_profile(load_profile(path), flat) == {}


def test_cli_missing_branch_exit_code_2(tmp_path, ssww_samples):
    _, flat = ssww_samples
    fileset = tmp_path / "fileset.json"
    fileset.write_text(json.dumps(flat))
    path = _write(tmp_path, GOOD.replace("el_eta", "el_eta_NOSYS"))
    result = CliRunner().invoke(main, ["run", "--config", "ssww", "--fileset", str(fileset),
                                       "--input", str(path), "--no-progress",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"{path}: objects.electron.eta: branch 'el_eta_NOSYS' not in" in lines[0]


def test_file_of_another_format_is_one_line_naming_it(physlite_file, ssww_config, ssww_samples):
    """NanoAOD's schema on a PHYSLITE file: coffea's "Failed creating nanoevents"
    becomes one line naming the file; --skip-bad-files skips it."""
    fileset = one_file_fileset(physlite_file, "EventData", "physlite")
    with pytest.raises(InputError) as err:
        run_analysis(ssww_config, fileset)
    msg = _one_line(err)
    assert msg.startswith(f"{physlite_file}: coffea cannot make events of it with the nanoaod "
                          "schema")
    assert msg.endswith("(use --skip-bad-files to skip it)")
    nano, _ = ssww_samples
    mixed = {**nano, **fileset}
    result = run_analysis(ssww_config, mixed, skip_bad_files=True, retries=0)
    skipped = result.metrics["skipped_files"]
    assert [s["file"] for s in skipped] == [str(physlite_file)]
    assert result.metrics["events_processed"] == sum(
        e["metadata"]["n_events"] for e in nano.values())


def test_schema_failure_found_by_the_check(tmp_path, cms_ttree, ssww_config):
    """A profile's schema that cannot read a file: found before the run, one line; with
    --skip-bad-files the file is skipped and reported."""
    fileset = one_file_fileset(cms_ttree, "NoSuchTree", "cms")
    with pytest.raises(InputError) as err:
        run_analysis(ssww_config, fileset, input="atlas-flat")
    msg = _one_line(err)
    assert msg.startswith(f"{cms_ttree}: cannot read tree 'NoSuchTree' as flat")
    with pytest.raises(InputError, match="no readable input file"):
        run_analysis(ssww_config, fileset, input="atlas-flat", skip_bad_files=True)


def test_documented_profiles_are_valid(tmp_path):
    """The example profiles of README.md and docs/inputs.md load."""
    import re

    root = Path(__file__).resolve().parents[2]
    texts = [root / "README.md", root / "docs" / "inputs.md"]
    blocks = [b for path in texts
              for b in re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
              if b.lstrip().startswith(("format:", "#"))]
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"example_{i}.yaml"
        path.write_text(block, encoding="utf-8")
        profile = load_profile(path)
        assert profile.format == "flat"
