"""``python -m aniportrait_lib.weights``: what weights you have and what is missing.

python -m aniportrait_lib.weights check [FOLDER] [--deep]   the official folder: present / missing
                                                            (exit 1 if a required file is missing, or with
                                                            --deep, if a checkpoint is unreadable or unfit)
python -m aniportrait_lib.weights layout                    the official folder layout
python -m aniportrait_lib.weights show FOLDER               the kit exports in FOLDER (their index)
python -m aniportrait_lib.weights index RUN_FOLDER          index a run made before exports had indexes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aniportrait_lib.paths import weights_dir
from aniportrait_lib.weights.deep_check import deep_check
from aniportrait_lib.weights.kit_index import find_export
from aniportrait_lib.weights.kit_legacy import index_legacy_run
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
    show = sub.add_parser("show", help="list the kit exports in a folder and check them")
    show.add_argument("folder", type=Path, help="an export folder, a copy of several, or a run folder")
    index = sub.add_parser("index", help="write kit_index.json into a run folder made before indexes")
    index.add_argument("folder", type=Path, help="a notebook-suite run folder (outputs/runs/<run>)")
    args = parser.parse_args(argv)
    if args.command == "layout":
        print(expected_layout())
        return 0
    if args.command in ("show", "index"):
        return _kit(args.command, args.folder)
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


def _kit(command: str, folder: Path) -> int:
    """``show``: every component of the exports in ``folder``; ``index``: index a legacy run first."""
    try:
        if command == "index":
            for path in index_legacy_run(folder):
                print(f"wrote {path}")
        export = find_export(folder)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, component in export.components.items():
        source = component.made_by.get("source", "?")
        print(f"{name:14s} {component.folder}  ({len(component.files)} files, written by {source})")
    return 0


def _deep(folder: Path) -> list[str]:
    """Print the deep check of the present checkpoints; return the components that do not fit."""
    print("\ndeep check (keys and shapes against the kit's networks; AnimateDiff's against its manifest):")
    results = deep_check(folder)
    for result in results:
        print(result.describe())
    if not results:
        print("  no AniPortrait checkpoint present")
    failed = [r.component for r in results if not r.ok]
    if failed:
        print(f"\n{len(failed)} checkpoint(s) unreadable or not fitting the kit: {', '.join(failed)}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
