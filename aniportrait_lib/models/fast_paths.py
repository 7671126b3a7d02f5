"""Exact fast paths for the UNets' attention and feed-forward layers (same results, less work).

Installed by :class:`~aniportrait_lib.models.lmk2video.Lmk2VideoNetworks` for as long as the networks are
wired (sampling and training alike) and taken off again by ``remove_wiring``; the diffusers modules and
their state dicts are unchanged. Each path computes what diffusers' ``AttnProcessor2_0`` / ``GEGLU``
compute, in fewer passes over memory; the results agree to float32 rounding (measured max difference of a
whole mid-size video: see ``benchmarks/pipeline.py --compare``):

* **cross-attention to one token** (the CLIP image embedding: ``attn2`` of every spatial block): softmax
  over a single key is exactly 1, so every query's output is the value row. The value and output
  projections run on that one token and the result is broadcast, instead of projecting every query and
  running attention over a length-1 key axis.
* **attention itself** at inference on the CPU in float32 goes to ONNX Runtime's multi-head attention
  kernel (:mod:`.ort_attention`: 1.4-2.4× faster than PyTorch's CPU flash attention at the UNets' small
  heads, equal to 1e-6); training, GPUs and half precision keep ``F.scaled_dot_product_attention``.
* **self-attention** projects queries, keys and values with one matrix product (the three weights side by
  side) instead of three, and skips diffusers' division by ``rescale_output_factor`` when it is 1.
* **GEGLU** (every feed-forward): the value and gate halves are computed by two products of half the
  width, so that the GELU and the product run on contiguous memory instead of strided halves of one
  output (the largest elementwise cost of a CPU run).
* **motion modules' layout changes** at inference on the CPU: a motion module works on tokens
  ``(b·h·w, f, c)`` of frames ``(b·f, c, h, w)``; going there and back is a transpose of a
  ``(f·c) × (h·w)`` matrix per video, which a plain strided copy does 4× slower than in column tiles that
  stay in cache (mid-size top level: 14 → 2.3 ms one way, 16.5 → 4.3 ms back, where the residual is added
  in the same pass).
* **feed-forward in row blocks** at inference on the CPU: the 8×-wide GEGLU intermediate of a few
  thousand tokens at a time (about 4 MiB) instead of all tokens of all frames at once (64 MiB at the
  mid-size workload's top level): it stays in cache and in the allocator's reused memory. Each token's
  result is the same.

These last two are for a processor's caches only. On a GPU they would turn one large kernel into hundreds
of small ones (the full-size top level has 131,072 tokens per guided window: 320 feed-forward blocks, and
~300 tile copies per motion module), so there the original diffusers code runs.

Anything outside these cases (masks, group/spatial norms, q/k norms, residual connections, dropout
while training) falls back to diffusers' own code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from aniportrait_lib.models import ort_attention

__all__ = [
    "BlockedFeedForward",
    "FastAttnProcessor",
    "TiledMotionTransformer",
    "SplitGEGLU",
    "install_fast_paths",
    "is_plain_call",
    "tensor_versions",
]

BLOCK_BYTES = 4 * 2**20
"""Feed-forward row blocks are sized so that the widest intermediate is about this big."""


def is_plain_call(attn: Attention, hidden_states: torch.Tensor, attention_mask, args, kwargs) -> bool:
    """The case the fast paths cover: 3-D input, no mask, none of the optional norms, no residual."""
    return (
        hidden_states.ndim == 3
        and attention_mask is None
        and not args
        and kwargs.get("scale") is None
        and attn.spatial_norm is None
        and attn.group_norm is None
        and attn.norm_q is None
        and attn.norm_k is None
        and not attn.residual_connection
        and not (attn.training and attn.to_out[1].p > 0)
    )


def tensor_versions(*tensors: torch.Tensor) -> tuple:
    """What a cache of values derived from ``tensors`` is valid for: each one's storage, in-place version
    (bumped by an optimizer step), dtype and shape."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.shape) for t in tensors)


class _FusedWeights:
    """``to_q``/``to_k``/``to_v`` weights (and biases) side by side, kept while the weights are unchanged.

    Under autograd the concatenation is made afresh each call (it is part of the graph); at inference it
    is cached and rebuilt when any weight's storage or version changes (e.g. after an optimizer step)."""

    def __init__(self):
        self._key, self._value = None, None

    def __call__(self, attn: Attention) -> tuple[torch.Tensor, torch.Tensor | None]:
        layers = (attn.to_q, attn.to_k, attn.to_v)
        if torch.is_grad_enabled():
            return _concat(layers)
        key = tensor_versions(*(p for layer in layers for p in layer.parameters()))
        if key != self._key:
            self._key, self._value = key, _concat(layers)
        return self._value


def _concat(layers) -> tuple[torch.Tensor, torch.Tensor | None]:
    weight = torch.cat([layer.weight for layer in layers])
    biases = [layer.bias for layer in layers]
    if all(b is None for b in biases):
        return weight, None
    return weight, torch.cat([b if b is not None else layer.weight.new_zeros(layer.out_features)
                              for b, layer in zip(biases, layers, strict=True)])  # fmt: skip


class FastAttnProcessor(AttnProcessor2_0):
    """``AttnProcessor2_0`` with the exact shortcuts of the module docstring (falls back otherwise)."""

    def __init__(self):
        super().__init__()
        self._fused = _FusedWeights()

    def project_qkv(self, attn: Attention, hidden_states: torch.Tensor):
        """Queries, keys and values of a self-attention ``(N, L, inner)`` each, from one matrix product."""
        weight, bias = self._fused(attn)
        if weight.dtype != hidden_states.dtype:  # e.g. under autocast: let F.linear cast as usual
            return attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        return F.linear(hidden_states, weight, bias).chunk(3, dim=-1)

    def attend(self, attn: Attention, query, key, value) -> torch.Tensor:
        """``softmax(q kᵀ/√d) v`` over heads, then the output projection: ``(N, L, C)``."""
        batch, heads = query.shape[0], attn.heads
        if ort_attention.applies(query, key, value):
            return self.finish(attn, ort_attention.attention(query, key, value, heads))
        head_dim = key.shape[-1] // heads
        query = query.view(batch, -1, heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
        return self.finish(attn, out)

    @staticmethod
    def finish(attn: Attention, out: torch.Tensor) -> torch.Tensor:
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.rescale_output_factor != 1:
            out = out / attn.rescale_output_factor
        return out

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        if not is_plain_call(attn, hidden_states, attention_mask, args, kwargs):
            return super().__call__(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs
            )
        if encoder_hidden_states is None:
            return self.attend(attn, *self.project_qkv(attn, hidden_states))
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        if encoder_hidden_states.shape[1] == 1:  # softmax over one key is 1: every query gets the value
            value = self.finish(attn, attn.to_v(encoder_hidden_states))  # (N, 1, C)
            return value.expand(-1, hidden_states.shape[1], -1)
        query = attn.to_q(hidden_states)
        return self.attend(attn, query, attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states))


class SplitGEGLU(nn.Module):
    """GEGLU computed as two half-width products (contiguous halves); shares ``proj`` with the original."""

    def __init__(self, original: GEGLU):
        super().__init__()
        self.proj = original.proj
        self.original = [original]  # not a submodule: the state dict keeps only ``proj.*``

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        weight, bias = self.proj.weight, self.proj.bias
        half = weight.shape[0] // 2
        if args or kwargs or weight.dtype != hidden_states.dtype:
            return self.original[0](hidden_states, *args, **kwargs)
        value = F.linear(hidden_states, weight[:half], None if bias is None else bias[:half])
        gate = F.linear(hidden_states, weight[half:], None if bias is None else bias[half:])
        if torch.is_grad_enabled():
            return value * F.gelu(gate)
        return value.mul_(F.gelu(gate))  # in place: one activation-sized buffer fewer


class BlockedFeedForward(nn.Module):
    """A diffusers ``FeedForward`` run over blocks of rows at inference; shares ``net`` with the original."""

    def __init__(self, original: FeedForward):
        super().__init__()
        self.net = original.net
        self.original = [original]  # not a submodule: the state dict keeps only ``net.*``

    def _rows(self) -> int:
        widest = max((m.out_features for m in self.net.modules() if isinstance(m, nn.Linear)), default=1)
        return max(256, BLOCK_BYTES // (4 * widest))

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        flat = hidden_states.reshape(-1, hidden_states.shape[-1])
        rows = self._rows()
        if args or kwargs or torch.is_grad_enabled() or flat.shape[0] <= rows or not flat.is_cpu:
            return self.original[0](hidden_states, *args, **kwargs)
        out = None
        for start in range(0, flat.shape[0], rows):
            block = flat[start : start + rows]
            for module in self.net:
                block = module(block)
            if out is None:
                out = block.new_empty((flat.shape[0], block.shape[-1]))
            out[start : start + rows] = block
        return out.view(*hidden_states.shape[:-1], out.shape[-1])


TRANSPOSE_TILE = 32
"""Rows (or columns) per tile of the motion modules' cache-blocked transposes (measured best of 16-64)."""

TILED_BYTES = 2 * 2**20
"""Per-video ``(f·c) × (h·w)`` matrices above this size are transposed in tiles (smaller ones stay in
cache anyway, and a tile loop costs more than it saves)."""


class TiledMotionTransformer(nn.Module):
    """A diffusers ``AnimateDiffTransformer3D`` whose two layout changes are tiled transposes at inference.

    Shares ``norm``, ``proj_in``, ``transformer_blocks`` and ``proj_out`` with the original (same state
    dict keys); under autograd, or when the norm's output is not laid out frame by frame (a plain
    ``GroupNorm`` over ``(b, c, f, h, w)``), it is the original's forward.
    """

    def __init__(self, original: AnimateDiffTransformer3D):
        super().__init__()
        self.norm, self.proj_in = original.norm, original.proj_in
        self.transformer_blocks, self.proj_out = original.transformer_blocks, original.proj_out
        self.original = [original]  # not a submodule

    def forward(self, hidden_states: torch.Tensor, encoder_hidden_states=None, timestep=None,
                class_labels=None, num_frames: int = 1, cross_attention_kwargs=None):  # fmt: skip
        frames, channels, height, width = hidden_states.shape  # (b·f, c, h, w)
        videos, pixels = frames // num_frames, height * width
        small = 4 * num_frames * channels * pixels <= TILED_BYTES
        if torch.is_grad_enabled() or frames % num_frames or small or not hidden_states.is_cpu:
            return self._original(hidden_states, encoder_hidden_states, timestep, class_labels, num_frames,
                                  cross_attention_kwargs)  # fmt: skip
        # 1. norm as diffusers calls it: on (b, c, f, h, w)
        video = hidden_states.reshape(videos, num_frames, channels, height, width).permute(0, 2, 1, 3, 4)
        normed = self.norm(video).permute(0, 2, 1, 3, 4)  # (b, f, c, h, w)
        if not normed.is_contiguous():
            return self._original(hidden_states, encoder_hidden_states, timestep, class_labels, num_frames,
                                  cross_attention_kwargs)  # fmt: skip
        # 2. frames → tokens: (b, f·c, h·w) → (b, h·w, f·c) = ((b h w), f, c)
        rows = normed.view(videos, num_frames * channels, pixels)
        tokens = rows.new_empty((videos, pixels, num_frames * channels))
        for start in range(0, rows.shape[1], TRANSPOSE_TILE):
            part = slice(start, start + TRANSPOSE_TILE)
            tokens[:, :, part] = rows[:, part].transpose(1, 2)
        tokens = self.proj_in(input=tokens.view(videos * pixels, num_frames, channels))
        for block in self.transformer_blocks:
            tokens = block(hidden_states=tokens, encoder_hidden_states=encoder_hidden_states,
                           timestep=timestep, cross_attention_kwargs=cross_attention_kwargs,
                           class_labels=class_labels)  # fmt: skip
        tokens = self.proj_out(input=tokens).view(videos, pixels, num_frames * channels)
        # 3. tokens → frames, plus the residual, in one pass over column tiles of the output
        residual = hidden_states.reshape(videos, num_frames * channels, pixels)
        out = torch.empty_like(residual)
        for start in range(0, pixels, TRANSPOSE_TILE):
            part = slice(start, start + TRANSPOSE_TILE)
            torch.add(tokens[:, part].transpose(1, 2), residual[:, :, part], out=out[:, :, part])
        return out.view(frames, channels, height, width)

    def _original(self, *args) -> torch.Tensor:
        names = ("hidden_states", "encoder_hidden_states", "timestep", "class_labels", "num_frames",
                 "cross_attention_kwargs")  # fmt: skip
        return self.original[0](**dict(zip(names, args, strict=True)))


def install_fast_paths(*modules: nn.Module):
    """Put :class:`FastAttnProcessor` on every attention whose processor is diffusers' plain
    ``AttnProcessor2_0``, :class:`SplitGEGLU` in place of every ``GEGLU``, :class:`BlockedFeedForward`
    in place of every ``FeedForward`` and :class:`TiledMotionTransformer` in place of every motion module;
    return a function that undoes all four."""
    undo = []
    for module in modules:
        if hasattr(module, "attn_processors"):
            processors = dict(module.attn_processors)
            replaced = {name: proc for name, proc in processors.items() if type(proc) is AttnProcessor2_0}
            if replaced:
                module.set_attn_processor({**processors, **{n: FastAttnProcessor() for n in replaced}})
                undo.append(lambda m=module, r=replaced: _restore_processors(m, r))
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                faster = {GEGLU: SplitGEGLU, FeedForward: BlockedFeedForward,
                          AnimateDiffTransformer3D: TiledMotionTransformer}.get(type(child))  # fmt: skip
                if faster is not None:
                    setattr(parent, name, faster(child))
                    undo.append(lambda p=parent, n=name, c=child: setattr(p, n, c))

    def remove() -> None:
        for step in reversed(undo):
            step()
        undo.clear()

    return remove


def _restore_processors(module: nn.Module, original: dict[str, AttnProcessor2_0]) -> None:
    processors = dict(module.attn_processors)
    processors.update({name: proc for name, proc in original.items() if name in processors})
    module.set_attn_processor(processors)
