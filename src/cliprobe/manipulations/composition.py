"""``sequence``: registered manipulations applied in order, each with its own params.

Seed 000's experiment 4 is ``keep_part`` (lower half) followed by ``postit``::

    postit_lower_half:
      function: sequence
      steps:
        - {function: keep_part, part: lower, fraction: 0.5}
        - {function: postit, word: CAT, xy: [0.5, 0.75]}

Every step is validated against its own registry entry when the config is loaded (an unknown
function or a bad param names the step). Each step draws from its own generator, spawned from
the image's generator in step order, so a step's randomness does not depend on what the steps
before it drew. The ``info`` of the steps is merged (a later step wins on a shared key); pixel
boxes (keys ending in ``_box`` / ``_boxes``) recorded before a step that changes the image size
are dropped, because they would no longer point at the right pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cliprobe.manipulations.registry import ImageContext, Manipulated, get, register

NAME = "sequence"


def _is_box_key(key: str) -> bool:
    return key.endswith(("_box", "_boxes"))


def _validated_step(position: int, step: Any) -> dict[str, Any]:
    if not isinstance(step, dict) or "function" not in step:
        raise ValueError(f"steps[{position}] must be a mapping with a 'function' key")
    function = str(step["function"])
    if function == NAME:
        raise ValueError(f"steps[{position}]: a sequence cannot contain a sequence")
    try:
        spec = get(function)
    except KeyError as error:
        raise ValueError(f"steps[{position}].function: {error.args[0]}") from None
    params = {key: value for key, value in step.items() if key != "function"}
    try:
        validated = spec.params_model.model_validate(params)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise ValueError(f"steps[{position}].{where}: {first['msg']}") from None
    return {"function": function, **validated.model_dump()}


class SequenceParams(BaseModel):
    """The steps, in order: ``{function: <registry name>, <its params>...}`` each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[dict[str, Any]] = Field(min_length=1, description="registered manipulations "
                                        "applied in this order, each with its params")

    @field_validator("steps")
    @classmethod
    def _each_step_is_valid(cls, value: list[Any]) -> list[dict[str, Any]]:
        # stored with every default filled in, so the recorded params say exactly what ran
        return [_validated_step(i, step) for i, step in enumerate(value)]


@register(NAME, SequenceParams, needs_context=True)
def sequence(
    image: Image.Image, params: SequenceParams, rng: np.random.Generator, context: ImageContext
) -> Manipulated:
    """Apply registered manipulations one after the other (e.g. lower half, then a post-it)."""
    info: dict[str, Any] = {}
    current = image
    for step, step_rng in zip(params.steps, rng.spawn(len(params.steps)), strict=True):
        spec = get(step["function"])
        step_params = spec.params_model.model_validate(
            {k: v for k, v in step.items() if k != "function"})
        if spec.uses_global_rng:
            np.random.seed(int(step_rng.integers(2**32)))
        result = spec(current, step_params, step_rng, context)
        if result.image.size != current.size:
            info = {key: value for key, value in info.items() if not _is_box_key(key)}
        info.update(result.info)
        current = result.image
    return Manipulated(current, info)
