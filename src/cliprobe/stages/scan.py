"""Stage scan: list, by content, the files each dataset's fetch stage reads from this machine.

A user's image folder, a ``local_dir`` copy, a labels CSV: DVC cannot hash a folder whose path
is a param, so this stage (``always_changed`` in dvc.yaml, and cheap: a ``stat`` per file, a
read only for files that are new or changed) writes ``data/inputs/<dataset>.json`` with the
relative path, size and sha256 of every such file. ``fetch@<dataset>`` depends on that
listing: when one photo is added, replaced or deleted, the listing changes and the dataset's
fetch and cells re-run; when nothing changed, the listing comes out byte-identical and DVC
runs nothing after it. Datasets that only download (checksums pinned in params) or use the
built-in sample get an empty listing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from cliprobe import paths
from cliprobe.config.schema import DatasetConfig
from cliprobe.datasets.content import DigestCache, listing
from cliprobe.errors import ConfigError, exit_on_user_error
from cliprobe.io.atomic import write_json
from cliprobe.stages._common import parser


def read_datasets(params_file: Path) -> dict[str, DatasetConfig]:
    """The ``dataset`` section of params.yaml, validated (the rest is not this stage's)."""
    if not params_file.is_file():
        raise ConfigError(f"{params_file} does not exist: compose it from conf/ with "
                          "`cliprobe compose` (or run `make repro` / `dvc exp run`)")
    raw = (yaml.safe_load(params_file.read_text()) or {}).get("dataset") or {}
    datasets = {}
    for name, entry in raw.items():
        try:
            datasets[name] = DatasetConfig.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(["dataset", name, *map(str, first["loc"])])
            raise ConfigError(f"invalid configuration at {where}: {first['msg']}") from None
    return datasets


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    datasets = read_datasets(args.params)
    # the stage owns the folder: listings of datasets no longer selected must not linger
    shutil.rmtree(paths.INPUTS, ignore_errors=True)
    for name, config in datasets.items():
        inputs = config.local_inputs()
        cache = DigestCache(paths.DIGEST_CACHE / f"{name}.json" if inputs else None)
        write_json(paths.input_listing_path(name),
                   {"dataset": name, "inputs": listing(inputs, cache)})
        cache.save()
        if inputs:
            print(f"scan {name}: {', '.join(inputs)}; {len(cache.used)} files, "
                  f"{cache.hashed} read", file=sys.stderr)


if __name__ == "__main__":
    main()
