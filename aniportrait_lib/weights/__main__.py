"""``python -m aniportrait_lib.weights check [FOLDER]``: what real weights you have and what is missing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aniportrait_lib.paths import weights_dir
from aniportrait_lib.weights.layout import check_weights, expected_layout, format_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aniportrait_lib.weights")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="report present and missing pretrained weights")
    check.add_argument("folder", nargs="?", type=Path, default=None, help="weights folder (official layout)")
    check.add_argument(
        "--deep", action="store_true", help="also check every AniPortrait checkpoint's keys and shapes"
    )
    sub.add_parser("layout", help="print the expected folder layout")
    args = parser.parse_args(argv)
    if args.command == "layout":
        print(expected_layout())
        return 0
    folder = args.folder or weights_dir()
    if not folder.is_dir():
        print(f"weights folder {folder} does not exist. Expected layout:\n{expected_layout()}")
        return 1
    statuses = check_weights(folder)
    print(format_report(statuses, folder))
    mismatched = _deep(folder) if args.deep else []
    missing = [s.component.key for s in statuses if not s.present and not s.component.optional]
    if missing:
        print(f"\n{len(missing)} required component(s) missing; the gpu profile needs all of them.")
        print("The quick and cpu profiles run without any of them (models built from configs).")
    return 1 if missing or mismatched else 0


def _deep(folder: Path) -> list[str]:
    """Print the deep check of the present checkpoints; return the components that do not fit."""
    from aniportrait_lib.weights.deep_check import deep_check

    print("\ndeep check (keys and shapes against the kit's networks):")
    results = deep_check(folder)
    for result in results:
        print(result.describe())
    if not results:
        print("  no AniPortrait checkpoint present")
    return [r.component for r in results if not r.ok]


if __name__ == "__main__":
    sys.exit(main())
