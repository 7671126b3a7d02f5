"""Tiny random-weight stand-ins for the face metrics' networks, in the real files' formats.

Used by the evaluation tests and by the notebook / CLI tests, which need a weights folder laid out like
the real one without downloading anything:

* :func:`write_syncnet_standin`: SyncNet v2 (joonson/syncnet_python ``S``) with random weights, saved as a
  plain ``torch.save`` state dict like ``syncnet_v2.model``;
* :func:`write_arcface_standin`: an ONNX graph with ArcFace's interface, input ``(N, 3, 112, 112)`` float32
  and output ``(N, 512)``, like ``w600k_r50.onnx`` (a strided convolution and a dense layer instead of a
  ResNet-50), built with the ``onnx`` package's helper API.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_syncnet_standin(path: Path, seed: int = 0) -> Path:
    """Save a random-weight SyncNet v2 state dict (every key and shape of the real file) to ``path``."""
    import torch

    from aniportrait_lib.evaluation.lip_sync import SyncNetV2

    torch.manual_seed(seed)
    network = SyncNetV2()
    for name, buffer in network.named_buffers():  # realistic BatchNorm statistics, not the 0 / 1 defaults
        if name.endswith("running_mean"):
            buffer.normal_(0.0, 0.1)
        elif name.endswith("running_var"):
            buffer.uniform_(0.5, 1.5)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return path


def write_arcface_standin(path: Path, seed: int = 0, batch: int | None = None) -> Path:
    """Save a random-weight ONNX network with ArcFace's interface to ``path``: conv 8×8 stride 8 (3 → 8
    channels) → ReLU → flatten (8 · 14 · 14) → dense 512; a dynamic batch, or a fixed ``batch``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n = "None" if batch is None else batch
    conv = rng.normal(0, 0.1, (8, 3, 8, 8)).astype(np.float32)
    dense = rng.normal(0, 0.03, (8 * 14 * 14, 512)).astype(np.float32)
    bias = rng.normal(0, 0.01, 512).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input.1", "conv_w"], ["conv"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("Flatten", ["relu"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "dense_w", "dense_b"], ["embedding"]),
        ],
        "arcface_standin",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [n, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [n, 512])],
        [
            numpy_helper.from_array(conv, "conv_w"),
            numpy_helper.from_array(dense, "dense_w"),
            numpy_helper.from_array(bias, "dense_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path
