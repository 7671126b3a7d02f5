"""What this machine offers the kit: package versions, compute devices and helper binaries."""

from __future__ import annotations

import os
import platform
from importlib import metadata

KEY_PACKAGES = (
    "torch",
    "diffusers",
    "transformers",
    "accelerate",
    "safetensors",
    "mediapipe",
    "opencv-contrib-python",
    "numpy",
    "scipy",
    "librosa",
    "av",
    "imageio-ffmpeg",
    "espeakng-loader",
    "papermill",
    "nbval",
    "ipywidgets",
)
"""The distributions whose versions matter for reproducing results (pyproject.toml pins most)."""


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, or ``"not installed"``."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def compute_devices() -> dict[str, str]:
    """CPU cores, torch's thread count and any accelerator torch can see."""
    import torch  # heavy; and the versions above must be readable even where torch fails to import

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "cuda": "none",
    }
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda"] = ", ".join(names)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        info["mps"] = "available"
    return info


def helper_tools() -> dict[str, str]:
    """Binaries the kit relies on, found without a network: ffmpeg (imageio-ffmpeg) and eSpeak NG."""
    tools = {}
    try:  # each helper is reported as unavailable, not raised, where its package cannot be imported
        import imageio_ffmpeg

        tools["ffmpeg"] = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        tools["ffmpeg"] = f"unavailable ({err})"
    try:
        import espeakng_loader

        tools["espeak-ng"] = espeakng_loader.get_library_path()
    except ImportError as err:
        tools["espeak-ng"] = f"unavailable ({err})"
    return tools


def environment_summary() -> dict[str, dict[str, str]]:
    """All of the above in one nested dict: ``{"devices": …, "packages": …, "tools": …}``."""
    return {"devices": compute_devices(), "packages": package_versions(), "tools": helper_tools()}
