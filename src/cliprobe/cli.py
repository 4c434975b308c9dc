"""The ``cliprobe`` command line: compose and validate configs, list what can be selected.

Exit codes: 0 success, 1 a check failed (``compose --check``), 2 a user error (bad config,
missing data or weights) reported in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cliprobe.errors import EXIT_USER_ERROR, CliprobeError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=True)


def _fail(error: CliprobeError) -> None:
    typer.echo(f"cliprobe: error: {error}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@app.command()
def compose(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Hydra overrides, e.g. model=smoke")
    ] = None,
    conf: Annotated[Path, typer.Option(help="Hydra config folder")] = Path("conf"),
    out: Annotated[Path, typer.Option(help="where to write the params")] = Path("params.yaml"),
    check: Annotated[bool, typer.Option(help="only check that OUT equals the composition")] = False,
) -> None:
    """Compose conf/ (plus OVERRIDES) into params.yaml, as `dvc exp run` does, and validate it."""
    from cliprobe.config.compose import compose_params, to_yaml
    from cliprobe.config.loading import validate_params
    from cliprobe.io.atomic import write_text

    try:
        params = compose_params(conf, overrides or [])
        validate_params(params)
    except CliprobeError as error:
        _fail(error)
    text = to_yaml(params)
    if check:
        current = out.read_text() if out.is_file() else ""
        if current != text:
            typer.echo(f"{out} differs from the composition of {conf}/: run `cliprobe compose`",
                       err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} matches {conf}/")
        return
    write_text(out, text)
    typer.echo(f"composed {conf}/ {' '.join(overrides or [])} -> {out}".replace("  ", " "))


@app.command()
def validate(
    params_file: Annotated[
        Path, typer.Option("--params", help="params file")
    ] = Path("params.yaml"),
    weights: Annotated[
        bool, typer.Option(help="also check every model's weights are available")
    ] = True,
) -> None:
    """Validate params.yaml (schema, names, ranges) and, by default, model weights."""
    from cliprobe.config.loading import load_params

    try:
        params = load_params(params_file)
        if weights:
            from cliprobe.models.loader import resolve_checkpoint

            for name, config in params.model.items():
                resolve_checkpoint(name, config)
    except CliprobeError as error:
        _fail(error)
    typer.echo(f"{params_file}: valid ({len(params.model)} models x {len(params.dataset)} "
               f"datasets x {1 + len(params.manipulation)} manipulations incl. original)")


@app.command("list")
def list_options(
    conf: Annotated[Path, typer.Option(help="Hydra config folder")] = Path("conf"),
) -> None:
    """List selectable models, datasets, manipulations (conf/ files) and registry functions."""
    from cliprobe.manipulations import names

    for group in ("model", "dataset", "manipulation"):
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        typer.echo(f"{group}: {', '.join(options)}")
    typer.echo(f"manipulation functions: {', '.join(names())}")


@app.command()
def report(
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="git revision or DVC experiment to compare (repeatable)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="output HTML file")] = None,
    params_file: Annotated[
        Path, typer.Option("--params", help="params file")
    ] = Path("params.yaml"),
) -> None:
    """Render plots/report.html from a finished run, or compare runs (--compare REV ...)."""
    from cliprobe.io.atomic import write_text

    try:
        if compare:
            from cliprobe.report.compare import compare as compare_runs
            from cliprobe.report.render import render_comparison

            table = compare_runs(compare)
            target = out or Path("plots/compare.html")
            write_text(target, render_comparison(table, ["workspace", *compare]))
        else:
            from cliprobe.report.collect import collect
            from cliprobe.report.render import render

            target = out or Path("plots/report.html")
            write_text(target, render(collect(params_file)))
    except CliprobeError as error:
        _fail(error)
    except FileNotFoundError as error:
        typer.echo(f"cliprobe: error: {error.filename} is missing: run the pipeline first "
                   "(`make repro` or `dvc repro`)", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    typer.echo(f"wrote {target}")


if __name__ == "__main__":
    app()
