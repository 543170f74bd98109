"""``avatar render`` end to end: real audio files in, a decodable mp4 out, clear errors otherwise."""

import math
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from engine.audio import SAMPLE_SPEECH
from engine.cli.main import main

pytestmark = pytest.mark.slow


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def write_wav(path: Path, pcm: np.ndarray, rate: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(pcm, "<i2").tobytes())
    return path


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 1.5 s of the built-in sample, 16 kHz mono."""
    pcm, rate = read_wav(SAMPLE_SPEECH)
    return write_wav(tmp_path_factory.mktemp("audio") / "short.wav", pcm[: int(1.5 * rate)], rate)


def probe(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = [f for f in container.decode(video=0)]
        return {
            "frames": len(frames),
            "fps": float(video.average_rate),
            "width": frames[0].width,
            "video_s": len(frames) / float(video.average_rate),
            "audio_s": float(audio.duration * audio.time_base),
        }


def test_render_writes_h264_with_audio_and_matching_durations(short_speech: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.mp4"
    assert main(["render", "--audio", str(short_speech), "-o", str(out), "--no-progress"]) == 0
    info = probe(out)
    assert info["fps"] == 25
    assert info["frames"] == math.ceil(1.5 * 25)
    assert abs(info["video_s"] - info["audio_s"]) <= 1 / 25
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    said = capsys.readouterr().err
    assert "weights: generator: " in said and "; cause: " in said


def test_render_accepts_44k_stereo(short_speech: Path, tmp_path: Path) -> None:
    pcm, rate = read_wav(short_speech)
    t_new = np.arange(int(pcm.size * 44_100 / rate)) / 44_100
    mono = np.interp(t_new, np.arange(pcm.size) / rate, pcm.astype(np.float64))
    stereo = np.stack([mono, 0.5 * mono], axis=1).round().astype("<i2")
    source = write_wav(tmp_path / "stereo44k.wav", stereo, 44_100, channels=2)
    out = tmp_path / "stereo.mp4"
    assert main(["render", "--audio", str(source), "-o", str(out), "--no-progress"]) == 0
    info = probe(out)
    assert abs(info["frames"] - math.ceil(1.5 * 25)) <= 1
    assert abs(info["video_s"] - info["audio_s"]) <= 1 / 25


def test_zero_length_audio_is_a_clear_error(tmp_path: Path, capsys) -> None:
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, "<i2"), 16_000)
    out = tmp_path / "empty.mp4"
    assert main(["render", "--audio", str(empty), "-o", str(out), "--no-progress"]) == 2
    assert "no samples" in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_audio_names_the_file(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    assert main(["render", "--audio", str(bogus), "-o", str(tmp_path / "x.mp4"), "--no-progress"]) == 2
    assert str(bogus) in capsys.readouterr().err


def test_portrait_without_a_face_fails_clearly_and_face_box_rescues_it(
    short_speech: Path, tmp_path: Path, capsys
) -> None:
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(noise)
    args = ["render", "--audio", str(short_speech), "--avatar", str(noise), "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "a.mp4")]) == 2
    assert "--face-box" in capsys.readouterr().err
    assert main([*args, "--face-box", "100,60,120,120", "-o", str(tmp_path / "b.mp4")]) == 0
    assert probe(tmp_path / "b.mp4")["width"] == 320


def test_head_framing_and_the_renderer_choice(short_speech: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "head.mp4"
    args = ["render", "--audio", str(short_speech), "-o", str(out), "--no-progress", "--framing", "head-wide"]
    assert main([*args, "--renderer", "warp"]) == 0
    info = probe(out)
    assert info["width"] > 0 and info["width"] % 2 == 0 and info["width"] < 512  # a window of the 512 px photo
    said = capsys.readouterr()
    assert "renderer: warp (--renderer warp" in said.err and ", warp)" in said.out
    assert main(["render", "--audio", str(short_speech), "-o", str(tmp_path / "auto.mp4"), "--no-progress"]) == 0
    # The default generator was enrolled on the astronaut with absolute AUs: auto draws her with it.
    assert "renderer: ganimation (auto: the generator was enrolled on this portrait" in capsys.readouterr().err
