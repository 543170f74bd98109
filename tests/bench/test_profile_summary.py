"""Folding a py-spy profile into the pipeline's stages."""

from pathlib import Path

import pytest

from bench.profile_summary import fold, main

PROFILE = """\
0x1 (libc.so.6);_worker (concurrent/futures/thread.py:83);_WorkItem.run (concurrent/futures/thread.py:58);\
render (engine/pipeline/renderer.py:40);run (engine/backends/openvino_backend.py:110);0x2 (libopenvino.so) 60
0x1 (libc.so.6);_worker (concurrent/futures/thread.py:83);_WorkItem.run (concurrent/futures/thread.py:58);\
render (engine/pipeline/renderer.py:41);attention_blend (kernels/reference.py:160) 5
0x1 (libc.so.6);_worker (concurrent/futures/thread.py:83);_WorkItem.run (concurrent/futures/thread.py:58);\
encode (aiortc/codecs/vpx.py:222) 20
0x1 (libc.so.6);Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81) 500
0x1 (libc.so.6);run (bench/throughput.py:106);build_backends (bench/models.py:116) 70
0x1 (libc.so.6);run_forever (asyncio/base_events.py:607);_run_once (asyncio/base_events.py:1922) 15
"""


def test_samples_go_to_the_innermost_stage_and_waits_and_set_up_are_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = fold(PROFILE.splitlines())
    assert samples == {"generator": 60, "blend": 5, "encode": 20, "idle": 500, "set-up": 70, "loop": 15}
    path = tmp_path / "profile.txt"
    path.write_text(PROFILE)
    assert main([str(path)]) == 0
    table = capsys.readouterr().out
    assert "generator       60   60.0 %" in table  # of the 100 samples of work
