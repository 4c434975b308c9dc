"""Prompt sets (``conf/prompts/*.yaml``): which texts stand for each class in zero-shot.

Two kinds:

- ``templates``: strings with one ``{}``, filled with the class name ("a photo of a {}.");
- ``descriptions``: per-class free text read from a CSV with columns ``label,description``
  (seed 002's raw and hand-edited Wikipedia descriptions). Several rows for one label are all
  prompts of that class (averaged like templates). ``description_template`` builds the prompt
  from ``{name}`` and ``{description}`` ("{name} is {description}" is seed 002's third style).

:func:`class_prompts` gives every class its texts, ready for
:func:`cliprobe.metrics.zeroshot.build_classifier`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cliprobe.errors import ConfigError, DataError


def _fields(template: str) -> list[str | None]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]


class PromptSet(BaseModel):
    """One prompt set, as composed into ``params.yaml`` under ``prompts``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: Literal["templates", "descriptions"] = "templates"
    templates: list[str] = Field(
        default_factory=list, description="kind templates: strings with exactly one {}"
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
        if self.kind == "templates":
            if not self.templates:
                raise ValueError("a templates prompt set needs at least one template")
            for template in self.templates:
                if _fields(template) != [""]:
                    raise ValueError(
                        f"template {template!r} must hold exactly one {{}} (the class name)"
                    )
        else:
            if self.templates:
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


def texts_for_class(
    prompts: PromptSet,
    class_name: str,
    descriptions: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The prompts standing for ``class_name``: templates filled with it, or its descriptions.

    ``descriptions`` (label -> texts, from :func:`load_descriptions`) is needed for kind
    ``descriptions``; a class without one raises :class:`DataError`.
    """
    if prompts.kind == "templates":
        return [template.format(class_name) for template in prompts.templates]
    if descriptions is None:
        raise ConfigError(f"prompt set '{prompts.name}' needs per-class descriptions: set "
                          "prompts.descriptions_csv or the dataset's descriptions_csv")
    texts = descriptions.get(class_name)
    if not texts:
        raise DataError(f"prompt set '{prompts.name}' has no description for class "
                        f"{class_name!r}; add a row '{class_name},<text>' to the descriptions CSV")
    return [prompts.description_template.format(name=class_name, description=text)
            for text in texts]


def class_prompts(
    prompts: PromptSet,
    class_names: Sequence[str],
    descriptions_csv: str | Path | None = None,
) -> dict[str, list[str]]:
    """Every class's prompts: class name -> texts, in ``class_names`` order.

    For kind ``descriptions`` the CSV is ``prompts.descriptions_csv`` if set, else
    ``descriptions_csv`` (the dataset's file).
    """
    descriptions = None
    if prompts.kind == "descriptions":
        source = prompts.descriptions_csv or descriptions_csv
        if source is None:
            raise ConfigError(f"prompt set '{prompts.name}' needs per-class descriptions: set "
                              "prompts.descriptions_csv or the dataset's descriptions_csv")
        descriptions = load_descriptions(source)
    return {name: texts_for_class(prompts, name, descriptions) for name in class_names}
