"""The ``ewpolar`` command line: a thin layer over the library functions."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
from ewpolar.clitools import user_errors
from ewpolar.core.errors import EwpolarError

__all__ = ["main"]

log = logging.getLogger("ewpolar")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ewpolar")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ewpolar: polarization and CP analyses of electroweak bosons on coffea."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:
        # distributed logs every scheduler, nanny and client event at INFO (its own
        # config, read when distributed is imported); without -v a dask run shows its
        # warnings only. Worker processes inherit the setting.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


@main.command()
@click.option("--channel", type=click.Choice(["ssww", "wh"]), required=True,
              help="Which analysis' samples to make.")
@click.option("--events", type=click.IntRange(min=1), default=None,
              help="Events per dataset [default: 10000; with --lhe: every event of the file].")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (output is deterministic for a seed).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for the ROOT files and fileset.json.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Analysis config with the samples (default: the shipped config of the channel).")
@click.option("--backend", type=click.Choice(["toy", "pythia"]), default="toy", show_default=True,
              help="toy: fast parton-level toy with a parametrised detector; pythia: Pythia 8 "
                   "showers, hadronisation and anti-kt jets (needs the 'pythia' extra).")
@click.option("--lhe", "lhe_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Shower this LHE file with Pythia 8 into one dataset (implies --backend pythia).")
@click.option("--dataset", default=None,
              help="With --lhe: dataset name (default: the file's stem; a config sample's metadata is used).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes for --backend pythia (same output for any number).")
@click.option("--mpi/--no-mpi", default=False, show_default=True,
              help="Pythia multi-parton interactions (about 10 times slower).")
@user_errors
def generate(channel: str, events: int | None, seed: int, out: Path, config_path: Path | None,
             backend: str, lhe_path: Path | None, dataset: str | None, jobs: int, mpi: bool) -> None:
    """Generate samples as NanoAOD-schema ROOT files plus a coffea fileset.json."""
    from ewpolar.core.config import load_config

    cfg = load_config(config_path if config_path is not None else channel)
    if cfg.channel != channel:
        raise EwpolarError(f"--config {config_path}: config is for channel '{cfg.channel}', not '{channel}'")
    if lhe_path is not None or backend == "pythia":
        from ewpolar.generator import pythia

        if lhe_path is not None:
            fileset = pythia.shower_lhe(cfg, lhe_path, out=out, dataset=dataset, events=events,
                                        seed=seed, progress=True, jobs=jobs, mpi=mpi)
        else:
            fileset = pythia.generate(cfg, events=events or 10_000, seed=seed, out=out,
                                      progress=True, jobs=jobs, mpi=mpi)
    else:
        from ewpolar.generator import generate as run_generator

        fileset = run_generator(cfg, events=events or 10_000, seed=seed, out=out, progress=True)
    click.echo(f"wrote {fileset}")


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
              help="Analysis config (config/ssww.yaml or config/wh.yaml).")
@click.option("--fileset", type=click.Path(path_type=Path), required=True,
              help="coffea fileset JSON (as written by 'ewpolar generate').")
@click.option("--region", default="all", show_default=True,
              help="One region of the config, a comma-separated list, or 'all'.")
@click.option("--executor", type=click.Choice(["iterative", "futures", "dask", "condor"]),
              default="iterative", show_default=True,
              help="coffea executor; 'condor' starts HTCondor dask workers from the config's condor settings.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes (futures) or LocalCluster workers (dask).")
@click.option("--scheduler", default=None, help="Address of an existing dask scheduler (with --executor dask).")
@click.option("--tls-ca-file", type=click.Path(dir_okay=False), default=None, help="TLS: CA certificate of the scheduler.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), default=None, help="TLS: client certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="TLS: client private key.")
@click.option("--chunksize", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Entries per chunk.")
@click.option("--align-clusters", is_flag=True,
              help="End chunks at the files' cluster boundaries (at least --chunksize entries "
                   "each): no basket is decompressed by two chunks.")
@click.option("--maxchunks", type=click.IntRange(min=1), default=None, help="At most this many chunks per dataset.")
@click.option("--skip-bad-files", is_flag=True, help="Skip unreadable files and report them in metrics.json.")
@click.option("--input", "input_profile", default="nanoaod", show_default=True,
              metavar="NAME|PATH",
              help="Input profile: how the files map onto what the selections read. Shipped: "
                   "nanoaod, cms-opendata-2015, physlite, atlas-flat; or a profile YAML file "
                   "(docs/inputs.md).")
@click.option("--retries", type=int, default=1, show_default=True,
              help="Attempts after a failed chunk (a transient read error) before its file counts as bad; 0: none.")
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for per-chunk checkpoints; a rerun processes only chunks not yet done.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: histograms.root, cutflow.json, metrics.json.")
@user_errors
def run(config_path: Path, fileset: Path, region: str, executor: str, workers: int,
        scheduler: str | None, tls_ca_file: str | None, tls_cert: str | None, tls_key: str | None,
        chunksize: int, align_clusters: bool, maxchunks: int | None, skip_bad_files: bool,
        input_profile: str, retries: int, checkpoint: Path | None, progress: bool,
        out: Path) -> None:
    """Run the analysis of a config over a fileset, region by region."""
    from ewpolar.core.config import load_config
    from ewpolar.inputs.profile import load_profile
    from ewpolar.runner.run import load_fileset, run_analysis, tls_security

    security = tls_security(tls_ca_file, tls_cert, tls_key)
    cfg = load_config(config_path)
    regions = None if region == "all" else [r.strip() for r in region.split(",") if r.strip()]
    profile = load_profile(input_profile)
    files = load_fileset(fileset, tree=profile.tree)
    result = run_analysis(cfg, files, regions=regions, executor=executor, workers=workers,
                          scheduler=scheduler, chunksize=chunksize,
                          align_clusters=align_clusters, maxchunks=maxchunks,
                          skip_bad_files=skip_bad_files, checkpoint=checkpoint, retries=retries,
                          progress=progress, security=security, input=profile, out=out)
    m = result.metrics
    click.echo(f"processed {m['events_processed']} of {m['events_total']} events in "
               f"{m['seconds']:.1f} s ({m['events_per_second'] or 0:.0f} events/s), "
               f"{len(m['skipped_files'])} file(s) skipped")
    for skip in m["skipped_files"]:
        click.echo(f"skipped {skip['file']}: {skip['reason']}", err=True)
    click.echo(f"wrote {', '.join(str(p) for p in result.files.values())}")


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Analysis config of the histograms.")
@click.option("--histograms", type=click.Path(path_type=Path), default=None,
              help="histograms.root written by 'ewpolar run' (with --config).")
@click.option("--workspace", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fit any pyhf workspace JSON instead (e.g. a published likelihood).")
@click.option("--patch", "patches", multiple=True,
              help="With --workspace: a JSON Patch file, or PATCHSET:NAME; repeat to apply several in order.")
@click.option("--mu", "mus", type=float, multiple=True,
              help="With --workspace: POI value at which to give CLs (repeatable; default 1).")
@click.option("--ranking", is_flag=True, help="With --workspace: add the nuisance-parameter ranking.")
@click.option("--toys", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pseudo-experiments per POI value for a toy-based CLs limit beside the asymptotic one.")
@click.option("--pseudo-data", type=click.Choice(["asimov", "poisson"]), default=None,
              help="Pseudo-data (default: the config's fit.pseudo_data).")
@click.option("--seed", type=int, default=None, help="Seed of a Poisson draw or of the toys (default: the config's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: workspace_*.json and results.json.")
@user_errors
def fit(config_path: Path | None, histograms: Path | None, workspace: Path | None,
        patches: tuple[str, ...], mus: tuple[float, ...], ranking: bool, toys: int,
        pseudo_data: str | None, seed: int | None, out: Path) -> None:
    """Fit the histograms of a run (--config, --histograms) or any pyhf workspace (--workspace)."""
    from ewpolar.report import headline

    if workspace is not None:
        if config_path is not None or histograms is not None:
            raise EwpolarError("--workspace: give either --workspace or --config with --histograms")
        from ewpolar.stats.generic import fit_workspace

        results = fit_workspace(workspace, patches=patches, mu=mus or (1.0,), ranking=ranking,
                                toys=toys, seed=seed or 0, out=out)
    else:
        if config_path is None or histograms is None:
            raise EwpolarError("fit: give --config and --histograms (or --workspace FILE)")
        if patches or mus or ranking:
            raise EwpolarError("--patch, --mu, --ranking: only with --workspace")
        from ewpolar.core.config import load_config
        from ewpolar.pipeline import fit_channel

        cfg = load_config(config_path)
        results = fit_channel(cfg, histograms, out, pseudo_data=pseudo_data, seed=seed, toys=toys)
    for line in headline(results):
        click.echo(line)
    click.echo(f"wrote {out / 'results.json'}")


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
              help="Analysis config of the histograms.")
@click.option("--histograms", type=click.Path(path_type=Path), required=True,
              help="histograms.root written by 'ewpolar run'.")
@click.option("--fit", "fit_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of 'ewpolar fit' (adds pre/post-fit plots, pulls, scans).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder for PNG and PDF figures.")
@user_errors
def plot(config_path: Path, histograms: Path, fit_dir: Path | None, out: Path) -> None:
    """Figures of a run and its fit (PNG and PDF)."""
    from ewpolar.core.config import load_config
    from ewpolar.plots import make_plots

    paths = make_plots(load_config(config_path), histograms, out, fit_dir=fit_dir, progress=True)
    click.echo(f"wrote {len(paths)} files to {out}")


@main.command()
@click.option("--run", "runs", type=click.Path(file_okay=False, path_type=Path), multiple=True,
              required=True, help="Folder of 'ewpolar run' (repeat for several channels).")
@click.option("--fit", "fits", type=click.Path(file_okay=False, path_type=Path), multiple=True,
              help="Folder of 'ewpolar fit', in the order of --run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="HTML file to write.")
@user_errors
def report(runs: tuple[Path, ...], fits: tuple[Path, ...], out: Path) -> None:
    """A self-contained HTML report of runs and fits."""
    from ewpolar.report import write_report

    if fits and len(fits) != len(runs):
        raise EwpolarError(f"--fit: give one per --run ({len(runs)}), got {len(fits)}")
    labels = [f"{r.name}" if r.name not in {x.name for x in runs if x != r} else str(r) for r in runs]
    path = write_report(out, runs=dict(zip(labels, runs, strict=True)),
                        fits=dict(zip(labels, fits, strict=True)) if fits else None)
    click.echo(f"wrote {path}")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"),
              show_default=True, help="Output folder.")
@click.option("--events", type=click.IntRange(min=100), default=20_000, show_default=True,
              help="Events per dataset.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--executor", type=click.Choice(["iterative", "futures", "dask"]), default="futures",
              show_default=True, help="coffea executor.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Worker processes.")
@click.option("--backend", type=click.Choice(["toy", "pythia"]), default="toy", show_default=True,
              help="Generator of the samples: the toy, or Pythia 8 at hadron level (slower: "
                   "use fewer --events, e.g. 2000).")
@user_errors
def demo(out: Path, events: int, seed: int, executor: str, workers: int, backend: str) -> None:
    """The main job on the embedded default: generate, run, fit, plot and report both analyses."""
    import time

    from ewpolar.pipeline import run_demo

    tic = time.perf_counter()
    res = run_demo(out, events=events, seed=seed, executor=executor, workers=workers, progress=True,
                   backend=backend)
    for line in res.lines:
        click.echo(line)
    click.echo(f"report: {res.report}  ({time.perf_counter() - tic:.0f} s)")


def _register_ml_commands() -> None:
    """The ML commands (:mod:`ewpolar.models.cli`); each imports the training extra when it runs."""
    from ewpolar.models.cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_ml_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
