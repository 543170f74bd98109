"""The bundled default portrait and avatar; serving must not need scikit-image."""

import subprocess
import sys
from pathlib import Path

from PIL import Image

from engine.avatar import default_portrait_path, load_default_avatar


def test_bundled_portrait_and_its_readme_exist() -> None:
    path = default_portrait_path()
    with Image.open(path) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (512, 512))
    readme = (path.parent / "README.md").read_text()
    assert "public domain" in readme and "NASA" in readme


def test_default_avatar_is_prepared_once_and_shared() -> None:
    avatar = load_default_avatar()
    assert avatar is load_default_avatar()
    assert avatar.face_box.score is not None


def test_loading_the_default_avatar_does_not_import_skimage() -> None:
    code = (
        "import sys; from engine.avatar import load_default_avatar; load_default_avatar(); "
        "assert 'skimage' not in sys.modules"
    )
    repo_root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=repo_root)
