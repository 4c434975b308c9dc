"""Prompt sets (``conf/prompts/*.yaml``): which texts stand for each class in zero-shot.

Three kinds:

- ``dataset`` (the default): each dataset's own templates, from the prompt data its config
  names (``dataset.<name>.prompts``; :mod:`cliprobe.prompt_data`), as the CLIP paper and
  CLIP_benchmark evaluate each dataset;
- ``templates``: strings with one ``{}``, filled with the class name ("a photo of a {}."), given
  inline or taken from prompt data (``templates_from``), the same for every dataset;
- ``descriptions``: per-class free text read from a CSV with columns ``label,description``
  (seed 002's raw and hand-edited Wikipedia descriptions). Several rows for one label are all
  prompts of that class (averaged like templates). ``description_template`` builds the prompt
  from ``{name}`` and ``{description}`` ("{name} is {description}" is seed 002's third style).

The *class name* a template is filled with is the dataset's published name where its prompt
data has one (``zeroshot.class_names: dataset``, e.g. OpenAI's ImageNet names, CLIP's
"off-center face" for Caltech-101's ``Faces``), else the label. :func:`class_prompts` gives
every class its texts, ready for :func:`cliprobe.metrics.zeroshot.build_classifier`;
:func:`resolve_class_prompts` does it for a dataset and records which choices were made.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cliprobe.errors import ConfigError, DataError
from cliprobe.prompt_data import class_name_map, load_prompt_data


def _fields(template: str) -> list[str | None]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


class PromptSet(BaseModel):
    """One prompt set, as composed into ``params.yaml`` under ``prompts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["dataset", "templates", "descriptions"] = "templates"
    templates: list[str] = Field(
        default_factory=list, description="kind templates: strings with exactly one {}"
    )
    templates_from: str | None = Field(
        default=None, description="kind templates: take the templates of this prompt data "
        "(a bundled name such as imagenet80, or a YAML file) instead of listing them",
    )
    descriptions_csv: str | None = Field(
        default=None, description="kind descriptions: CSV with label,description; null = the "
        "file the dataset names",
    )
    description_template: str = Field(
        default="{description}", description="kind descriptions: prompt built from {name} "
        "and {description}",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PromptSet:
        if self.kind == "dataset":
            if self.templates or self.templates_from or self.descriptions_csv:
                raise ValueError("a dataset prompt set takes its templates from each dataset's "
                                 "prompt data: give no templates, templates_from or CSV")
        elif self.kind == "templates":
            if bool(self.templates) == bool(self.templates_from):
                raise ValueError("a templates prompt set needs either templates (a list) or "
                                 "templates_from (prompt data), not both")
            for template in self.templates:
                if _fields(template) != [""]:
                    raise ValueError(
                        f"template {template!r} must hold exactly one {{}} (the class name)"
                    )
        else:
            if self.templates or self.templates_from:
                raise ValueError("a descriptions prompt set takes no templates")
            fields = set(_fields(self.description_template))
            if "description" not in fields or not fields <= {"name", "description"}:
                raise ValueError(
                    "description_template must use {description} and may use {name}, nothing "
                    "else"
                )
        return self


def load_descriptions(path: str | Path) -> dict[str, list[str]]:
    """Read a ``label,description`` CSV into label -> descriptions (file order kept).

    Raises :class:`DataError` when the file is missing, lacks a column or has empty text.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"descriptions file {file} does not exist; give a CSV with columns "
                        "label,description")
    import pandas as pd  # lazily: the params schema, read by every stage, imports this module

    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    missing = {"label", "description"} - set(frame.columns)
    if missing:
        raise DataError(f"descriptions file {file} lacks the column(s) {sorted(missing)}; it "
                        "needs label,description")
    descriptions: dict[str, list[str]] = {}
    for row in frame.itertuples(index=False):
        label, text = str(row.label).strip(), str(row.description).strip()
        if not label or not text:
            raise DataError(f"descriptions file {file} has a row with an empty label or "
                            f"description (label {label!r})")
        descriptions.setdefault(label, []).append(text)
    return descriptions


#: The prompt data of a dataset whose config names none: the CLIP paper's basic prompt.
DEFAULT_DATASET_PROMPTS = "photo_of"


def templates_of(prompts: PromptSet, dataset_prompts: str | None = None) -> list[str]:
    """The templates ``prompts`` fills class names into (kind ``dataset``: the dataset's own,
    from the prompt data ``dataset_prompts`` names; ``templates_from``: that data's)."""
    if prompts.kind == "dataset":
        return list(load_prompt_data(dataset_prompts or DEFAULT_DATASET_PROMPTS).templates)
    if prompts.templates_from:
        return list(load_prompt_data(prompts.templates_from).templates)
    return list(prompts.templates)


def texts_for_class(
    prompts: PromptSet,
    class_name: str,
    descriptions: Mapping[str, Sequence[str]] | None = None,
    *,
    label: str | None = None,
    templates: Sequence[str] | None = None,
) -> list[str]:
    """The prompts standing for a class: templates filled with ``class_name``, or the
    descriptions of its ``label`` (default: ``class_name``).

    ``templates`` defaults to :func:`templates_of` ``(prompts)``. ``descriptions`` (label ->
    texts, from :func:`load_descriptions`) is needed for kind ``descriptions``; a class without
    one raises :class:`DataError`.
    """
    if prompts.kind != "descriptions":
        filled = templates if templates is not None else templates_of(prompts)
        return [template.format(class_name) for template in filled]
    key = label if label is not None else class_name
    if descriptions is None:
        raise ConfigError(f"prompt set '{prompts.name}' needs per-class descriptions: set "
                          "prompts.descriptions_csv or the dataset's descriptions_csv")
    texts = descriptions.get(key)
    if not texts:
        raise DataError(f"prompt set '{prompts.name}' has no description for class "
                        f"{key!r}; add a row '{key},<text>' to the descriptions CSV")
    return [prompts.description_template.format(name=class_name, description=text)
            for text in texts]


def class_prompts(
    prompts: PromptSet,
    class_names: Sequence[str],
    descriptions_csv: str | Path | None = None,
    *,
    names: Mapping[str, str] | None = None,
    dataset_prompts: str | None = None,
) -> dict[str, list[str]]:
    """Every class's prompts: label -> texts, in ``class_names`` (labels) order.

    ``names`` maps a label to the class name its templates are filled with (default: the
    label); ``dataset_prompts`` is the dataset's prompt data (kind ``dataset``). For kind
    ``descriptions`` the CSV is ``prompts.descriptions_csv`` if set, else ``descriptions_csv``
    (the dataset's file); descriptions are looked up by label.
    """
    descriptions = None
    templates = None
    if prompts.kind == "descriptions":
        source = prompts.descriptions_csv or descriptions_csv
        if source is None:
            raise ConfigError(f"prompt set '{prompts.name}' needs per-class descriptions: set "
                              "prompts.descriptions_csv or the dataset's descriptions_csv")
        descriptions = load_descriptions(source)
    else:
        templates = templates_of(prompts, dataset_prompts)
    named = names or {}
    return {label: texts_for_class(prompts, named.get(label, label), descriptions, label=label,
                                   templates=templates)
            for label in class_names}


@dataclass(frozen=True)
class ClassPrompts:
    """Every class's prompts and the record of how they were chosen (cell metadata)."""

    #: label -> prompts, in classifier order
    texts: dict[str, list[str]]
    #: label -> the class name filled into the templates
    names: dict[str, str]
    record: dict[str, Any]


def resolve_class_prompts(
    prompts: PromptSet,
    classes: Sequence[str],
    dataset_labels: Sequence[str],
    class_order: Sequence[str],
    *,
    dataset_prompts: str | None,
    class_names: Literal["dataset", "labels"] = "dataset",
    descriptions_csv: str | Path | None = None,
) -> ClassPrompts:
    """The prompts of a dataset's classifier and what produced them.

    ``classes`` are the classifier's labels (the dataset's, then any extra classes such as a
    typographic attack's words); ``dataset_labels`` the dataset's own (they get the class names
    of its prompt data ``dataset_prompts`` when ``class_names`` is ``dataset``; extra classes
    keep their text); ``class_order`` the dataset's full class list in its source's order.
    """
    data_name = dataset_prompts or DEFAULT_DATASET_PROMPTS
    own = [label for label in classes if label in set(dataset_labels)]
    if class_names == "dataset":
        names = {**{label: label for label in classes},
                 **class_name_map(load_prompt_data(data_name), own, class_order)}
    else:
        names = {label: label for label in classes}
    texts = class_prompts(prompts, classes, descriptions_csv, names=names,
                          dataset_prompts=data_name)
    if prompts.kind == "dataset":
        templates_source = f"{data_name}: {load_prompt_data(data_name).source}"
    elif prompts.kind == "templates" and prompts.templates_from:
        templates_source = (f"{prompts.templates_from}: "
                            f"{load_prompt_data(prompts.templates_from).source}")
    elif prompts.kind == "templates":
        templates_source = "inline (params.yaml prompts.templates)"
    else:
        templates_source = "per-class descriptions"
    data = load_prompt_data(data_name)
    named_from = (f"{data_name}: {data.source}" if class_names == "dataset"
                  and data.classes is not None else "the dataset's labels")
    record = {
        "prompts": prompts.name,
        "prompt_kind": prompts.kind,
        "dataset_prompts": data_name,
        "templates_from": templates_source,
        "n_templates": (len(templates_of(prompts, data_name)) if prompts.kind != "descriptions"
                        else None),
        "class_names": class_names,
        "class_names_from": named_from,
        "renamed_classes": sum(names[label] != label for label in own),
    }
    return ClassPrompts(texts=texts, names=names, record=record)
