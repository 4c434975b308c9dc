"""The ``cliprobe`` command line: compose and validate configs, list what can be selected.

Exit codes: 0 success, 1 a check failed (``compose --check``), 2 a user error (bad config,
missing data or weights) reported in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
            # the command that makes this check pass: same overrides, same files
            command = ["cliprobe compose", *(overrides or [])]
            command += [] if conf == Path("conf") else ["--conf", str(conf)]
            command += [] if out == Path("params.yaml") else ["--out", str(out)]
            typer.echo(f"{out} differs from the composition of "
                       f"{' '.join([f'{conf}/', *(overrides or [])])}: run `{' '.join(command)}`",
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
    what: Annotated[
        str, typer.Argument(help="all, model, dataset, manipulation, prompts or metrics")
    ] = "all",
    conf: Annotated[Path, typer.Option(help="Hydra config folder")] = Path("conf"),
    markdown: Annotated[
        bool, typer.Option(help="metrics: the README's Markdown list")
    ] = False,
) -> None:
    """List selectable models, datasets, manipulations, prompt sets (conf/ files), registry
    functions and the bundled prompt data a dataset's ``prompts`` can name; `cliprobe list
    metrics` lists every metric with its description, unit and direction."""
    groups = ("model", "dataset", "manipulation", "prompts")
    if what not in ("all", "metrics", *groups):
        typer.echo(f"cliprobe: error: cannot list '{what}'; choose all, "
                   f"{', '.join(groups)} or metrics", err=True)
        raise typer.Exit(EXIT_USER_ERROR)
    if what == "metrics":
        _list_metrics(markdown)
        return
    from cliprobe.manipulations import names
    from cliprobe.prompt_data import bundled_names

    for group in groups:
        if what in ("all", group):
            options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
            typer.echo(f"{group}: {', '.join(options)}")
    if what in ("all", "manipulation"):
        typer.echo(f"manipulation functions: {', '.join(names())}")
    if what in ("all", "prompts"):
        typer.echo(f"prompt data (dataset.<name>.prompts): {', '.join(bundled_names())}")
    if what == "all":
        typer.echo("metrics: `cliprobe list metrics`")


def _list_metrics(markdown: bool) -> None:
    """The metric registry as a table (or the README's Markdown list)."""
    from cliprobe.metrics.registry import METRICS, markdown_list

    if markdown:
        typer.echo(markdown_list(), nl=False)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cliprobe metrics ({k} = a cutoff of retrieval.recall_k)",
                  show_lines=False)
    for column in ("name", "family", "unit", "better", "description"):
        table.add_column(column, overflow="fold")
    for metric in METRICS:
        table.add_row(metric.name, metric.family, metric.unit.name, metric.better,
                      metric.description)
    Console(width=160).print(table)


def _looks_like_image(token: str) -> bool:
    """An existing file, or a name with an image suffix (a mistyped path, still an image)."""
    from cliprobe.datasets.sources import IMAGE_SUFFIXES

    return Path(token).suffix.lower() in IMAGE_SUFFIXES or Path(token).is_file()


@app.command()
def workers(
    stop: Annotated[bool, typer.Option(help="stop them all")] = False,
) -> None:
    """List this user's warm model workers (see README "Running big"), or stop them."""
    from cliprobe.worker.control import list_workers, stop_workers
    from cliprobe.worker.identity import socket_dir

    folder = socket_dir()
    if folder is None:
        typer.echo("no private worker folder: stages run in their own processes")
        return
    if stop:
        typer.echo(f"stopped {stop_workers(folder)} workers in {folder}")
        return
    running = list_workers(folder)
    for worker in running:
        typer.echo(f"pid {worker.pid}  key {worker.key}  log {worker.log}")
    typer.echo(f"{len(running)} workers in {folder}")


@app.command("prune-lock")
def prune_lock(
    root: Annotated[Path, typer.Option(help="the project's folder")] = Path("."),
) -> None:
    """Drop dvc.lock's entries of stages dvc.yaml no longer defines (the cells' stages of a
    project that ran before they moved to pipelines/cells-*/dvc.yaml)."""
    from cliprobe.config.cell_shards import prune_root_lock

    stale = prune_root_lock(root)
    typer.echo(f"removed {len(stale)} stale entries from {root / 'dvc.lock'}"
               + (f" ({stale[0]}, ...)" if stale else ""))


def split_labels(argv: list[str], images: list[Path], labels: list[str]) -> tuple[
        list[Path], list[str]]:
    """Allow ``--labels egg cat`` before or after the images.

    Click gives an option one value, so the other words after ``--labels`` / ``-l`` (or
    ``--labels=egg``) land in IMAGES. Each token after the option, up to the next option, is a
    label unless it looks like an image (:func:`_looks_like_image`): ``--labels egg cat
    photo.jpg`` is two labels and one image.
    """
    extra: list[str] = []
    for position, token in enumerate(argv):
        if token in {"--labels", "-l"}:
            following = argv[position + 2:]
        elif token.startswith("--labels="):
            following = argv[position + 1:]
        else:
            continue
        for value in following:
            if value.startswith("-"):
                break
            if not _looks_like_image(value):
                extra.append(value)
    moved = [e for e in extra if Path(e) in images]
    return ([p for p in images if str(p) not in moved],
            [*labels, *(e for e in moved if e not in labels)])


def _model_config(name: str, conf: Path):  # type: ignore[no-untyped-def]
    """The ModelConfig of conf/model/<name>.yaml (names listed when unknown)."""
    from cliprobe.config.compose import compose_params
    from cliprobe.config.schema import ModelConfig

    composed = compose_params(conf, [f"model=[{name}]"])
    return ModelConfig.model_validate(composed["model"][name])


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(help="image files to classify")],
    labels: Annotated[list[str], typer.Option("--labels", "-l", help="candidate classes")],
    model: Annotated[str, typer.Option(help="a conf/model name")] = "ViT-B-32",
    prompt: Annotated[str, typer.Option(help="template, {} = the label")] = "a photo of a {}.",
    top: Annotated[int, typer.Option(help="rows to show per image")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    conf: Annotated[Path, typer.Option(help="Hydra config folder")] = Path("conf"),
) -> None:
    """Zero-shot classify images among LABELS (seed 000's demo): a ranked probability table."""
    import json
    import sys

    import numpy as np

    from cliprobe.embedding.encoder import make_image_encoder
    from cliprobe.images import ImageSkipped, load_rgb
    from cliprobe.metrics.zeroshot import (
        build_classifier,
        encode_text_fn,
        logits,
        model_logit_parameters,
        softmax,
    )
    from cliprobe.models import load_model

    images, labels = split_labels(sys.argv, images, labels)
    if "{}" not in prompt:
        typer.echo("cliprobe: error: --prompt needs a {} where the label goes", err=True)
        raise typer.Exit(EXIT_USER_ERROR)
    if not images or len(labels) < 2:
        typer.echo("cliprobe: error: give at least one image and two --labels", err=True)
        raise typer.Exit(EXIT_USER_ERROR)
    try:
        loaded = load_model(model, _model_config(model, conf), "auto")
        classifier = build_classifier(labels, [prompt], encode_text_fn(loaded))
        logit = model_logit_parameters(loaded)  # the model's own scale (and SigLIP's bias)
        encode = make_image_encoder(loaded.model, loaded.device, loaded.config.precision)
        results = []
        for path in images:
            try:
                image = load_rgb(path)
            except ImageSkipped as skipped:
                raise CliprobeError(f"{path}: {skipped.reason}") from None
            vector = encode(loaded.preprocess(image).unsqueeze(0))
            probabilities = softmax(logits(vector, classifier, logit["logit_scale"],
                                                   logit["logit_bias"]))[0]
            order = np.argsort(-probabilities, kind="stable")[:top]
            results.append({"image": str(path), "model": model, "weights": loaded.weights,
                            "ranking": [{"label": labels[i], "probability": float(
                                probabilities[i])} for i in order]})
    except CliprobeError as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for result in results:
        table = Table(title=f"{result['image']}  ({model}: {result['weights']})")
        table.add_column("label")
        table.add_column("probability", justify="right")
        table.add_column("")
        for entry in result["ranking"]:
            bar = "█" * round(entry["probability"] * 30)
            table.add_row(entry["label"], f"{entry['probability']:.1%}", bar)
        console.print(table)


@app.command()
def attack(
    image: Annotated[Path, typer.Argument(help="the image to attack")],
    word: Annotated[str, typer.Option(help="the text to write")] = "CAT",
    out: Annotated[Path, typer.Option(help="where to write the attacked image")] = Path(
        "attacked.png"),
    kind: Annotated[str, typer.Option(help="postit (seed 000) or typographic (SPEC §4)")] = (
        "postit"),
    seed: Annotated[int, typer.Option(help="seed of the random choices (typographic)")] = 0,
) -> None:
    """Write a typographic / post-it version of IMAGE with the pipeline's own manipulation."""
    from cliprobe.config.loading import manipulation_params
    from cliprobe.embedding.reader import manipulation_step
    from cliprobe.images import ImageSkipped, load_rgb
    from cliprobe.io.atomic import atomic_path
    from cliprobe.manipulations import ImageContext, get

    if kind not in {"postit", "typographic"}:
        typer.echo("cliprobe: error: --kind must be postit or typographic", err=True)
        raise typer.Exit(EXIT_USER_ERROR)
    try:
        source = load_rgb(image)
    except ImageSkipped as skipped:
        typer.echo(f"cliprobe: error: {image}: {skipped.reason}", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    raw = {"word": word} if kind == "postit" else {}
    try:
        params = manipulation_params(kind, kind, raw)
    except CliprobeError as error:
        _fail(error)
    step = manipulation_step(get(kind), params, kind, seed)
    # typographic writes a class other than the true one: make WORD the only other class
    result = step(source, ImageContext(image.name, "", (word,)))
    with atomic_path(out) as tmp:
        result.image.save(tmp, format=out.suffix.lstrip(".").upper().replace("JPG", "JPEG")
                          or "PNG")
    typer.echo(f"wrote {out} ({kind}, {result.info})")


def _stats(params_file: Path) -> dict[str, Any]:
    """Seed and bootstrap settings of the workspace's params (defaults without a file)."""
    import yaml

    raw = yaml.safe_load(params_file.read_text()) if params_file.is_file() else {}
    stats = (raw or {}).get("stats") or {}
    return {"seed": int((raw or {}).get("seed", 0)),
            "resamples": int(stats.get("bootstrap_resamples", 1000)),
            "confidence": float(stats.get("confidence", 0.95))}


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
    """Render plots/report.html from a finished run, or compare runs (--compare REV ...).

    With --compare, the first REV is the baseline: every other run (further REVs, then the
    workspace) is shown beside it with its difference, tested pairwise where the images are
    the same."""
    from cliprobe.io.atomic import write_text

    try:
        if compare:
            from cliprobe.report.compare import compare as compare_runs
            from cliprobe.report.comparison import render_comparison

            stats = _stats(params_file)
            table = compare_runs(compare, **stats)
            target = out or Path("plots/compare.html")
            write_text(target, render_comparison(table, [*compare, "workspace"],
                                                 bool(table.attrs.get("random_weights"))))
        else:
            from cliprobe.config.stage_params import read_params
            from cliprobe.report.collect import collect
            from cliprobe.report.render import render

            target = out or Path("plots/report.html")
            write_text(target, render(collect(read_params("report", params_file))))
    except CliprobeError as error:
        _fail(error)
    except FileNotFoundError as error:
        typer.echo(f"cliprobe: error: {error.filename} is missing: run the pipeline first "
                   "(`make repro` or `dvc repro`)", err=True)
        raise typer.Exit(EXIT_USER_ERROR) from None
    typer.echo(f"wrote {target}")


if __name__ == "__main__":
    app()
