"""The papers' comparison table: a generated set against a test set, in the field's metrics and the kit's.

Talking-head papers (Hallo, EMO, EchoMimic, ...) compare methods in one table, a row per method, a column
per metric: **FID**↓ (frame realism, Inception features), **FVD**↓ (video realism, I3D features),
**LSE-C**↑ / **LSE-D**↓ (SyncNet's lip-sync confidence and distance; "Sync-C / Sync-D" in some papers),
**CSIM**↑ (ArcFace identity similarity to the source) and **LMD**↓ (mouth landmark distance to the real
video). :func:`evaluate_pairs` fills that row for any set of generated videos paired with real ones, and
adds the kit's own measures of the pairs (every one needs no network file):

* ``PSNR↑`` / ``SSIM↑``: generated frames against the real frames (:mod:`.video_metrics`), in dB / [0, 1];
* ``mouth corr↑``: correlation over time of the mouth opening MediaPipe re-extracts from the generated
  and from the real video (:mod:`.generation_eval`'s measure, with the real video as the truth);
* ``no face↓``: share of generated frames where MediaPipe finds no face.

A field metric whose network is absent (or that cannot run on these inputs, e.g. FVD on videos shorter
than its 16-frame clips) is **skipped** with one line saying why; its column stays empty (NaN). LMD needs
no network file (MediaPipe) and always runs; a metric that runs but finds nothing to measure (no face in
the generated frames, say) gets a "not measurable" line instead of a value. The networks come as a
mapping from the weights layout's component keys (``"fid_inception"``, ``"fvd_i3d"``, ``"syncnet"``,
``"arcface"``) to a file, or to the reason it is absent
(:func:`aniportrait_lib.studies.evaluate.metric_networks` builds it from a weights folder).

Pairs of videos come from two folders (:func:`.video_pairs.find_pairs`, rule in its docstring);
published rows for orientation from a small CSV (:func:`load_published`), shown beside the measured row
by :func:`beside_published`.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aniportrait_lib.evaluation.generation_eval import finite_correlation, reextract
from aniportrait_lib.evaluation.video_metrics import psnr, ssim
from aniportrait_lib.evaluation.video_pairs import LoadedPair, VideoPair, load_pair
from aniportrait_lib.landmarks.mouth import mouth_opening
from aniportrait_lib.paths import DATA_SAMPLES

__all__ = [
    "FIELD_COLUMNS",
    "FIELD_METRICS",
    "KIT_COLUMNS",
    "PUBLISHED_CSV",
    "FieldMetric",
    "FieldTable",
    "FieldTableConfig",
    "beside_published",
    "evaluate_pairs",
    "kit_measures",
    "load_published",
    "markdown_table",
]

FIELD_COLUMNS = ("FID↓", "FVD↓", "LSE-C↑", "LSE-D↓", "CSIM↑", "LMD↓")
"""The papers' columns, in the papers' order (arrows: which way is better)."""
KIT_COLUMNS = ("PSNR↑", "SSIM↑", "mouth corr↑", "no face↓")
"""The kit's own measures of the pairs (module docstring)."""
PUBLISHED_CSV = DATA_SAMPLES / "published_metrics.csv"
"""Cited published rows (one source per row), for orientation beside a measured row."""
_CSV_METRICS = {
    "fid": "FID↓",
    "fvd": "FVD↓",
    "lse_c": "LSE-C↑",
    "lse_d": "LSE-D↓",
    "csim": "CSIM↑",
    "lmd": "LMD↓",
}
_CSV_SOURCE = ("paper", "year", "table", "dataset", "method", "url", "checked_in")


@dataclass(frozen=True)
class FieldMetric:
    """One of the papers' metrics: its columns and what it needs to run."""

    name: str
    columns: tuple[str, ...]
    network: str | None  # weights component key of its network; None: needs none (LMD: MediaPipe)
    needs_audio: bool = False  # LSE scores the video against its speech
    clip_frames: bool = False  # FVD: videos must hold at least FieldTableConfig.fvd_clip_frames frames


FIELD_METRICS: tuple[FieldMetric, ...] = (
    FieldMetric("FID", ("FID↓",), "fid_inception"),
    FieldMetric("FVD", ("FVD↓",), "fvd_i3d", clip_frames=True),
    FieldMetric("LSE", ("LSE-C↑", "LSE-D↓"), "syncnet", needs_audio=True),
    FieldMetric("CSIM", ("CSIM↑",), "arcface"),
    FieldMetric("LMD", ("LMD↓",), None),
)


@dataclass(frozen=True)
class FieldTableConfig:
    """How much of each video is measured."""

    max_frames: int | None = None  # the first frames of each pair measured; None: all (the papers' way)
    fvd_clip_frames: int = 16  # FVD's clip length: 16 frames (StyleGAN-V's FVD and most papers)
    upscale_to: int = 256  # MediaPipe re-extraction: shorter side enlarged to this first (px)


def kit_measures(pair: LoadedPair, extractor, upscale_to: int = 256) -> dict[str, float]:
    """The kit's measures of one pair (:data:`KIT_COLUMNS`; NaN where not measurable): mean PSNR (dB,
    capped at 100 for identical frames) and SSIM over frames, mouth-opening correlation of the faces
    MediaPipe re-extracts from both videos, and the share of generated frames without a face."""
    frames = list(zip(pair.generated, pair.reference, strict=True))
    faces = reextract(pair.generated, extractor, upscale_to)
    truth = reextract(pair.reference, extractor, upscale_to)
    mouth = np.where(faces.found, mouth_opening(np.nan_to_num(faces.lmks3d)), np.nan)
    mouth_truth = np.where(truth.found, mouth_opening(np.nan_to_num(truth.lmks3d)), np.nan)
    return {
        "PSNR↑": float(np.mean([min(psnr(g, r), 100.0) for g, r in frames])),
        "SSIM↑": float(np.mean([ssim(g, r) for g, r in frames])),
        "mouth corr↑": finite_correlation(mouth, mouth_truth),
        "no face↓": float(1.0 - faces.found.mean()),
    }


@dataclass
class FieldTable:
    """:func:`evaluate_pairs`' result: the set's row, the skipped metrics and the per-video measures."""

    name: str
    row: dict[str, float]  # every column of FIELD_COLUMNS + KIT_COLUMNS (NaN: skipped / not measurable)
    skipped: list[str]  # one line per field metric without a value: "<metric> skipped: <why>" (no network,
    # no speech, too short) or "<metric> not measurable on these videos: <why>" (e.g. no face found)
    per_video: pd.DataFrame  # the kit's measures, one row per pair
    seconds: dict[str, float] = field(default_factory=dict)  # per metric (and "kit measures")
    frames: int = 0  # frames measured over all pairs

    @property
    def skipped_metrics(self) -> list[str]:
        """Names of the field metrics that did not run ("FID", "LSE", ...): no network, speech or length."""
        return [line.split(" skipped: ")[0] for line in self.skipped if " skipped: " in line]

    @property
    def unmeasured_metrics(self) -> list[str]:
        """Names of the field metrics that ran but found nothing to measure (e.g. no face)."""
        return [line.split(" not measurable")[0] for line in self.skipped if " not measurable" in line]

    def table(self) -> pd.DataFrame:
        """The row in the papers' form: one row (``name``), the field's columns, then the kit's."""
        return pd.DataFrame([self.row], index=[self.name], columns=list(FIELD_COLUMNS + KIT_COLUMNS))


def _skip_reason(metric: FieldMetric, pairs: Sequence[LoadedPair], networks, config) -> str | None:
    if metric.network is not None:
        network = networks.get(metric.network, f"no network given for {metric.network!r}")
        if not isinstance(network, Path):
            return str(network)
    if metric.needs_audio and not any(p.audio is not None for p in pairs):
        return "no speech for any video (pass --audio, or videos with an audio track)"
    shortest = min(len(p.generated) for p in pairs)
    if metric.clip_frames and shortest < config.fvd_clip_frames:
        return f"videos of {shortest} frames, shorter than FVD's {config.fvd_clip_frames}-frame clips"
    return None


def _field_metric(metric: FieldMetric, pairs: Sequence[LoadedPair], network, extractor, config) -> dict:
    """Run one field metric (the metric modules are imported here: only a metric that runs needs them)."""
    generated = [p.generated for p in pairs]
    reference = [p.reference for p in pairs]
    if metric.name == "FID":
        from aniportrait_lib.evaluation.frechet import fid

        return {"FID↓": fid(generated, reference, network)}
    if metric.name == "FVD":
        from aniportrait_lib.evaluation.frechet import fvd

        return {"FVD↓": fvd(generated, reference, network, clip_frames=config.fvd_clip_frames)}
    if metric.name == "LSE":
        from aniportrait_lib.evaluation.lip_sync import lse

        results = [lse(p.generated, p.audio, p.fps, network, extractor) for p in pairs if p.audio is not None]
        return {
            "LSE-C↑": float(np.mean([r.confidence for r in results])),
            "LSE-D↓": float(np.mean([r.distance for r in results])),
        }
    if metric.name == "CSIM":
        from aniportrait_lib.evaluation.identity import csim

        return {"CSIM↑": csim(generated, [p.reference[0] for p in pairs], network, extractor)}
    from aniportrait_lib.evaluation.lmd import lmd

    return {"LMD↓": lmd(generated, reference, extractor)}


def evaluate_pairs(
    pairs: Sequence[VideoPair],
    networks: Mapping[str, Path | str],
    extractor,
    name: str = "generated",
    config: FieldTableConfig | None = None,
) -> FieldTable:
    """Measure a generated set against its references: the papers' row plus the kit's measures.

    Args:
        pairs: from :func:`~.video_pairs.find_pairs` (or made by hand).
        networks: weights component key → network file (a ``Path``), or the reason it is absent (a ``str``,
            shown in the metric's skip line).
        extractor: a :class:`~aniportrait_lib.landmarks.extract.LandmarkExtractor`, shared by every metric.
        name: the row's label.

    Raises:
        ValueError: an unreadable video (naming the file), or a network file that is not the expected network.
    """
    config = config or FieldTableConfig()
    if not pairs:
        raise ValueError("no video pairs to evaluate")
    lse_runs = isinstance(networks.get("syncnet"), Path)  # else no metric needs the speech: not decoded
    loaded = [load_pair(pair, config.max_frames, speech=lse_runs) for pair in pairs]
    row = dict.fromkeys(FIELD_COLUMNS + KIT_COLUMNS, math.nan)
    skipped, seconds = [], {}
    for metric in FIELD_METRICS:
        reason = _skip_reason(metric, loaded, networks, config)
        if reason is not None:
            skipped.append(f"{metric.name} skipped: {reason}")
            continue
        started = time.perf_counter()
        network = networks.get(metric.network) if metric.network else None
        try:
            row.update(_field_metric(metric, loaded, network, extractor, config))
        except ImportError as err:  # a metric module this checkout does not have yet
            skipped.append(f"{metric.name} skipped: its module is not in this checkout ({err})")
            continue
        except ValueError as err:
            if network is not None and str(network) in str(err):
                raise  # the network file is not the expected network: the user's to fix
            skipped.append(f"{metric.name} not measurable on these videos: {err}")  # e.g. no face found
            continue
        seconds[metric.name] = time.perf_counter() - started
    started = time.perf_counter()
    per_video = pd.DataFrame(
        [kit_measures(p, extractor, config.upscale_to) for p in loaded], index=[p.name for p in loaded]
    )
    seconds["kit measures"] = time.perf_counter() - started
    row.update({column: float(per_video[column].mean()) for column in KIT_COLUMNS})
    frames = sum(len(p.generated) for p in loaded)
    return FieldTable(name, row, skipped, per_video, seconds, frames)


def load_published(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """The published rows of ``path`` in the papers' form: index ``method``, the metric columns (NaN where
    the source gives none), then ``paper``, ``year``, ``table``, ``dataset``, ``url`` and ``checked_in``
    (where the numbers were read, e.g. the paper's own table or a summary of it).

    Raises:
        ValueError: naming the file, when a column is missing, a row names no source, or a value is not a
            number.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    missing = (set(_CSV_SOURCE) | set(_CSV_METRICS)) - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    table = []
    for line, entry in enumerate(rows, start=2):
        if not all(entry[key].strip() for key in ("paper", "table", "method", "url")):
            raise ValueError(f"{path} line {line}: every row names its paper, table, method and url")
        values = {}
        for key, column in _CSV_METRICS.items():
            text = entry[key].strip()
            try:
                values[column] = float(text) if text else math.nan
            except ValueError:
                raise ValueError(f"{path} line {line}: {key} = {text!r} is not a number") from None
        sources = {key: entry[key] for key in _CSV_SOURCE if key != "method"}
        table.append({"method": entry["method"], **values, **sources})
    columns = ["method", *FIELD_COLUMNS, *(k for k in _CSV_SOURCE if k != "method")]
    return pd.DataFrame(table, columns=columns).set_index("method")


def beside_published(measured: pd.DataFrame, published: pd.DataFrame, note: str = "this kit") -> pd.DataFrame:
    """One table: the measured row(s) first (``source`` = ``note``), then the published ones (``source`` =
    paper, table; ``dataset``). Columns the two do not share are left empty."""
    ours = measured.assign(source=note, dataset="")
    cited = published.assign(source=published.paper + " (" + published.year + "), " + published.table)
    columns = list(FIELD_COLUMNS) + [c for c in measured.columns if c not in FIELD_COLUMNS]
    return pd.concat([ours, cited])[columns + ["source", "dataset"]]


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a GitHub-flavoured markdown table (numbers rounded, NaN shown as "-")."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([cell(index)] + [cell(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)
