"""pyproject.toml and environment.yml must name the same dependencies with the same pins."""

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from aniportrait_lib.paths import REPO_ROOT


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [
        d for extra in project["optional-dependencies"].values() for d in extra
    ]
    return {Requirement(s).name.lower(): str(Requirement(s).specifier) for s in specs}


def _environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    reqs = {}
    for spec in pip_section:
        if spec.startswith("-e"):
            continue
        req = Requirement(spec)
        reqs[req.name.lower()] = str(req.specifier)
    return reqs


def test_same_names_and_pins():
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_installs_the_kit_itself():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip_section


def test_python_versions_agree():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda_python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    version = conda_python.split("=", 1)[1]
    minimum = re.search(r">=\s*([\d.]+)", project["requires-python"]).group(1)
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))


def test_no_torchvision_or_torchaudio():
    # neither imports beside the CPU torch wheel used here; the kit must not need them
    names = set(_pyproject_requirements())
    assert not names & {"torchvision", "torchaudio"}
