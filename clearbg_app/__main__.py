"""Command line: `python -m clearbg_app check` verifies the configuration before start-up."""

from __future__ import annotations

import argparse
import sys

from clearbg_app.inference import ModelNotFound, check_model_file
from clearbg_app.settings import get_settings


def check() -> int:
    """One clear line per problem that would stop the app; 0 when it can start."""
    settings = get_settings()
    try:
        check_model_file(settings.model_path)
    except ModelNotFound as error:
        print(f"clearbg: {error}", file=sys.stderr)
        return 1
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    print(f"clearbg: configuration OK (model {settings.model_path}, data in {settings.data_dir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clearbg_app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="verify the configuration (model file, data directory)")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check()
    return 2


if __name__ == "__main__":
    sys.exit(main())
