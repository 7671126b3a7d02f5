from aniportrait_lib.weights.__main__ import main as weights_cli
from aniportrait_lib.weights.layout import COMPONENTS, check_weights, expected_layout


def _make_complete(folder):
    for c in COMPONENTS:
        target = folder / c.path
        if not c.files:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"\0")
            continue
        target.mkdir(parents=True, exist_ok=True)
        for group in c.files:
            (target / group[-1]).write_bytes(b"{}")


def test_empty_folder_reports_everything_missing(tmp_path):
    statuses = check_weights(tmp_path)
    assert not any(s.present for s in statuses)
    vae = next(s for s in statuses if s.component.key == "vae")
    assert "sd-vae-ft-mse/config.json" in vae.missing


def test_complete_folder_and_alternative_file_names(tmp_path):
    _make_complete(tmp_path)
    assert all(s.present for s in check_weights(tmp_path))
    # the .bin alternative of the VAE weights is accepted as well as .safetensors
    (tmp_path / "sd-vae-ft-mse/diffusion_pytorch_model.bin").unlink()
    (tmp_path / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors").write_bytes(b"x")
    assert all(s.present for s in check_weights(tmp_path))


def test_partial_folder_names_exactly_what_is_missing(tmp_path):
    _make_complete(tmp_path)
    (tmp_path / "pose_guider.pth").unlink()
    (tmp_path / "wav2vec2-base-960h/preprocessor_config.json").unlink()
    missing = {s.component.key: s.missing for s in check_weights(tmp_path) if not s.present}
    assert missing == {
        "pose_guider": ("pose_guider.pth",),
        "wav2vec2": ("wav2vec2-base-960h/preprocessor_config.json",),
    }


def test_empty_checkpoint_file_is_not_present(tmp_path):
    _make_complete(tmp_path)
    (tmp_path / "audio2mesh.pt").write_bytes(b"")
    statuses = {s.component.key: s.present for s in check_weights(tmp_path)}
    assert statuses["audio2mesh"] is False


def test_cli_exit_codes_and_output(tmp_path, capsys):
    assert weights_cli(["check", str(tmp_path)]) == 1
    assert "MISSING" in capsys.readouterr().out
    _make_complete(tmp_path)
    (tmp_path / "film_net_fp16.pt").unlink()  # optional: does not fail the check
    assert weights_cli(["check", str(tmp_path)]) == 0
    assert weights_cli(["check", str(tmp_path / "nope")]) == 1


def test_layout_text_lists_every_component():
    text = expected_layout()
    for c in COMPONENTS:
        assert c.path.rsplit("/", 1)[-1] in text
