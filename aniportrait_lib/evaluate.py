"""``python -m aniportrait_lib.evaluate``: a generated set against a test set, as the papers' table.

Examples::

    python -m aniportrait_lib.evaluate --generated out/hdtf_generated --reference data/hdtf_test
    python -m aniportrait_lib.evaluate --generated out/gen --reference outputs/prepared --output table.md
    python -m aniportrait_lib.evaluate --generated outputs/runs/latest-cpu/05_generate_video \\
        --reference outputs/runs/latest-cpu/07_evaluate/reference --suffix _true_pose

Inputs (:func:`~aniportrait_lib.evaluation.video_pairs.find_pairs`): ``--reference`` is a folder of ``.mp4``
test clips (HDTF-style) or a prepared dataset (``manifest.json``: its held-out clips); the reference
``<stem>.mp4`` pairs with the generated ``<stem><suffix>.mp4``. The speech of each pair is ``--audio`` (a
file, or a folder of ``<stem>.*``), else the prepared clip's ``audio.wav``, else a video's audio track.

The field metrics run where their networks are in ``--weights`` (``<weights>/metrics/``, see ``python -m
aniportrait_lib.weights``); the others are skipped with one line each. ``--output`` writes the table as
``.csv`` or ``.md`` (the markdown also lists the skipped metrics and the published rows for orientation).

Exit status: 0 measured, 2 bad input (one line naming the file; no output file is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aniportrait_lib.atomic import atomic_path
from aniportrait_lib.evaluation.field_table import (
    FieldTable,
    FieldTableConfig,
    beside_published,
    evaluate_pairs,
    load_published,
    markdown_table,
)
from aniportrait_lib.evaluation.video_pairs import find_pairs
from aniportrait_lib.paths import weights_dir
from aniportrait_lib.studies.evaluate import metric_networks

_OUTPUT_SUFFIXES = (".csv", ".md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.evaluate",
        description="Measure generated talking-head videos against real ones: FID, FVD, LSE-C/D, CSIM, LMD "
        "(where their networks are present) and the kit's own measures.",
    )
    parser.add_argument("--generated", type=Path, required=True, help="folder of generated .mp4 videos")
    parser.add_argument(
        "--reference", type=Path, required=True,
        help="folder of real .mp4 test clips, or a prepared dataset folder (its held-out clips)",
    )  # fmt: skip
    parser.add_argument(
        "--audio", type=Path, default=None, metavar="FILE_OR_DIR",
        help="the speech: one file for every video, or a folder of <stem>.wav (default: from the videos)",
    )  # fmt: skip
    parser.add_argument(
        "--weights", type=Path, default=None,
        help="weights folder holding metrics/ (default $ANIPORTRAIT_WEIGHTS, else pretrained_weights/)",
    )  # fmt: skip
    parser.add_argument("--suffix", default="", help="generated <stem><suffix>.mp4 pairs with <stem>.mp4")
    parser.add_argument("--name", default="generated", help="label of the measured row")
    parser.add_argument(
        "--max-frames", type=int, default=None, help="measure only each video's first N frames"
    )
    parser.add_argument(
        "--output", type=Path, default=None, metavar="FILE.csv|.md", help="write the table here"
    )
    return parser


def report_markdown(result: FieldTable) -> str:
    """The measured row, the skipped metrics and the published rows (other data: orientation only)."""
    lines = [f"# {result.name}: the papers' table", "", markdown_table(result.table()), ""]
    lines += [f"- {line}" for line in result.skipped] + [""]
    lines += ["## Published rows (other data and scale: for orientation only)", ""]
    lines.append(markdown_table(beside_published(result.table(), load_published())))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from aniportrait_lib.landmarks.extract import LandmarkExtractor  # MediaPipe: only once arguments are good

    args = build_parser().parse_args(argv)
    try:
        if args.output is not None and args.output.suffix not in _OUTPUT_SUFFIXES:
            raise ValueError(f"{args.output}: --output must end in .csv or .md")
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames {args.max_frames}: must be at least 1")
        pairs = find_pairs(args.generated, args.reference, args.audio, args.suffix)
        networks = metric_networks(args.weights if args.weights is not None else weights_dir())
        extractor = LandmarkExtractor()
        try:
            result = evaluate_pairs(pairs, networks, extractor, args.name, FieldTableConfig(args.max_frames))
        finally:
            extractor.close()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = result.table()
    print(f"{len(pairs)} pairs, {result.frames} frames measured")
    print(table.T.to_string(float_format=lambda v: f"{v:.3f}"))
    for line in result.skipped:
        print(line)
    if args.output is not None:
        with atomic_path(args.output) as tmp:
            if args.output.suffix == ".csv":
                table.rename_axis("method").to_csv(tmp)
            else:
                tmp.write_text(report_markdown(result), encoding="utf-8")
        print(f"table written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
