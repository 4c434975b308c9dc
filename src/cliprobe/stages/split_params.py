"""Stage split_params: validate params.yaml and write each stage's spec to data/params/.

The only stage that depends on ``params.yaml`` (as a file: DVC hashes it, never parses it;
``dvc params diff`` / ``dvc exp show`` still list every param) and on the code folders; every
other stage depends on, and reads, only its spec: its effective params and its code's
fingerprint (:mod:`cliprobe.config.stage_params` says what goes in).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cliprobe.config.loading import load_params
from cliprobe.config.stage_params import SPLIT_DIR, write_split
from cliprobe.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parse = argparse.ArgumentParser(description=__doc__)
    parse.add_argument("--params", type=Path, default=Path("params.yaml"))
    parse.add_argument("--out", type=Path, default=SPLIT_DIR)
    args = parse.parse_args(argv)
    count = write_split(load_params(args.params), args.out)
    print(f"split_params: {count} files -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
