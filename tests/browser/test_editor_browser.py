"""The editor in a real browser: JupyterLab + headless Chromium, a slider moved by the keyboard, a keyframe
set and the edit rendered with Lmk2Video by a click.

Starts JupyterLab on 127.0.0.1 (random free port, random token, its own temporary root, config,
runtime and workspace folders), opens a tiny notebook that builds the editor on the sample
portrait, with a Lmk2Video renderer of random kit weights of the quick profile's sizes (the
``tiny_kit_run`` fixture; 2 denoising steps), runs it, moves the yaw slider and checks that the
warped-portrait preview changes (SHA-256 of the image bytes before/after), then keys the yaw,
clicks "render with Lmk2Video" and waits for the side-by-side video and the pipeline's progress
bar to appear under the editor. A screenshot is saved under ``outputs/test_artefacts/`` (printed).
Kernel, server and browser are stopped at the end; every wait is bounded. Skips when no Chromium
binary or no Playwright is available.

Needs: Debian ``chromium`` (``/usr/bin/chromium``) and PyPI ``playwright`` (driving that binary;
``playwright install`` is never used).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from aniportrait_lib.paths import REPO_ROOT

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SERVER_START_S, CELLS_RUN_S, PREVIEW_UPDATE_S, RENDER_S = 90, 180, 60, 180
ARTEFACTS = REPO_ROOT / "outputs" / "test_artefacts"

NOTEBOOK_CELLS = [
    "from dataclasses import replace\n"
    "from aniportrait_lib.data.mini_corpus import build_reference\n"
    "from aniportrait_lib.editing.editor_state import EditorState\n"
    "from aniportrait_lib.editing.lmk2video_render import Lmk2VideoRenderer\n"
    "from aniportrait_lib.landmarks.performance import Performance\n"
    "from aniportrait_lib.editing.widget import EditorWidget",
    "reference, _ = build_reference(256)\n"
    "renderer = Lmk2VideoRenderer.from_weights('kit:{kit_run}', reference, num_threads=1)\n"
    "renderer.config = replace(renderer.config, steps=2)\n"
    "state = EditorState(Performance.still(reference, 8), reference, lmk2video=renderer)\n"
    "editor = EditorWidget(state, 'edits.json', 'edited.mp4', lmk2video_path='edited_lmk2video.mp4')\n"
    "editor.widget",
]

IMAGE_DIGEST_JS = """
async (selector) => {
  const img = document.querySelector(selector);
  if (!img || !img.src) return null;
  const data = await (await fetch(img.src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', data);
  return Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0')).join('');
}
"""

VIDEO_SOURCE_JS = """
() => {
  const video = document.querySelector('.aniportrait-video video');
  const source = video.querySelector('source');
  return (source ? source.src : video.src) || '';
}
"""
VIDEO_METADATA_JS = """
async () => {
  const video = document.querySelector('.aniportrait-video video');
  for (let i = 0; i < 50 && video.readyState < 1; i++) await new Promise(r => setTimeout(r, 100));
  const error = video.error && video.error.code;
  return [video.readyState, video.duration, video.videoWidth, video.videoHeight, error];
}
"""


@pytest.fixture
def browser_tools():
    """(chromium binary, playwright.sync_api); skips before anything is started when either is missing."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.skip("no chromium binary (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="PyPI playwright is not installed")
    return path, sync_api


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(base: str, token: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(
        f"{base}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def jupyterlab(browser_tools, tiny_kit_run, tmp_path):
    """A JupyterLab server on a free local port with a tiny editor notebook; yields (url, token)."""
    root = tmp_path / "root"
    root.mkdir()
    cells = [c.replace("{kit_run}", str(tiny_kit_run)) for c in NOTEBOOK_CELLS]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "editor.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}  # fmt: skip
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no pop-up, no network
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited early; log: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}"
                )
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within {SERVER_START_S} s")
                time.sleep(0.5)
        yield base, token
    finally:
        _stop_server(server, base, token)
        log.close()


def _stop_server(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut down every kernel, then the server; kill it if it does not exit in time."""
    try:
        for kernel in _api(base, token, "/api/kernels") or []:
            _api(base, token, f"/api/kernels/{kernel['id']}", "DELETE")
        _api(base, token, "/api/shutdown", "POST")
    except OSError:
        pass
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _wait_for_new_stable_image(page, selector: str, before: str, settle_s: float = 1.5) -> str | None:
    """Poll the image's digest until it differs from ``before`` and has not changed for ``settle_s``
    (each key press sends one update to the kernel); None if nothing changed within the time limit."""
    deadline = time.monotonic() + PREVIEW_UPDATE_S
    last, since = before, time.monotonic()
    while time.monotonic() < deadline:
        digest = page.evaluate(IMAGE_DIGEST_JS, selector)
        if digest != last:
            last, since = digest, time.monotonic()
        elif last != before and time.monotonic() - since >= settle_s:
            return last
        page.wait_for_timeout(200)
    return None if last == before else last


def test_slider_moves_the_live_preview_and_lmk2video_renders(browser_tools, jupyterlab):
    chromium, sync_api = browser_tools
    base, token = jupyterlab
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(f"{base}/lab/tree/editor.ipynb?token={token}&reset")
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=SERVER_START_S * 1000)
            page.wait_for_function(
                "window.jupyterapp && window.jupyterapp.commands.hasCommand('notebook:run-all-cells')"
            )
            page.wait_for_function(
                "() => { const p = window.jupyterapp.shell.currentWidget;"
                " const s = p && p.sessionContext && p.sessionContext.session; return s && s.kernel; }"
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            portrait = "img.aniportrait-portrait"
            page.wait_for_selector(portrait, timeout=CELLS_RUN_S * 1000)
            page.wait_for_function(f"document.querySelector('{portrait}').src.length > 0")
            before = page.evaluate(IMAGE_DIGEST_JS, portrait)
            readout = page.locator(".aniportrait-slider-yaw .widget-readout")
            assert readout.inner_text().strip() in ("0.0", "0.00", "0")
            handle = page.locator(".aniportrait-slider-yaw .noUi-handle")
            handle.focus()
            for _ in range(4):
                handle.press("PageUp")  # noUiSlider: a page = 5 steps of 0.5°
            after = _wait_for_new_stable_image(page, portrait, before)
            moved_to = float(readout.inner_text())
            # key the turn, then render the edited clip with Lmk2Video
            status = page.locator(".aniportrait-status")
            page.click("button.aniportrait-button-set-keyframe")
            page.wait_for_function(
                "document.querySelector('.aniportrait-status').innerText.includes('keyed yaw')"
            )
            render = page.locator("button.aniportrait-button-render-with-lmk2video")
            enabled = render.is_enabled()
            render.click()
            page.wait_for_selector(".aniportrait-video video", timeout=RENDER_S * 1000)
            rendered = status.inner_text()
            progress = page.locator(".aniportrait-progress").inner_text()
            progress = progress.replace("\u2007", " ")  # tqdm's widget writes figure spaces
            video_source = page.evaluate(VIDEO_SOURCE_JS)
            ready, duration, width, height, error = page.evaluate(VIDEO_METADATA_JS)
            shot = ARTEFACTS / "editor_browser.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nbrowser test artefacts: {ARTEFACTS} (screenshot {shot.name}); yaw slider at {moved_to}")
        finally:
            browser.close()
    assert before and after and before != after
    assert moved_to > 0.0
    assert enabled and "left: warp preview, right: Lmk2Video" in rendered and "8 frames" in rendered
    assert "Lmk2Video denoising" in progress  # the pipeline's progress bar, shown under the editor
    assert video_source.startswith("data:video/mp4;base64,") and len(video_source) > 1000
    # Chromium decoded its header: 8 frames at 30 fps, two 64² panels enlarged to 256 px side by side
    assert error is None and ready >= 1, f"the browser cannot load the video (error {error}, state {ready})"
    assert abs(duration - 8 / 30) < 0.02 and width == 2 * 256 and height > 256
