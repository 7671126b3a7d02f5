"""Multi-head attention on the CPU through ONNX Runtime's ``MultiHeadAttention`` kernel (inference only).

``softmax(q kᵀ / √d) v`` over heads, for ``(N, L, C)`` queries and ``(N, S, C)`` keys and values, in the
layout diffusers' attention processors already hold. ONNX Runtime's CPU kernel (the ``com.microsoft``
contrib operator) computes it 1.4-2.4× faster than PyTorch's CPU flash attention at the kit's shapes,
because the small heads of a UNet make PyTorch's per-block matrix products tiny (K = 8 or N = 8 at the
mid-size workload's top level). Measured on 2 cores, one call each, float32; the results agree to 1e-6:

======================================  =============  ==========  =====
shape (N × L × S, head width)            ONNX Runtime   PyTorch     ratio
======================================  =============  ==========  =====
16 × 1024 × 2048, 8 (reference attn)     77 ms          190 ms      0.41
16 × 256 × 512, 16                       5.8 ms         9.6 ms      0.61
2048 × 16 × 16, 8 (motion module)        7.1 ms         10.0 ms     0.71
2 × 4096 × 8192, 40 (SD1.5 top level)    301 ms         591 ms      0.51
======================================  =============  ==========  =====

It is used by :class:`~.fast_paths.FastAttnProcessor` where it applies (:func:`applies`: float32 CPU
tensors without autograd; ``ENABLED``); everything else - training, GPUs, half precision - keeps
``F.scaled_dot_product_attention``. One small ONNX graph per head count is built in memory and its
session kept for the process, with as many threads as torch uses.
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = ["ENABLED", "applies", "attention"]

ENABLED = True
"""Set to False to compute every attention with PyTorch (e.g. to compare the two)."""


@functools.cache
def _onnxruntime():
    """The module, or None where ONNX Runtime (or ``onnx``, which builds the graph) cannot be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def applies(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> bool:
    """Whether :func:`attention` computes this call: float32 CPU tensors, no autograd, ONNX Runtime."""
    return (
        ENABLED
        and not torch.is_grad_enabled()
        and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (query, key, value))
        and _onnxruntime() is not None
    )


@functools.cache
def _session(heads: int, threads: int, process: int):
    """The session for ``heads``; ``process`` (the pid) keeps a forked child from using its parent's, whose
    worker threads it does not have."""
    import onnx
    from onnx import TensorProto, helper

    ort = _onnxruntime()
    node = helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["out"], domain="com.microsoft",
                            num_heads=heads)  # fmt: skip
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", length, "C"])
              for name, length in (("q", "L"), ("k", "S"), ("v", "S"))]  # fmt: skip
    output = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", "L", "C"])
    model = helper.make_model(
        helper.make_graph([node], "multi_head_attention", inputs, [output]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.checker.check_model(model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # leave the cores to torch
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, heads: int) -> torch.Tensor:
    """``softmax(q kᵀ / √d) v`` per head: ``(N, L, C)``, ``(N, S, C)``, ``(N, S, C)`` → ``(N, L, C)``, with
    ``d = C / heads`` (see :func:`applies` for when it may be called)."""
    session = _session(heads, torch.get_num_threads(), os.getpid())
    feeds = {name: t.contiguous().numpy() for name, t in (("q", query), ("k", key), ("v", value))}
    return torch.from_numpy(session.run(None, feeds)[0])
