"""Training Audio2Mesh and Audio2Pose (paper §3.1) with accelerate, resumable exactly.

The official repository ships no training code for the audio models (spec, "not in the repo"),
so this trainer is the kit's: the choices below are documented in :class:`Audio2LmkTrainConfig`.

* **Audio2Mesh**: L1 between predicted and ground-truth mesh offsets (T, 468, 3); the wav2vec2
  conv feature encoder is frozen (as the official models freeze it at construction), the rest of
  wav2vec2 and the head are trained; SpecAugment and dropout follow the wav2vec2 config.
* **Audio2Pose**: teacher forcing: the decoder reads the ground-truth previous poses under the
  causal ALiBi mask, pose step i attends to audio frame i only, with the clip's style id; L1 on
  the predicted poses (T, 6).

Data: any ``torch.utils.data.Dataset`` whose items are dicts

    input_values (N,) float32 normalised 16 kHz audio   (aniportrait_lib.audio.features)
    seq_len      int, frames at 30 fps = ceil(N / 16000 * 30)
    offsets      (seq_len, 468, 3) mesh offsets to the clip's neutral/reference mesh (Audio2Mesh)
    pose         (seq_len, 6) euler xyz degrees + translation (Audio2Pose; <= 600 frames)
    style_id     int in [0, 100) (Audio2Pose)

The sample order is a seeded permutation per epoch (independent of the global RNG), so a run
resumed from a checkpoint (``aniportrait_lib.training.checkpoint``) sees the same batches, dropout
masks and SpecAugment masks as an uninterrupted one and ends with the same weights.

Under ``accelerate launch`` with N processes each rank takes its own block of every step's positions
(:mod:`.sampling`), and - since a checkpoint holds the main process's random states only - every rank
reseeds the global RNGs from ``(seed, step, rank)`` before each step, so dropout and SpecAugment masks
also continue exactly after a resume at the same process count. One process keeps the plain stream.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import Dataset

from aniportrait_lib.audio.audio2mesh import Audio2Mesh
from aniportrait_lib.audio.audio2pose import Audio2Pose
from aniportrait_lib.training.loss_log import append_loss_row, truncate_loss_log

from .checkpoint import atomic_write_bytes, latest_checkpoint, load_training_state, save_training_state
from .sampling import Shard, build_accelerator, micro_batch_positions, step_generator


@dataclass
class Audio2LmkTrainConfig:
    """Training hyper-parameters (kit defaults: the paper gives none for the audio stage)."""

    max_steps: int = 10_000  # kit default; set for your data
    batch_size: int = 1  # kit: clips differ in length; >1 needs equal-length clips
    learning_rate: float = 1e-4  # kit: AdamW, common for wav2vec2 fine-tuning
    weight_decay: float = 0.0  # kit
    warmup_steps: int = 0  # kit: linear warm-up of the learning rate
    grad_clip: float = 1.0  # kit: max gradient norm (0 disables)
    checkpoint_every: int = 500  # kit: steps between atomic checkpoints
    keep_checkpoints: int = 2  # kit: newest checkpoints kept on disk
    seed: int = 0  # seeds model-independent randomness and the data order
    mixed_precision: str = "no"  # accelerate: "no" | "fp16" | "bf16"
    cpu: bool = False  # accelerate: force CPU even when a GPU is present


def collate(items: list[dict]) -> dict[str, torch.Tensor | int]:
    """Stack a list of samples (equal lengths required) into a batch."""
    seq_lens = {int(item["seq_len"]) for item in items}
    lengths = {len(item["input_values"]) for item in items}
    if len(seq_lens) != 1 or len(lengths) != 1:
        raise ValueError("a batch needs clips of equal length: use batch_size=1 or crop the clips")
    batch: dict[str, torch.Tensor | int] = {"seq_len": seq_lens.pop()}
    batch["input_values"] = torch.stack([torch.as_tensor(item["input_values"]).float() for item in items])
    for key in ("offsets", "pose"):
        if all(key in item for item in items):
            batch[key] = torch.stack([torch.as_tensor(item[key]).float() for item in items])
    if all("style_id" in item for item in items):
        batch["style_id"] = torch.tensor([int(item["style_id"]) for item in items])
    return batch


class Audio2LmkTrainer:
    """Trains an :class:`Audio2Mesh` or :class:`Audio2Pose` on a dataset, with exact resume.

    Args:
        model: the model to train (its class selects the loss).
        dataset: items as described in the module docstring.
        config: hyper-parameters.
        output_dir: checkpoints (``checkpoint-*.pt``, ``latest``), ``log.csv`` and the resolved
            ``train_config.json`` go here.
    """

    def __init__(
        self, model: Audio2Mesh | Audio2Pose, dataset: Dataset, config: Audio2LmkTrainConfig, output_dir
    ):
        if not isinstance(model, Audio2Mesh | Audio2Pose):
            raise ValueError(f"model must be Audio2Mesh or Audio2Pose, got {type(model).__name__}")
        if len(dataset) == 0:
            raise ValueError("the training dataset is empty")
        self.config, self.dataset, self.output_dir = config, dataset, Path(output_dir)
        self.accelerator = build_accelerator(config.cpu, config.mixed_precision)
        trainable = [p for p in model.parameters() if p.requires_grad]  # conv feature encoder is frozen
        optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / (warmup + 1)))
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = scheduler  # not prepared: accelerate would step it once per process
        self.shard = Shard.of(self.accelerator)
        self.step = 0
        resolved = json.dumps({"train": asdict(config), "model": type(model).__name__}, indent=2)
        if self.accelerator.is_main_process:
            atomic_write_bytes(
                self.output_dir / "train_config.json", lambda file: file.write(resolved.encode())
            )

    @property
    def log_path(self) -> Path:
        return self.output_dir / "log.csv"

    def resume(self) -> bool:
        """Restore the newest checkpoint in ``output_dir`` if there is one; True if resumed."""
        path = latest_checkpoint(self.output_dir)
        if path is None:
            return False
        state = load_training_state(
            path, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler
        )
        self.step = state.step
        if self.accelerator.is_main_process:
            truncate_loss_log(self.log_path, self.step)
        self.accelerator.wait_for_everyone()
        return True

    def _batch(self, step: int) -> dict:
        """This rank's samples of step ``step``: its positions (one process: ``step·B .. step·B+B-1``) of
        seeded epoch orders."""
        size = len(self.dataset)
        items = []
        for position in micro_batch_positions(step, 0, self.config.batch_size, 1, self.shard):
            epoch, index = divmod(position, size)
            order = torch.randperm(size, generator=torch.Generator().manual_seed(self.config.seed + epoch))
            items.append(self.dataset[int(order[index])])
        return collate(items)

    def loss(self, batch: dict) -> torch.Tensor:
        """L1 loss of one batch (mesh offsets for Audio2Mesh, teacher-forced poses for Audio2Pose)."""
        device = self.accelerator.device
        values, seq_len = batch["input_values"].to(device), batch["seq_len"]
        if isinstance(self.accelerator.unwrap_model(self.model), Audio2Mesh):
            if "offsets" not in batch:
                raise ValueError("Audio2Mesh training needs 'offsets' (seq_len, 468, 3) in every sample")
            target = batch["offsets"].to(device).flatten(2)  # (B, T, 1404)
            prediction = self.model(values, seq_len)
        else:
            if "pose" not in batch or "style_id" not in batch:
                raise ValueError(
                    "Audio2Pose training needs 'pose' (seq_len, 6) and 'style_id' in every sample"
                )
            target = batch["pose"].to(device)
            prediction = self.model(values, seq_len, target, batch["style_id"].to(device))
        if prediction.shape != target.shape:
            raise ValueError(
                f"target {tuple(target.shape)} does not match prediction {tuple(prediction.shape)}"
            )
        return torch.nn.functional.l1_loss(prediction.float(), target)

    def dry_run(self) -> dict:
        """Everything up to the first optimizer step: read this process's first batch and describe the run."""
        batch = self._batch(self.step)
        model = self.accelerator.unwrap_model(self.model)
        return {
            "trainer": type(model).__name__, "steps": f"{self.step} → {self.config.max_steps}",
            "processes": self.shard.world, "batch per process": self.config.batch_size,
            "trained parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "device": str(self.accelerator.device),
            **{f"batch {k}": tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)},
        }  # fmt: skip

    def _optimizer_step(self) -> float:
        if self.shard.world > 1:  # module docstring: per-rank random states follow the step
            torch.manual_seed(
                int(step_generator(self.config.seed, self.step, self.shard.rank).initial_seed())
            )
        self.model.train()
        loss = self.loss(self._batch(self.step))
        self.optimizer.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.config.grad_clip > 0:
            self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return float(loss.detach())

    def _log(self, loss: float, seconds: float) -> None:
        if self.shard.world > 1:
            loss = float(self.accelerator.reduce(torch.tensor(loss, device=self.accelerator.device), "mean"))
        if self.accelerator.is_main_process:
            append_loss_row(self.log_path, self.step, loss, self.scheduler.get_last_lr()[0], seconds)

    def save(self) -> Path | None:
        """Write an atomic checkpoint of the current step (main process; the others wait for it)."""
        path = None
        if self.accelerator.is_main_process:
            path = save_training_state(
                self.output_dir,
                self.step,
                self.accelerator.unwrap_model(self.model),
                self.optimizer,
                self.scheduler,
                extra={"config": asdict(self.config), "num_processes": self.shard.world},
                keep_last=self.config.keep_checkpoints,
            )
        self.accelerator.wait_for_everyone()
        return path

    def train(self, stop_after: int | None = None) -> float:
        """Train until ``max_steps`` (or for ``stop_after`` more steps); returns the last loss.

        A fresh run (step 0) seeds every RNG with ``config.seed``; a resumed one continues the
        restored RNG states. Checkpoints are written every ``checkpoint_every`` steps and at the end.
        """
        if self.step == 0:
            set_seed(self.config.seed)
        loss, done = float("nan"), 0
        while self.step < self.config.max_steps and (stop_after is None or done < stop_after):
            start = time.perf_counter()
            loss = self._optimizer_step()
            self._log(loss, time.perf_counter() - start)
            done += 1
            if self.step % self.config.checkpoint_every == 0 or self.step == self.config.max_steps:
                self.save()
        return loss
