"""The tagged-article page in a real headless browser: it renders, highlights sentences, and runs no input text."""

import os
import shutil
import subprocess

import pytest

from policytag.cli import main
from policytag.tagging.pages import page_name

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args: str, profile) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_page_renders_in_chromium(tiny_classifier, raw_dir, tmp_path):
    hostile = tmp_path / "hostile.txt"
    hostile.write_text('A post said <img src=x onerror="document.title=\'pwned\'"> to officials. '
                       "The ministry asked Facebook to remove it.\n", encoding="utf-8")
    pages = tmp_path / "pages"
    assert main(["tag", str(raw_dir / "vietnam-vows-to-identify-social-network-users.txt"), str(hostile), "--out",
                 str(tmp_path / "t.jsonl"), "--model", str(tiny_classifier), "--html", str(pages),
                 "--no-progress"]) == 0
    page = pages / page_name("vietnam-vows-to-identify-social-network-users")
    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile").stdout
    assert "<article>" in dom and dom.count('class="s"') == 26 and "data-labels=" in dom
    hostile_dom = chromium("--dump-dom", (pages / page_name("hostile")).as_uri(), profile=tmp_path / "profile").stdout
    assert "pwned" not in hostile_dom.split("<body>")[0] and "<img" not in hostile_dom
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri(), profile=tmp_path / "profile")
    assert shot.stat().st_size > 10_000
    if os.environ.get("POLICYTAG_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["POLICYTAG_KEEP_SCREENSHOT"])
