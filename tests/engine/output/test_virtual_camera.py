"""The virtual camera output: native pixel formats, the error without a camera, and the real pipeline
(``avatar live`` fed a file) into a recording pyvirtualcam backend."""

import platform
import threading
import wave
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam
from pythonosc.osc_server import BlockingOSCUDPServer

from bench.recording_camera import BACKEND, recording_camera
from engine.audio import load_audio_file
from engine.avatar import load_default_avatar
from engine.cli.main import main
from engine.output.virtual_camera import FFMPEG_FORMATS, CameraPictures, VirtualCameraUnavailable, open_camera
from engine.pipeline import SAMPLE_RATE_HZ
from engine.server.config import ServerConfig
from tests.engine.output.receivers import VmcReceiver

FPS = 25
SIZE_PX = 128
LEADING_SILENCE_S = 0.8
SPEECH_S = 2.0
TRAILING_SILENCE_S = 2.0
MIN_NOISE_FLOOR = 0.02
"""Smallest mean change (0..255) of the mouth between frames counted as movement (no codec here: silence is 0)."""


def test_the_camera_is_reopened_in_its_native_pixel_format() -> None:
    with recording_camera("NV12") as recording:
        camera = open_camera(width_px=64, height_px=48, fps=FPS, backend=BACKEND)
        assert recording.opened_formats == ["raw ", "NV12"]  # RGB to ask, then the native format
        assert camera.fmt == pyvirtualcam.PixelFormat.NV12 and recording.closed == 1
        camera.close()


@pytest.mark.parametrize("pixel_format", sorted(FFMPEG_FORMATS))
def test_pictures_have_the_size_and_colours_each_format_needs(pixel_format: str) -> None:
    """Every format's bytes pass pyvirtualcam's own size check, and a flat colour comes out as that colour."""
    width, height = 64, 48
    pictures = CameraPictures(width_px=width, height_px=height, pixel_format=pixel_format)
    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:] = (200, 40, 90)
    data = pictures.camera_bytes(pictures.picture(rgb))
    shape = pyvirtualcam.camera.FrameShapes[pyvirtualcam.PixelFormat[pixel_format]](width, height)
    assert data.dtype == np.uint8 and data.size == (shape if isinstance(shape, int) else int(np.prod(shape)))
    luma = 0.299 * 200 + 0.587 * 40 + 0.114 * 90  # BT.601, full range; the YUV formats are studio range
    first = {
        "RGB": 200,
        "BGR": 90,
        "RGBA": 200,
        "GRAY": luma,
        "I420": 16 + luma * 219 / 255,
        "NV12": 16 + luma * 219 / 255,
        "YUYV": 16 + luma * 219 / 255,
    }.get(pixel_format)
    if first is not None:
        assert abs(int(data[0]) - first) <= 3, (pixel_format, data[:4])
    else:  # UYVY: chroma first, luma second
        assert abs(int(data[1]) - (16 + luma * 219 / 255)) <= 3


def test_without_a_virtual_camera_the_error_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backend can open a camera here (no v4l2loopback device, no OBS): one error naming the fix."""
    with pytest.raises(VirtualCameraUnavailable) as error:
        open_camera(width_px=64, height_px=64, fps=FPS)
    message = str(error.value)
    assert "\n" not in message and "no virtual camera could be opened" in message
    if platform.system() == "Linux":
        assert "modprobe v4l2loopback" in message and "exclusive_caps=1" in message
    with pytest.raises(VirtualCameraUnavailable, match="no virtual camera backend 'nosuch'"):
        open_camera(width_px=64, height_px=64, fps=FPS, backend="nosuch")


def test_avatar_live_without_a_camera_fails_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Checked after the networks load (the camera's size is the portrait's), before any audio is read."""
    wav = _write_wav(tmp_path / "speech.wav", np.zeros(SAMPLE_RATE_HZ // 10, np.float32))
    assert main(["live", "--input", str(wav), "--camera-backend", "nosuch", "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("avatar live: error: no virtual camera backend 'nosuch'")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_avatar_live_feeds_a_paced_camera_that_moves_with_speech(server_config: ServerConfig, tmp_path: Path) -> None:
    """``avatar live --input FILE`` into the recording camera, the real pipeline (small random networks).

    The camera gets a steady ``fps`` (the still portrait before speech,
    rendered frames, repeats), in its native I420, for as long as the file
    plays; the mouth changes from frame to frame while speech plays and not
    in the settled silence after it (why this holds with random networks:
    tests/engine/server/test_webrtc.py).
    """
    speech = load_audio_file(Path(__file__).parents[3] / "engine" / "audio" / "assets" / "sample_speech.wav")
    audio = np.concatenate(
        [
            np.zeros(int(LEADING_SILENCE_S * SAMPLE_RATE_HZ), np.float32),
            speech[: int(SPEECH_S * SAMPLE_RATE_HZ)],
            np.zeros(int(TRAILING_SILENCE_S * SAMPLE_RATE_HZ), np.float32),
        ]
    )
    wav = _write_wav(tmp_path / "speech.wav", audio)
    duration_s = audio.size / SAMPLE_RATE_HZ
    assert server_config.generator_path is not None and server_config.cause_path is not None
    with recording_camera("I420") as recording:
        status = main(
            [
                "live",
                "--input", str(wav),
                "--camera-backend", BACKEND,
                "--fps", str(FPS),
                "--size", str(SIZE_PX),
                "--stats-interval", "0",
                "--still",  # liveness off: this test follows the speech alone
                "--backend", "openvino",
                "--threads", "1",
                "--generator", str(server_config.generator_path),
                "--cause", str(server_config.cause_path),
            ]
        )  # fmt: skip
    assert status == 0
    assert recording.opened_formats[-1] == "I420" and recording.closed == 2
    assert recording.size == (SIZE_PX, SIZE_PX)
    assert all(frame.size == SIZE_PX * SIZE_PX * 3 // 2 for frame in recording.frames)

    # Frame count and pacing: about fps frames a second for the file's duration, evenly spaced.
    times = np.asarray(recording.times_s)
    span_s = times[-1] - times[0]
    gaps_s = np.diff(times)
    print(f"{len(times)} frames in {span_s:.2f} s; gaps median {np.median(gaps_s) * 1e3:.1f} ms, "
          f"p95 {np.percentile(gaps_s, 95) * 1e3:.1f} ms, max {gaps_s.max() * 1e3:.1f} ms")  # fmt: skip
    assert duration_s - 0.3 <= span_s <= duration_s + 1.5
    assert 0.85 * FPS <= (len(times) - 1) / span_s <= 1.1 * FPS
    assert 0.75 / FPS <= np.median(gaps_s) <= 1.25 / FPS
    assert np.percentile(gaps_s, 95) <= 2.0 / FPS

    # The mouth moves with the speech: frame-to-frame change of the mouth's luma.
    luma = [frame[: SIZE_PX * SIZE_PX].reshape(SIZE_PX, SIZE_PX).astype(np.float32) for frame in recording.frames]
    rows, cols = _mouth(SIZE_PX)
    change = np.asarray([np.abs(b[rows, cols] - a[rows, cols]).mean() for a, b in zip(luma, luma[1:])])
    moving = change > MIN_NOISE_FLOOR
    settled = (times[1:] - times[0]) > duration_s - 0.6  # the last frames: silence for 1.4 s by then
    print(f"mouth change median {np.median(change):.3f}, moving in {moving.sum()} of {moving.size} frame pairs, "
          f"{moving[settled].sum()} of {settled.sum()} at the end")  # fmt: skip
    assert SPEECH_S * FPS * 0.4 <= moving.sum() <= (SPEECH_S + 1.5) * FPS
    assert moving[settled].mean() <= 0.2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_avatar_live_also_drives_a_vmc_receiver(
    server_config: ServerConfig, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``avatar live --vmc HOST:PORT``: every frame the camera shows also reaches a VMC receiver (python-osc)."""
    speech = load_audio_file(Path(__file__).parents[3] / "engine" / "audio" / "assets" / "sample_speech.wav")
    wav = _write_wav(tmp_path / "speech.wav", speech[: 2 * SAMPLE_RATE_HZ])
    vmc = VmcReceiver()
    receiver = BlockingOSCUDPServer(("127.0.0.1", 0), vmc.dispatcher)  # one thread: frames in order
    thread = threading.Thread(target=receiver.serve_forever, name="vmc-receiver")
    thread.start()
    assert server_config.generator_path is not None and server_config.cause_path is not None
    try:
        with recording_camera("I420"):
            status = main(
                [
                    "live", "--input", str(wav), "--camera-backend", BACKEND, "--fps", str(FPS),
                    "--size", str(SIZE_PX), "--stats-interval", "0", "--backend", "openvino", "--threads", "1",
                    "--generator", str(server_config.generator_path), "--cause", str(server_config.cause_path),
                    "--vmc", f"127.0.0.1:{receiver.server_address[1]}", "--vmc-shapes", "vrm0",
                ]
            )  # fmt: skip
    finally:
        receiver.shutdown()
        receiver.server_close()
        thread.join()
    assert status == 0
    assert "forwarding to avatar apps: vmc default (127.0.0.1:" in capsys.readouterr().err
    assert 2 * FPS - 3 <= len(vmc.frames) <= 2 * FPS + 3  # one per frame of the 2 s file
    assert all({"A", "I", "U", "E", "O", "Blink"} <= set(frame.shapes) for frame in vmc.frames)  # VRM 0.x names


def _mouth(size_px: int) -> tuple[slice, slice]:
    """Rows and columns of the mouth (lower middle of the face crop) in camera pixels."""
    avatar = load_default_avatar()
    box = avatar.crop_box
    scale = size_px / max(avatar.portrait.shape[:2])
    rows = slice(int((box.y0 + 0.55 * box.size) * scale), int((box.y0 + 0.9 * box.size) * scale))
    cols = slice(int((box.x0 + 0.25 * box.size) * scale), int((box.x0 + 0.75 * box.size) * scale))
    return rows, cols


def _write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path
