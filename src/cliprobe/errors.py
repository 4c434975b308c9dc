"""Errors a user can act on.

Every error cliprobe raises on purpose is a :class:`CliprobeError` whose message is one sentence
naming the thing that is wrong and how to fix it. Stage entry points catch it and print only
that sentence (no stack trace), exiting with :data:`EXIT_USER_ERROR`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

EXIT_USER_ERROR = 2

T = TypeVar("T")


class CliprobeError(Exception):
    """An error whose message is a complete, actionable sentence for the user."""


class ConfigError(CliprobeError):
    """The configuration is invalid; the message names the offending key path."""


class MissingWeightsError(CliprobeError):
    """Pretrained weights are neither cached nor downloadable."""


class DataError(CliprobeError):
    """A dataset is missing, empty, or every image in it failed to load."""


def exit_on_user_error(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap an entry point: a :class:`CliprobeError` becomes one line on stderr and exit code 2."""

    @wraps(main)
    def wrapper(*args: object, **kwargs: object) -> T:
        try:
            return main(*args, **kwargs)
        except CliprobeError as error:
            print(f"cliprobe: error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper
