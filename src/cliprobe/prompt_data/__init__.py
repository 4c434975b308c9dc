"""Per-dataset zero-shot class names and templates, kept as data (one YAML file per set here).

Each file cites where its content comes from. The ``clip_*`` sets are the CLIP paper's
(OpenAI's ``data/prompts.md``, MIT License; ``clip_imagenet`` reads OpenAI's ImageNet class
names and 80 templates from open_clip at run time instead of copying them). A file holds:

- ``templates``: strings with one ``{}`` for the class name (or ``templates_from_open_clip``:
  the name of a template list in ``open_clip.zero_shot_metadata``);
- ``classes`` (optional): the published class names, in the published order (or
  ``classes_from_open_clip``); ``omit``: published names the dataset does not have;
- ``match``: how ``classes`` meet the dataset's labels: ``name`` (equal up to case, ``_`` and
  spaces) or ``position`` (the i-th published name belongs to the i-th class of the dataset's
  class order, as the source lists it; e.g. Caltech-101's folder names and CLIP's names differ).

A dataset config names its set (``dataset.<name>.prompts``: a bundled name, or the path of a
YAML file of the same shape for your own); :func:`load_prompt_data` reads it and
:func:`class_name_map` gives every label its class name.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from cliprobe.errors import ConfigError

Match = Literal["name", "position"]


@dataclass(frozen=True)
class PromptData:
    """One prompt data file: templates, optional class names, and where they come from."""

    name: str
    source: str
    templates: tuple[str, ...]
    classes: tuple[str, ...] | None = None
    match: Match = "name"
    omit: tuple[str, ...] = ()


def bundled_names() -> list[str]:
    """Names of the prompt data files shipped with cliprobe."""
    folder = importlib.resources.files(__name__)
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def _is_path(reference: str) -> bool:
    return os.sep in reference or "/" in reference or reference.endswith((".yaml", ".yml"))


def _from_open_clip(attribute: str, what: str, reference: str) -> list[str]:
    from open_clip import zero_shot_metadata

    values = getattr(zero_shot_metadata, attribute, None)
    if values is None:
        raise ConfigError(f"prompt data {reference!r}: open_clip.zero_shot_metadata has no "
                          f"{attribute} ({what}); the installed open_clip is too old or new")
    # the templates are functions of the class name (lambda c: f"a photo of a {c}.")
    return [value("{}") if callable(value) else str(value) for value in values]


def _parse(raw: object, reference: str) -> PromptData:
    if not isinstance(raw, dict):
        raise ConfigError(f"prompt data {reference!r} is not a YAML mapping")
    unknown = set(raw) - {"name", "source", "templates", "templates_from_open_clip", "classes",
                          "classes_from_open_clip", "match", "omit"}
    if unknown:
        raise ConfigError(f"prompt data {reference!r} has unknown keys {sorted(unknown)}")
    if not raw.get("source"):
        raise ConfigError(f"prompt data {reference!r} must cite its source (key 'source')")
    if "templates_from_open_clip" in raw:
        templates = _from_open_clip(str(raw["templates_from_open_clip"]), "templates", reference)
    else:
        templates = [str(t) for t in raw.get("templates") or []]
    if not templates:
        raise ConfigError(f"prompt data {reference!r} has no templates")
    for template in templates:
        if template.count("{}") != 1 or template.replace("{}", "").count("{"):
            raise ConfigError(f"prompt data {reference!r}: template {template!r} must hold "
                              "exactly one {} (the class name)")
    if "classes_from_open_clip" in raw:
        classes: list[str] | None = _from_open_clip(str(raw["classes_from_open_clip"]),
                                                     "class names", reference)
    else:
        classes = [str(c) for c in raw["classes"]] if raw.get("classes") else None
    match = raw.get("match", "name")
    if match not in ("name", "position"):
        raise ConfigError(f"prompt data {reference!r}: match must be 'name' or 'position'")
    return PromptData(name=str(raw.get("name") or reference), source=str(raw["source"]),
                      templates=tuple(templates),
                      classes=tuple(classes) if classes is not None else None, match=match,
                      omit=tuple(str(o) for o in raw.get("omit") or ()))


@cache
def load_prompt_data(reference: str) -> PromptData:
    """The prompt data named ``reference``: a bundled set (``clip_cifar10``) or a YAML file.

    Raises :class:`ConfigError` for unknown names, missing files and malformed content.
    """
    if _is_path(reference):
        file = Path(reference).expanduser()
        if not file.is_file():
            raise ConfigError(f"prompt data file {file} does not exist")
        text = file.read_text(encoding="utf-8")
    else:
        resource = importlib.resources.files(__name__) / f"{reference}.yaml"
        if not resource.is_file():
            raise ConfigError(f"unknown prompt data {reference!r}; bundled: "
                              f"{', '.join(bundled_names())}, or give the path of a YAML file")
        text = resource.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"prompt data {reference!r} is not valid YAML: {error}") from None
    return _parse(raw, reference)


def _normalised(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def class_name_map(
    data: PromptData, labels: Sequence[str], class_order: Sequence[str]
) -> dict[str, str]:
    """label -> the class name ``data`` gives it (the label itself when ``data`` has none).

    ``class_order`` is the dataset's full class list in its source's class-index order (used
    by ``match: position``). Raises :class:`ConfigError` naming the labels that find no name.
    """
    if data.classes is None:
        return {label: label for label in labels}
    published = [name for name in data.classes if name not in set(data.omit)]
    if data.match == "position":
        if len(published) != len(class_order):
            raise ConfigError(
                f"prompt data {data.name!r} lists {len(published)} classes but the dataset's "
                f"class order has {len(class_order)}; it was written for another dataset")
        by_label = dict(zip(class_order, published, strict=True))
    else:
        by_norm = {_normalised(name): name for name in published}
        by_label = {label: by_norm[_normalised(label)] for label in labels
                    if _normalised(label) in by_norm}
    missing = [label for label in labels if label not in by_label]
    if missing:
        raise ConfigError(
            f"prompt data {data.name!r} has no class name for {len(missing)} label(s) "
            f"({', '.join(map(repr, missing[:5]))}); it was written for another dataset, or set "
            "zeroshot.class_names=labels")
    return {label: by_label[label] for label in labels}
