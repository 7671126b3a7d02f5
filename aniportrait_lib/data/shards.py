"""One dataset prepared on N machines: each prepares a shard of the sources, then one merges the folders.

To spread :mod:`aniportrait_lib.data.prepare` over N machines, run it with ``--shard I/N``: machine
I (0 … N-1) prepares only the sources of shard I into a folder of its own, resumable like a whole
run; once all are done, one machine merges them (give every shard the same options, and folders
outside ``INPUT_DIR``)::

    python -m aniportrait_lib.data.prepare INPUT_DIR shard0/ --shard 0/2   # machine 0
    python -m aniportrait_lib.data.prepare INPUT_DIR shard1/ --shard 1/2   # machine 1
    python -m aniportrait_lib.data.prepare merge OUTPUT_DIR shard0/ shard1/

The merged folder is the dataset one unsharded run makes, because:

- **a source's shard** is the SHA-1 of its path relative to ``INPUT_DIR``, modulo N
  (:func:`~aniportrait_lib.data.manifest.shard_of`): every machine computes the same answer, each
  source is in exactly one shard, and adding files moves no other;
- **clip ids** are made from the whole input folder's file list, in every shard;
- **the held-out split** hashes the clip id (:func:`~aniportrait_lib.data.manifest.split_of`), not
  the shard, so shards agree on it;
- **the merge** (:func:`merge_shard_folders`) checks every shard before it writes anything: each of
  0 … N-1 there once, finished (its to-do list done, no ``.work`` left, no clip file lost), with one
  config. It refuses with a ``ValueError`` naming the folder, and nothing written, otherwise. Then it
  hard-links each clip into ``OUTPUT_DIR/clips/`` (a copy across filesystems; the shard folders stay
  intact and may be deleted afterwards) and writes ``manifest.json`` last: a killed merge leaves no
  manifest and is simply run again.

:class:`~aniportrait_lib.data.manifest.Shard` and ``shard_of`` live in :mod:`.manifest`, since a
shard folder's manifest records its shard; this module reads and joins such folders.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from aniportrait_lib.data.manifest import (
    CLIPS_DIR,
    MANIFEST_NAME,
    PREPARED,
    WORK_DIR,
    Manifest,
    claim_ids,
    clip_files,
    config_changes,
)


def load_shard(folder: Path) -> Manifest:
    """The manifest of a finished shard folder.

    Raises:
        ValueError: naming ``folder`` and the problem: no manifest, not a shard, interrupted (a
            ``.work`` folder is left), sources of its to-do list without entries, clip files
            missing, or a source that belongs to another shard.
    """
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"{folder} has no {MANIFEST_NAME}: its shard has not been prepared there")
    manifest = Manifest.load(path)
    if manifest.shard is None:
        raise ValueError(f"{folder} holds a whole dataset, not a shard (it was prepared without --shard)")
    rerun = f"run its shard ({manifest.shard}) again to finish it"
    if (folder / WORK_DIR).exists():
        raise ValueError(f"{folder} has a {WORK_DIR} folder: its run was interrupted; {rerun}")
    done = {entry["source"] for entry in manifest.clips}
    todo = [source for source in manifest.shard_sources if source not in done]
    if todo:
        raise ValueError(
            f"{folder} is unfinished: {len(todo)} of its {len(manifest.shard_sources)} sources are not "
            f"prepared ({', '.join(todo[:3])}{', …' if len(todo) > 3 else ''}); {rerun}"
        )
    prepared = [entry for entry in manifest.clips if entry["status"] == PREPARED]
    lost = [p for entry in prepared for p in clip_files(folder, entry) if not p.is_file()]
    if lost:
        raise ValueError(f"{folder} lacks {len(lost)} clip file(s), e.g. {lost[0]}; {rerun}")
    strays = sorted(source for source in done if not manifest.shard.holds(source))
    if strays:
        raise ValueError(f"{folder} (shard {manifest.shard}) holds {strays[0]}, a source of another shard")
    return manifest


def merge_manifests(
    shards: Sequence[tuple[Path, Manifest]], ignore: Sequence[str] = ()
) -> tuple[Manifest, dict[str, Path]]:
    """The manifest one unsharded run would have written, from the manifests of all N shards.

    Checks that the shards share one config (except the ``ignore`` keys) and one N, and that each
    index 0 … N-1 is there exactly once. Clip ids are claimed source by source in the order an
    unsharded run prepares them (:func:`~aniportrait_lib.data.manifest.find_videos`' sorted paths),
    as :meth:`~aniportrait_lib.data.manifest.Manifest.commit` does.

    Args:
        shards: (folder, its :func:`load_shard` manifest) of every shard.
        ignore: config keys that may differ (e.g. the number of worker threads of each machine).

    Returns:
        The merged manifest (no shard; ``input_dir`` of shard 0) and, for each prepared clip id, the
        shard folder that holds its files.

    Raises:
        ValueError: naming the folders and the problem.
    """
    if not shards:
        raise ValueError("no shard folders to merge")
    by_index: dict[int, Path] = {}
    first_folder, first = shards[0]
    for folder, manifest in shards:
        if manifest.shard is None or first.shard is None:
            raise ValueError(f"{folder if manifest.shard is None else first_folder} is not a shard")
        if manifest.shard.count != first.shard.count:
            raise ValueError(f"{folder} is shard {manifest.shard} but {first_folder} is {first.shard}")
        changed = config_changes(first.config, manifest.config, ignore)
        if changed:
            raise ValueError(
                f"{folder} was made with another config than {first_folder}: {', '.join(changed)}"
            )
        if manifest.shard.index in by_index:
            raise ValueError(f"{folder} and {by_index[manifest.shard.index]} are both shard {manifest.shard}")
        by_index[manifest.shard.index] = folder
    count = first.shard.count
    missing = [f"{index}/{count}" for index in range(count) if index not in by_index]
    if missing:
        given = ", ".join(f"{folder} ({manifest.shard})" for folder, manifest in shards)
        raise ValueError(f"shard {', '.join(missing)} missing; given: {given}")
    pairs = sorted(
        ((entry, folder) for folder, manifest in shards for entry in manifest.clips),
        key=lambda pair: PurePosixPath(pair[0]["source"]).parts,  # stable: the parts keep their order
    )
    clips, origin, taken = [], {}, {}
    for source, group in itertools.groupby(pairs, key=lambda pair: pair[0]["source"]):
        group = list(group)  # all from one folder: a source is in one shard only
        entries = claim_ids(source, [entry for entry, _ in group], taken)
        clips += entries
        origin |= {entry["id"]: group[0][1] for entry in entries if entry["status"] == PREPARED}
        taken |= {entry["id"]: source for entry in entries if entry["id"] not in taken}
    clips.sort(key=lambda entry: entry["source"])  # the manifest's order (Manifest.replace_source)
    input_dir = next(manifest.input_dir for _, manifest in shards if manifest.shard.index == 0)
    return Manifest(first.config, clips, input_dir), origin


def link_clip(source: Path, dest: Path) -> None:
    """Put the files of clip folder ``source`` into ``dest`` (replaced if it exists) as hard links.

    A hard link costs no space and leaves ``source`` intact; where linking is impossible (another
    filesystem, or one without hard links) the file is copied.
    """

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:  # EXDEV: another filesystem; EPERM / ENOTSUP: no hard links there
            shutil.copy2(src, dst)

    shutil.rmtree(dest, ignore_errors=True)  # left by a killed merge
    shutil.copytree(source, dest, copy_function=link_or_copy)


def merge_shard_folders(
    output_dir: str | Path, shard_dirs: Sequence[str | Path], ignore: Sequence[str] = ()
) -> Manifest:
    """Join the N shard folders into the dataset ``output_dir``; returns its manifest.

    Every shard is checked before anything is written (:func:`load_shard`, :func:`merge_manifests`).
    Then each clip folder is hard-linked into ``output_dir/clips/`` (:func:`link_clip`) and
    ``manifest.json`` is written last, atomically.

    Args:
        output_dir: the merged dataset (created); must not hold a ``manifest.json`` yet.
        shard_dirs: the N shard folders, in any order.
        ignore: config keys that may differ between the shards (options that do not change outputs).

    Raises:
        ValueError: naming the folder and the problem (missing, unfinished or foreign shard, or an
            ``output_dir`` that already holds a dataset); nothing is written then.
    """
    output_dir = Path(output_dir)
    shards = [(Path(folder), load_shard(Path(folder))) for folder in shard_dirs]
    if (output_dir / MANIFEST_NAME).exists():
        raise ValueError(f"{output_dir} already holds a {MANIFEST_NAME}; merge into a new folder")
    manifest, origin = merge_manifests(shards, ignore=ignore)
    for clip_id, folder in origin.items():
        link_clip(folder / CLIPS_DIR / clip_id, output_dir / CLIPS_DIR / clip_id)
    manifest.save(output_dir / MANIFEST_NAME)
    return manifest
