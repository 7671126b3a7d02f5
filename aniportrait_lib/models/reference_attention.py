"""Reference attention: the reference UNet's self-attention inputs become extra keys/values (spec §3.4).

The official code (``mutual_self_attention.py``) replaces the ``forward`` of every transformer block. Here
the same behaviour lives in two attention processors set on ``attn1`` with ``set_attn_processor``:

* :class:`ReferenceWriterProcessor` (reference UNet) records its input - which *is* the block's
  ``norm1`` output, the normalised hidden states ``(B_ref, L, C)`` - then attends normally.
* :class:`ReferenceReaderProcessor` (denoising UNet, spatial blocks only) attends with
  ``key/value = concat(own tokens, bank repeated per frame)`` along the token axis.
  Under classifier-free guidance the **first (unconditional) half** of the batch attends without the bank.
  With an empty bank it is plain self-attention (training's unconditional steps).

Blocks are paired as the official ``fusion_blocks="full"`` does: each UNet's transformer blocks in module
(DFS) order, stably sorted by descending hidden width, matched by position (:func:`pair_reference_blocks`).

``official_compat`` reproduces the official ``update()`` which casts the bank to float16 (a rounding
when the UNet runs in float32).

Both processors build on :class:`~.fast_paths.FastAttnProcessor`. The reader projects the bank to keys and
values once per bank (not once per frame, window and denoising step: the bank is the same for all of them
at inference) and broadcasts them to the frames; under autograd it projects them each call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from .fast_paths import FastAttnProcessor, is_plain_call, tensor_versions

__all__ = [
    "ReferenceAttention",
    "ReferenceReaderProcessor",
    "ReferenceWriterProcessor",
    "pair_reference_blocks",
    "reference_block_names",
]


def reference_block_names(unet: nn.Module, exclude: str = "motion_modules") -> list[str]:
    """Spatial transformer blocks of ``unet`` in the official fusion order.

    DFS (``named_modules``) order, motion-module blocks excluded, then a stable sort by descending hidden
    width (``norm1`` size). Down/mid/up are therefore interleaved by resolution (see oracle pairing).
    """
    blocks = [
        (name, module)
        for name, module in unet.named_modules()
        if isinstance(module, BasicTransformerBlock) and exclude not in name
    ]
    blocks.sort(key=lambda item: -item[1].norm1.normalized_shape[0])
    return [name for name, _ in blocks]


def pair_reference_blocks(reference_unet: nn.Module, denoising_unet: nn.Module) -> list[tuple[str, str]]:
    """``[(reference block, denoising block), ...]`` matched by position in the fusion order."""
    writers, readers = reference_block_names(reference_unet), reference_block_names(denoising_unet)
    if len(writers) != len(readers):
        raise ValueError(f"reference UNet has {len(writers)} transformer blocks, denoiser has {len(readers)}")
    return list(zip(writers, readers, strict=True))


class ReferenceWriterProcessor(FastAttnProcessor):
    """Self-attention that also appends its input ``(B_ref, L, C)`` to ``self.bank``."""

    def __init__(self):
        super().__init__()
        self.bank: list[torch.Tensor] = []

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None, **kwargs):
        if encoder_hidden_states is not None:
            raise ValueError("the reference writer must sit on a self-attention (attn1)")
        self.bank.append(hidden_states)
        return super().__call__(attn, hidden_states, **kwargs)


@dataclass
class _ReaderState:
    """Shared by all readers of one denoiser; set by :class:`ReferenceAttention`."""

    classifier_free_guidance: bool = False  # batch = [uncond half, cond half]; uncond attends without bank


class ReferenceReaderProcessor(FastAttnProcessor):
    """Self-attention whose keys/values also include the reference bank.

    ``hidden_states`` ``(N, L, C)`` with ``N = rows · f``; each bank tensor ``(B_ref, L_ref, C)`` is repeated
    per frame (``f = rows / B_ref``, batch-major) where ``rows`` is ``N`` or, under guidance, ``N/2`` (the
    conditional half; the unconditional half gets plain self-attention). Under guidance the bank must hold
    the conditional reference only: the official code runs the reference UNet on [uncond, cond] but never
    uses the uncond half of its bank, so the kit's pipeline runs the reference pass on the cond half alone.
    """

    def __init__(self, state: _ReaderState):
        super().__init__()
        self.state = state
        self.bank: list[torch.Tensor] = []
        self._bank_kv_key, self._bank_kv = None, None

    def _bank_keys_values(self, attn: Attention, dtype: torch.dtype) -> list[tuple[torch.Tensor, ...]]:
        """Each bank tensor's keys and values ``(B_ref, L_ref, inner)``; cached at inference while the bank
        and the projection weights are unchanged."""
        if torch.is_grad_enabled():
            return [(attn.to_k(e.to(dtype)), attn.to_v(e.to(dtype))) for e in self.bank]
        key = (id(self.bank), dtype, tensor_versions(*self.bank, attn.to_k.weight, attn.to_v.weight))
        if key != self._bank_kv_key:
            self._bank_kv_key = key
            self._bank_kv = [(attn.to_k(e.to(dtype)), attn.to_v(e.to(dtype))) for e in self.bank]
        return self._bank_kv

    @staticmethod
    def _per_row(tensor: torch.Tensor, rows: int) -> torch.Tensor:
        """``(B_ref, L, C)`` → ``(rows, L, C)``, each reference repeated for its frames (batch-major)."""
        if rows % tensor.shape[0] != 0:
            raise ValueError(f"bank batch {tensor.shape[0]} does not divide the {rows} attending rows")
        if tensor.shape[0] == 1:
            return tensor.expand(rows, -1, -1)  # a view; the concatenation below makes the one copy
        return tensor.repeat_interleave(rows // tensor.shape[0], dim=0)

    def _expand_bank(self, rows: int, dtype: torch.dtype) -> torch.Tensor:
        """Bank tensors ``(B_ref, L_ref, C)`` → ``(rows, sum L_ref, C)``, each repeated per frame."""
        banks = []
        for entry in self.bank:
            if rows % entry.shape[0] != 0:
                raise ValueError(f"bank batch {entry.shape[0]} does not divide the {rows} attending rows")
            banks.append(entry.to(dtype).repeat_interleave(rows // entry.shape[0], dim=0))
        return torch.cat(banks, dim=1)

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None, **kwargs):
        if encoder_hidden_states is not None:
            raise ValueError("the reference reader must sit on a self-attention (attn1)")
        if not self.bank:
            return super().__call__(attn, hidden_states, **kwargs)
        guided = self.state.classifier_free_guidance
        if guided and hidden_states.shape[0] % 2:
            raise ValueError(f"guidance needs an even batch; got {hidden_states.shape[0]}")
        split = hidden_states.shape[0] // 2 if guided else 0
        uncond, cond = hidden_states[:split], hidden_states[split:]
        if is_plain_call(attn, cond, None, (), kwargs):  # keys/values = [own tokens, bank tokens] per frame
            query, key, value = self.project_qkv(attn, cond)
            bank = self._bank_keys_values(attn, cond.dtype)
            rows = cond.shape[0]
            key = torch.cat([key, *(self._per_row(k, rows) for k, _ in bank)], dim=1)
            value = torch.cat([value, *(self._per_row(v, rows) for _, v in bank)], dim=1)
            out = self.attend(attn, query, key, value)
        else:
            context = torch.cat([cond, self._expand_bank(cond.shape[0], cond.dtype)], dim=1)
            out = super().__call__(attn, cond, encoder_hidden_states=context, **kwargs)
        if split:
            out = torch.cat([super().__call__(attn, uncond, **kwargs), out], dim=0)
        return out


def _install(unet: nn.Module, names: list[str], make) -> dict[str, AttnProcessor2_0]:
    """Set ``make()`` on ``<name>.attn1`` for each block name via ``set_attn_processor``; return them."""
    processors = dict(unet.attn_processors)
    installed = {}
    for name in names:
        installed[name] = processors[f"{name}.attn1.processor"] = make()
    unet.set_attn_processor(processors)
    return installed


class ReferenceAttention:
    """Writer processors on the reference UNet, reader processors on the denoiser, and their pairing.

    Typical use (one video)::

        ref_attn = ReferenceAttention(reference_unet, denoising_unet, official_compat=False)
        reference_unet(ref_latents, 0, encoder_hidden_states)      # writers record
        ref_attn.update()                                           # banks → readers
        ref_attn.classifier_free_guidance = True                    # if the batch is [uncond, cond]
        ... denoising steps ...
        ref_attn.clear()

    Args:
        official_compat: round the banks through float16 in :meth:`update` (official default dtype).
    """

    def __init__(self, reference_unet: nn.Module, denoising_unet: nn.Module, official_compat: bool = False):
        self.pairs = pair_reference_blocks(reference_unet, denoising_unet)
        self.official_compat = official_compat
        self._state = _ReaderState()
        self._units = (reference_unet, denoising_unet)
        self.writers = _install(reference_unet, [w for w, _ in self.pairs], ReferenceWriterProcessor)
        self.readers = _install(
            denoising_unet, [r for _, r in self.pairs], lambda: ReferenceReaderProcessor(self._state)
        )

    @property
    def classifier_free_guidance(self) -> bool:
        """Whether the denoiser's batch is ``[uncond half, cond half]`` (uncond half ignores the bank)."""
        return self._state.classifier_free_guidance

    @classifier_free_guidance.setter
    def classifier_free_guidance(self, value: bool) -> None:
        self._state.classifier_free_guidance = bool(value)

    def writer_banks(self) -> dict[str, list[torch.Tensor]]:
        """Reference-block name → recorded tensors ``(B_ref, L, C)`` (one per reference-UNet call)."""
        return {name: list(proc.bank) for name, proc in self.writers.items()}

    def update(self) -> None:
        """Copy each writer's bank to its paired reader (float16-rounded under ``official_compat``)."""
        for writer_name, reader_name in self.pairs:
            bank = self.writers[writer_name].bank
            if self.official_compat:
                bank = [t.to(torch.float16) for t in bank]
            self.readers[reader_name].bank = list(bank)

    def clear(self) -> None:
        """Empty all banks (readers then do plain self-attention)."""
        for proc in [*self.writers.values(), *self.readers.values()]:
            proc.bank = []

    def remove(self) -> None:
        """Put plain ``AttnProcessor2_0`` back on every paired block."""
        for unet, names in zip(self._units, (self.writers, self.readers), strict=True):
            _install(unet, list(names), AttnProcessor2_0)
        self.writers, self.readers = {}, {}
