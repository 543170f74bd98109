"""Test-wide setup: exported ONNX files go to a temporary cache, never to ~/.cache."""

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("AVATAR_CACHE_DIR")
    os.environ["AVATAR_CACHE_DIR"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if previous is None:
        os.environ.pop("AVATAR_CACHE_DIR", None)
    else:
        os.environ["AVATAR_CACHE_DIR"] = previous
