"""Turn a folder of talking-head videos into a training set: crops, 30 fps, 16 kHz audio, landmarks.

The official repository starts from frames that are already cropped (spec §1.4); this module does
the step before, for VFHQ, CelebV-HQ, HDTF or your own clips (any container PyAV reads, nested
folders allowed). It finds the videos, names each one's clip and split, and hands each to
:func:`~aniportrait_lib.data.video_passes.prepare_video`: probe, resample to ``fps``, one stable
square crop, landmarks on every cropped frame, long faceless gaps split into parts (step by step in
:mod:`aniportrait_lib.data.video_passes`). A video that cannot be prepared is recorded as skipped,
with the reason. Each source's parts are written into a temporary folder, renamed into
``clips/<id>/`` when complete, and ``manifest.json`` is rewritten atomically (layout:
:mod:`aniportrait_lib.data.manifest`).

A re-run skips the sources whose entries and files are complete, so a killed run loses at most
the video in progress. Command line::

    python -m aniportrait_lib.data.prepare INPUT_DIR OUTPUT_DIR [--fps 30 --size 512 ...]

**On N machines**: ``--shard I/N`` prepares one shard of the sources, and ``merge`` joins the N
shard folders into the dataset one unsharded run makes (how, and why they agree:
:mod:`aniportrait_lib.data.shards`)::

    python -m aniportrait_lib.data.prepare INPUT_DIR shard0/ --shard 0/2   # machine 0, likewise 1/2 …
    python -m aniportrait_lib.data.prepare merge OUTPUT_DIR shard0/ shard1/

(An input folder named ``merge``: write ``./merge``.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
from tqdm.auto import tqdm

from aniportrait_lib.data.face_track import CropConfig
from aniportrait_lib.data.manifest import (
    MANIFEST_NAME,
    PREPARED,
    SKIPPED,
    WORK_DIR,
    Manifest,
    Shard,
    clip_ids,
    find_videos,
)
from aniportrait_lib.data.shards import merge_shard_folders
from aniportrait_lib.data.video_passes import PrepareConfig, prepare_video, skipped_entry
from aniportrait_lib.landmarks.extract import ExtractorConfig, LandmarkExtractor

RESUME_IGNORES = ("workers", "progress")
"""Config fields that may differ between a run and its resumption (they do not change outputs)."""


@dataclass
class PrepareSummary:
    """What a :func:`prepare_dataset` run did; ``str()`` gives the printed end-of-run report."""

    prepared: list[str] = field(default_factory=list)
    """Ids of all prepared clips in the dataset (made now or in an earlier run)."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(id, reason) of skipped sources and dropped segments."""
    resumed: list[str] = field(default_factory=list)
    """Sources found finished by an earlier run and not redone."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per source processed in this run."""
    ignored_files: int = 0
    """Files whose suffix is not in ``config.extensions``."""
    shard: Shard | None = None
    """The shard this run prepared (its sources only), or None for the whole input folder."""

    def __str__(self) -> str:
        lines = [f"{len(self.prepared)} prepared, {len(self.skipped)} skipped"]
        if self.shard is not None:
            lines.append(f"  shard {self.shard} only: merge all {self.shard.count} shards when they are done")
        lines += [f"  skipped {clip_id}: {reason}" for clip_id, reason in self.skipped]
        if self.resumed:
            lines.append(f"  {len(self.resumed)} source(s) were already done and kept")
        if self.seconds:
            total = sum(self.seconds.values())
            lines.append(f"  {len(self.seconds)} source(s) processed in {total:.1f} s")
        if self.ignored_files:
            lines.append(f"  {self.ignored_files} file(s) without a video suffix ignored")
        return "\n".join(lines)


def prepare_dataset(
    input_dir: str | Path,
    output_dir: str | Path,
    config: PrepareConfig = PrepareConfig(),
    on_source_done: Callable[[str], None] | None = None,
    retry_skipped: bool = False,
    shard: Shard | None = None,
) -> PrepareSummary:
    """Prepare every video under ``input_dir`` into ``output_dir`` (resumable; see module docstring).

    Args:
        input_dir: folder of videos, searched recursively.
        output_dir: dataset folder (created); an existing one is resumed if its config matches.
        config: options; defaults follow the official data (30 fps, 512², ≥ 30 frames).
        on_source_done: called with the source's relative path after each source is committed.
        retry_skipped: also redo sources that an earlier run skipped (e.g. after fixing a file);
            by default a recorded skip counts as finished.
        shard: prepare only this shard's sources (:class:`~aniportrait_lib.data.manifest.Shard`);
            ``output_dir`` then holds one shard, to be joined by :func:`merge_shards`
            (:mod:`aniportrait_lib.data.shards`).

    Returns:
        :class:`PrepareSummary` (also printed by the command line).

    Raises:
        ValueError: ``input_dir`` is not a folder, or ``output_dir`` holds a different config or shard.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise ValueError(f"{input_dir} is not a folder")
    resolved = json.loads(json.dumps(dataclasses.asdict(config), default=str))  # as stored: tuples → lists
    manifest = Manifest.open(output_dir, resolved, input_dir, ignore=RESUME_IGNORES, shard=shard)
    shutil.rmtree(output_dir / WORK_DIR, ignore_errors=True)  # leftovers of a killed run
    paths, ignored = find_videos(input_dir, config.extensions, exclude=output_dir)
    sources = [p.relative_to(input_dir).as_posix() for p in paths]
    ids = clip_ids(sources)  # over the whole folder, so that a shard names its clips as a whole run does
    todo = [
        (path, source)
        for path, source in zip(paths, sources, strict=True)
        if shard is None or shard.holds(source)
    ]
    if shard is not None:  # the shard's to-do list, written first: the merge checks it is all done
        manifest.shard_sources = [source for _, source in todo]
        manifest.save(output_dir / MANIFEST_NAME)
    summary = PrepareSummary(ignored_files=ignored, shard=shard)
    extractor_config = ExtractorConfig(video_running_mode=config.running_mode, workers=config.workers)
    with LandmarkExtractor(extractor_config) as extractor:
        for path, source in tqdm(todo, desc="videos", disable=not config.progress):
            if manifest.is_finished(source, output_dir, count_skipped=not retry_skipped):
                summary.resumed.append(source)
                continue
            start, work_dir = time.perf_counter(), output_dir / WORK_DIR / ids[source]
            shutil.rmtree(work_dir, ignore_errors=True)
            try:
                entries = prepare_video(path, source, ids[source], work_dir, extractor, config)
            except (ValueError, OSError, av.FFmpegError) as err:
                entries = [skipped_entry(source, ids[source], str(err))]
            manifest.commit(output_dir, work_dir, source, entries)
            summary.seconds[source] = time.perf_counter() - start
            if on_source_done is not None:
                on_source_done(source)
    if (output_dir / WORK_DIR).is_dir() and not any((output_dir / WORK_DIR).iterdir()):
        (output_dir / WORK_DIR).rmdir()
    return _count(manifest, summary)


def _count(manifest: Manifest, summary: PrepareSummary) -> PrepareSummary:
    """Fill ``summary.prepared`` and ``summary.skipped`` from the manifest's entries."""
    summary.prepared = [e["id"] for e in manifest.clips if e["status"] == PREPARED]
    summary.skipped = [(e["id"], e["reason"]) for e in manifest.clips if e["status"] == SKIPPED]
    return summary


def merge_shards(output_dir: str | Path, shard_dirs: Sequence[str | Path]) -> PrepareSummary:
    """Join the folders of the runs ``--shard 0/N`` … ``--shard N-1/N`` into one dataset.

    :func:`~aniportrait_lib.data.shards.merge_shard_folders` (checks every shard first, then
    hard-links the clips and writes ``manifest.json`` last), letting ``workers`` and ``progress``
    differ between machines.

    Args:
        output_dir: the merged dataset (created); must not hold a ``manifest.json`` yet.
        shard_dirs: the N shard folders, in any order.

    Returns:
        :class:`PrepareSummary` of the merged dataset (its clip lists only).

    Raises:
        ValueError: naming the folder and the problem (missing, unfinished or foreign shard, or an
            ``output_dir`` that already holds a dataset); nothing is written then.
    """
    return _count(merge_shard_folders(output_dir, shard_dirs, ignore=RESUME_IGNORES), PrepareSummary())


def _shard(text: str) -> Shard:
    """``--shard`` value: ``"I/N"`` → :class:`Shard` (argparse prints the message of a bad one)."""
    try:
        return Shard.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m aniportrait_lib.data.prepare INPUT_DIR OUTPUT_DIR [options]``, or
    ``python -m aniportrait_lib.data.prepare merge OUTPUT_DIR SHARD_DIR...`` (module docstring).

    Returns 0, or 2 after printing one line ``error: ...`` when the input is refused.
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    defaults = PrepareConfig()
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.data.prepare",
        description=__doc__.split("\n")[0],
        epilog="Merge shards: python -m aniportrait_lib.data.prepare merge OUTPUT_DIR SHARD_DIR...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("input_dir", type=Path, help="folder of videos (searched recursively)")
    add("output_dir", type=Path, help="prepared dataset; an existing one is resumed")
    add("--fps", type=float, default=defaults.fps, help="output frame rate")
    add("--size", type=int, default=defaults.image_size, help="output side in pixels")
    add("--crop-scale", type=float, default=defaults.crop.scale, help="crop side / face height")
    add("--stride", type=int, default=defaults.crop_detect_stride, help="first-pass frame stride")
    add("--max-gap", type=int, default=defaults.max_gap_frames, help="longest interpolated gap (frames)")
    add("--min-frames", type=int, default=defaults.min_frames, help="shortest clip kept")
    add("--held-out", type=float, default=defaults.held_out_fraction, help="held-out share of videos")
    add("--tracking", action="store_true", help="MediaPipe VIDEO mode (faster, drifts a few px)")
    add("--workers", type=int, default=defaults.workers, help="landmark threads")
    add("--no-progress", action="store_true", help="hide the progress bars")
    add("--retry-skipped", action="store_true", help="redo sources skipped by an earlier run")
    add("--shard", type=_shard, metavar="I/N", help="prepare only shard I of N (0 <= I < N), then merge")
    args = parser.parse_args(argv)
    try:
        config = PrepareConfig(
            fps=args.fps, image_size=args.size, crop=CropConfig(scale=args.crop_scale),
            crop_detect_stride=args.stride, max_gap_frames=args.max_gap, min_frames=args.min_frames,
            held_out_fraction=args.held_out, running_mode="video" if args.tracking else "image",
            workers=args.workers, progress=not args.no_progress,
        )  # fmt: skip
        summary = prepare_dataset(
            args.input_dir, args.output_dir, config, retry_skipped=args.retry_skipped, shard=args.shard
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def _merge_main(argv: list[str]) -> int:
    """``merge OUTPUT_DIR SHARD_DIR...``: :func:`merge_shards` from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m aniportrait_lib.data.prepare merge",
        description="Join the shard folders of a sharded preparation into one dataset (hard links).",
    )
    parser.add_argument("output_dir", type=Path, help="the merged dataset (a new folder)")
    parser.add_argument("shard_dirs", type=Path, nargs="+", help="the folders of shards 0/N … N-1/N")
    args = parser.parse_args(argv)
    try:
        summary = merge_shards(args.output_dir, args.shard_dirs)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"merged {len(args.shard_dirs)} shards into {args.output_dir}: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
