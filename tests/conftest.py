"""Test-wide setup: exported ONNX files go to a temporary cache, never to ~/.cache; a
server configuration with small networks, shared by the server and client tests; and
the astronaut's face crop with its landmarks, shared by the avatar and enrolment tests.

The server's networks are narrow and randomly initialised (seeded): those tests
check plumbing, limits and timing, not how good the animation looks, and a
width-8 generator renders a frame in a few ms on the CI machine's 2 cores.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.avatar import load_default_avatar
from engine.avatar.landmarks import detect_landmarks
from engine.backends.model_files import onnx_file, resolve_source
from engine.server.config import ServerConfig
from models.cause.io import save_cause
from models.ganimation.io import save_generator
from tests.engine.nets import small_cause, small_generator


@pytest.fixture(scope="session", autouse=True)
def _isolated_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("AVATAR_CACHE_DIR")
    os.environ["AVATAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if previous is None:
        os.environ.pop("AVATAR_CACHE_DIR", None)
    else:
        os.environ["AVATAR_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("server-weights")
    generator = small_generator(width=8)
    save_generator(generator, generator.config, folder / "generator.pth")
    save_cause(small_cause(lookahead_hops=2), folder / "cause.pt")
    return folder / "generator.pth", folder / "cause.pt"


@pytest.fixture(scope="session")
def server_config(small_weights: tuple[Path, Path]) -> ServerConfig:
    """Loopback, an OS-chosen port, the default avatar, small networks (the generator draws: a few ms a
    frame, and its file has no card, so auto would pick the slower warp renderer), 2 sessions at most.

    Their ONNX files are exported here, once per test run (torch export takes
    seconds), so that no server test with a timeout pays for it.
    """
    generator, cause = small_weights
    onnx_file(resolve_source("generator", generator))
    onnx_file(resolve_source("cause", cause))
    return ServerConfig(
        host="127.0.0.1",
        port=0,
        generator_path=generator,
        cause_path=cause,
        max_sessions=2,
        threads=1,
        renderer="ganimation",
    )


@pytest.fixture(scope="session")
def astronaut_crop() -> np.ndarray:
    """(128, 128, 3) uint8: the default avatar's generator crop (the astronaut), as enrolment sees it."""
    crop = load_default_avatar().crop  # (3, 128, 128) in [-1, 1]
    return np.rint((crop.transpose(1, 2, 0) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def astronaut_landmarks(astronaut_crop: np.ndarray) -> np.ndarray:
    """(68, 2) float32 landmarks found on the crop itself."""
    return detect_landmarks(astronaut_crop)
