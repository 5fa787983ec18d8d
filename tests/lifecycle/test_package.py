"""The package carries its stylesheet and icon: a wheel holds them, and the app installed from it finds them."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ssl_studio

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = ("ssl_studio/resources/style.qss", "ssl_studio/resources/icon.svg")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Built from a copy of the sources, so the build leaves nothing in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "ssl_studio", source / "ssl_studio", ignore=shutil.ignore_patterns("__pycache__"))
    # Build isolation: pip installs the build backend pyproject.toml names (setuptools) into a fresh environment,
    # as a user's `pip wheel .` does, so the test does not depend on this environment having it.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(tmp / "dist"), str(source)], check=True, capture_output=True)
    (built,) = (tmp / "dist").glob("ssl_studio-*.whl")
    return built


def test_the_wheel_holds_the_stylesheet_and_the_icon(wheel):
    with zipfile.ZipFile(wheel) as archive:
        for name in RESOURCES:
            assert archive.read(name) == (ROOT / name).read_bytes()
        metadata = archive.read(f"ssl_studio-{ssl_studio.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {ssl_studio.__version__}\n" in metadata


def test_the_app_installed_from_the_wheel_reads_them_from_itself(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                    "--target", str(target), str(wheel)], check=True, capture_output=True)
    # Only the installed copy on the path first: not this checkout, not the editable install.
    env = {**os.environ, "PYTHONPATH": str(target), "QT_QPA_PLATFORM": "offscreen"}
    script = ("import ssl_studio; from ssl_studio.gui.app import create_application\n"
              "app = create_application()\n"
              "print(ssl_studio.__file__); print(len(app.styleSheet())); print(app.windowIcon().isNull())")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    where, stylesheet_chars, icon_null = done.stdout.split()
    assert Path(where).is_relative_to(target)
    assert int(stylesheet_chars) == len((ROOT / RESOURCES[0]).read_text(encoding="utf-8"))
    assert icon_null == "False"
    version = subprocess.run([sys.executable, "-m", "ssl_studio", "--version"], env=env, capture_output=True,
                             text=True, cwd=tmp_path)
    assert version.stdout.strip() == f"ssl-studio {ssl_studio.__version__}"
