"""The recipe of the shipped ssWW classifiers (models/ssww_*.onnx and their cards).

    python -m ewpolar.models.train_ssww --work /tmp/ssww_recipe [--out models]

1. Toy samples with the analysis generator (``config/ssww.yaml``, seed
   :data:`GENERATOR_SEED`): :data:`EVENTS_PER_DATASET` events per dataset, and
   :data:`TTBAR_EVENTS` for the non-prompt tt̄ background, of which only about
   one event in 10⁴ passes the signal region (with 50 k events its weight
   would rest on a handful of events).
2. ``ewpolar train`` on them: signal-region events, all three classifiers,
   k = :data:`K` folds, seed :data:`TRAINING_SEED`, default MLP settings
   (3 hidden layers of 64, ReLU, dropout 0.1, Adam 1e-3, batch 512, at most
   100 epochs with patience 10).
3. The ONNX files and cards are copied to ``--out``.

Samples already in ``WORK/samples`` with the same event counts and seed are
reused. Training is deterministic for the seed (one torch thread).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
from ewpolar.models.training.inputs import SSWW_CLASSIFIERS

__all__ = ["EVENTS_PER_DATASET", "GENERATOR_SEED", "TRAINING_SEED", "TTBAR_EVENTS", "K", "main"]

EVENTS_PER_DATASET = 50_000
TTBAR_EVENTS = 1_000_000
GENERATOR_SEED = 2024
TRAINING_SEED = 1
K = 5


def _samples_ready(fileset: Path, counts: dict[str, int]) -> bool:
    if not fileset.is_file():
        return False
    entries = json.loads(fileset.read_text(encoding="utf-8"))
    return all(
        name in entries
        and entries[name]["metadata"].get("n_events") == n
        and entries[name]["metadata"].get("seed") == GENERATOR_SEED
        and all(Path(f).is_file() for f in entries[name]["files"])
        for name, n in counts.items()
    )


def train_arguments(fileset: Path, out: Path, config: Path) -> list[str]:
    """The ``ewpolar train`` arguments of the recipe."""
    return ["--config", str(config), "--fileset", str(fileset), "--classifier", "all",
            "--k", str(K), "--seed", str(TRAINING_SEED), "--out", str(out)]


@click.command()
@click.option("--work", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the samples and the training outputs.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Copy the ONNX files and model cards here (e.g. models).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="ssWW config (default: the shipped config/ssww.yaml).")
@click.option("--progress/--no-progress", default=True, show_default=True)
def main(work: Path, out: Path | None, config_path: Path | None, progress: bool) -> None:
    """Generate the training samples and train the three shipped ssWW classifiers."""
    from ewpolar.core.config import default_config_path, load_config
    from ewpolar.generator import generate
    from ewpolar.models.cli import train

    config_path = config_path or default_config_path("ssww")
    cfg = load_config(config_path)
    samples = work / "samples"
    counts = {name: EVENTS_PER_DATASET for name in cfg.samples}
    counts["ttbar_nonprompt"] = TTBAR_EVENTS
    fileset = samples / "fileset.json"
    if not _samples_ready(fileset, counts):
        for n in sorted(set(counts.values())):
            names = [name for name, c in counts.items() if c == n]
            click.echo(f"generating {n} events for {', '.join(names)}", err=True)
            generate(cfg, events=n, seed=GENERATOR_SEED, out=samples, datasets=names,
                     progress=progress)
    trained = work / "trained"
    args = train_arguments(fileset, trained, config_path)
    if not progress:
        args.append("--no-progress")
    click.echo(f"ewpolar train {' '.join(args)}", err=True)
    train.main(args, standalone_mode=False)
    if out is not None:
        from ewpolar.models.training.pipeline import model_filename

        out.mkdir(parents=True, exist_ok=True)
        for name in SSWW_CLASSIFIERS:
            onnx_file = trained / model_filename(cfg, name)
            for path in (onnx_file, onnx_file.with_suffix(".json")):
                shutil.copy2(path, out / path.name)
        click.echo(f"copied the models to {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
