"""One device/dtype resolver for the CLI, the notebooks and the trainers: the machine decides unless asked."""

import pytest
import torch

from aniportrait_lib import devices
from aniportrait_lib.devices import parse_dtype, resolve_placement
from aniportrait_lib.runner.notebook import start_notebook


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has ``cuda`` / ``mps`` (or neither); no environment overrides."""
    monkeypatch.delenv("ANIPORTRAIT_DEVICE", raising=False)
    monkeypatch.delenv("ANIPORTRAIT_DTYPE", raising=False)

    def have(cuda: bool = False, mps: bool = False, cuda_build: str | None = None) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
        monkeypatch.setattr(devices, "_mps_available", lambda: mps)
        monkeypatch.setattr(torch.version, "cuda", cuda_build)

    return have


def test_the_machine_decides_cuda_then_mps_then_cpu(machine):
    machine(cuda=True, mps=True)
    gpu = resolve_placement(profile_dtype="float16")
    assert (gpu.device, gpu.dtype) == ("cuda", torch.float16) and "Test GPU" in gpu.describe()
    machine(mps=True)
    assert resolve_placement(profile_dtype="float16").device == "mps"
    machine()
    cpu = resolve_placement(profile_dtype="float16")  # the profile's GPU dtype does not follow onto the CPU
    assert (cpu.device, cpu.dtype) == ("cpu", torch.float32)
    assert cpu.describe() == "device: cpu, float32 (chosen from the machine: no CUDA or MPS on this machine)"


def test_asked_for_beats_environment_beats_machine(machine, monkeypatch):
    machine(cuda=True)
    monkeypatch.setenv("ANIPORTRAIT_DEVICE", "cpu")
    assert resolve_placement().device == "cpu"
    assert resolve_placement("cuda").device == "cuda"
    monkeypatch.setenv("ANIPORTRAIT_DTYPE", "bf16")
    assert resolve_placement().dtype == torch.bfloat16
    assert resolve_placement(dtype="fp32").dtype == torch.float32


def test_a_device_the_machine_lacks_is_refused_with_the_reason(machine):
    machine(cuda_build=None)
    with pytest.raises(ValueError, match="CPU-only build"):
        resolve_placement("cuda")
    machine(cuda_build="12.4")
    with pytest.raises(ValueError, match="sees no CUDA device"):
        resolve_placement("cuda")
    with pytest.raises(ValueError, match="mps.is_available"):
        resolve_placement("mps")
    with pytest.raises(ValueError, match="choose one of auto, cuda, mps, cpu"):
        resolve_placement("tpu")
    machine(cuda=True)
    with pytest.raises(ValueError, match="1 CUDA device"):
        resolve_placement("cuda:3")


def test_dtypes_by_any_usual_name_and_fp16_on_cpu_warns(machine):
    machine()
    assert parse_dtype("bf16") == parse_dtype("bfloat16") == parse_dtype(torch.bfloat16) == torch.bfloat16
    assert parse_dtype("torch.float16") == torch.float16
    with pytest.raises(ValueError, match="fp32, fp16, bf16"):
        parse_dtype("int8")
    with pytest.warns(UserWarning, match="emulated and slow"):
        assert resolve_placement(dtype="fp16").dtype == torch.float16


def test_gpu_notebook_without_cuda_stops_first_and_writes_nothing(machine, monkeypatch, tmp_path):
    machine()
    with pytest.raises(RuntimeError, match="meant for a CUDA GPU.*ANIPORTRAIT_DEVICE=cpu"):
        start_notebook("05_generate_video", "gpu", tmp_path)
    assert not (tmp_path / "05_generate_video").exists()
    monkeypatch.setenv("ANIPORTRAIT_DEVICE", "cpu")  # on purpose (a dry run)
    run = start_notebook("05_generate_video", "gpu", tmp_path)
    assert run.placement.device == "cpu" and (run.out_dir / "config.json").is_file()
    assert start_notebook("00_tour", "quick", tmp_path).placement.dtype == torch.float32
