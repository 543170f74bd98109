"""Every benchmark scenario once, in --smoke mode: it runs, writes its JSON with the fields, and its PNG.

Smoke runs use tiny random networks and seconds of audio; their numbers say
nothing about performance, only that the scenario works end to end (the e2e
and drift runs start a real ``avatar serve`` process and stream to it).
"""

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import SCENARIOS, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MACHINE_FIELDS = ("cpu", "cores", "libraries", "git_commit", "backend", "generator_width", "threads")


def _run(scenario: str, out_dir: Path, *options: str) -> dict[str, Any]:
    assert main([scenario, "--smoke", "--out-dir", str(out_dir), *options]) == 0
    [json_path] = out_dir.glob(f"{scenario}-smoke-*.json")
    document = json.loads(json_path.read_text())
    assert document["scenario"] == scenario and document["smoke"] is True
    for name in MACHINE_FIELDS:
        assert document["machine"][name] not in (None, "", []), name
    png = out_dir / document["plot"]
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert document["targets"], "a scenario is judged against at least one target"
    return document["results"]


def _positive(value: Any, what: str) -> None:
    assert isinstance(value, int | float) and math.isfinite(value) and value > 0, f"{what} = {value!r}"


def test_every_scenario_is_registered() -> None:
    assert sorted(SCENARIOS) == [
        "backends",
        "browser",
        "chaos",
        "churn",
        "drift",
        "e2e",
        "encoders",
        "gpu",
        "peers",
        "pipecat",
        "renderers",
        "stages",
        "throughput",
        "vcam",
        "whip",
    ]


def test_help_lists_each_scenario_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    listed = " ".join(capsys.readouterr().out.split())
    for name, module in SCENARIOS.items():
        assert f"{name} {' '.join(module.SUMMARY.split())}" in listed, name


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_stages(tmp_path: Path) -> None:
    results = _run("stages", tmp_path)
    assert results["frames"] > 0
    for stage, stats in results["stages_ms"].items():
        for key in ("p50", "p95", "p99"):
            _positive(stats[key], f"{stage} {key}")
    for line in results["budget"]:
        _positive(line["p50_ms"], line["label"])


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_e2e(tmp_path: Path) -> None:
    results = _run("e2e", tmp_path)
    assert results["frames_paired"] > 25
    for key in ("p50", "p95", "p99"):
        _positive(results["latency_ms"][key], f"latency {key}")
        _positive(results["capture_latency_ms"][key], f"capture latency {key}")
    for segment, stats in results["segments_ms"].items():
        assert math.isfinite(stats["p50"]), segment
    assert results["latency_ms"]["p50"] < results["capture_latency_ms"]["p50"]
    assert results["onsets"]["count"] >= 1


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_browser_under_load(tmp_path: Path) -> None:
    results = _run("browser", tmp_path, "--load", "1")
    # 8 s of speech; the page pairs a frame with its server trace only when it gets both, which a starved
    # 2-core machine does for fewer (18 frames with CI's own load and 21 % hypervisor steal): the test asks
    # that pairing works and yields figures, not how many a loaded machine manages.
    assert results["frames_paired"] >= 10
    for key in ("p50", "p95", "p99"):
        _positive(results["latency_ms"][key], f"latency {key}")
        _positive(results["receive_to_present_ms"][key], f"receive -> present {key}")
    # The page's figure contains the server's share and the browser's.
    assert results["latency_ms"]["p50"] > results["server_ms"]["p50"]
    # Its other parts: the lookahead (35 ms of audio by default), an uplink of at least part of a 20 ms
    # Opus packet, and a downlink a frame cannot cross before it was sent (within the clock reading's error).
    assert 30 <= results["window_ms"]["p50"] <= 50
    assert results["uplink_ms"]["p50"] > 0
    assert results["downlink_ms"]["p50"] > -results["page_clock_uncertainty_ms"]
    _positive(results["presented_fps"], "presented fps")
    assert results["onset_agreement"]["onsets"] >= 1
    assert math.isfinite(results["rtp_clock_error"])


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_drift(tmp_path: Path) -> None:
    results = _run("drift", tmp_path)
    for edge in ("start", "end"):
        _positive(results["latency_ms"][edge]["p50"], f"latency {edge}")
        assert math.isfinite(results["av_offset_ms"][edge]["p50"]), f"A/V offset {edge}"
        _positive(results["rss_mb"][edge], f"RSS {edge}")
    assert len(results["rss_mb"]["series"]) >= 3
    assert set(results["grew"]) == {"latency", "av_offset", "memory"}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_throughput(tmp_path: Path) -> None:
    results = _run("throughput", tmp_path)
    assert {(s["max_batch"]) for s in results["summary"]} == {8, 1}
    for point in results["points"]:
        _positive(point["due"], "frames due")
        assert 0.0 <= point["late_rate"] <= 1.0
        assert point["on_time"] + point["late"] + point["skipped"] == point["due"]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_throughput_judges_the_default_generator_when_asked(tmp_path: Path) -> None:
    document_results = _run("throughput", tmp_path, "--widths", "default", "--max-batches", "1")
    [summary] = document_results["summary"]
    assert summary["generator"] == "default" and summary["width"] == 16  # the shipped weights
    document = json.loads(next(tmp_path.glob("throughput-smoke-*.json")).read_text())
    assert "default generator" in document["targets"][0]["name"]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_backends(tmp_path: Path) -> None:
    results = _run("backends", tmp_path)
    runtimes = {row["runtime"] for row in results["rows"]}
    assert {"torch", "onnxruntime", "openvino-f32", "openvino-int8"} <= runtimes
    for quality in results["int8_quality"].values():
        _positive(quality["heldout_speech"]["psnr_db"], "int8 PSNR")
    for row in results["rows"]:
        _positive(row["median_ms"], f"{row['runtime']} batch {row['batch']}")
        _positive(row["speedup_vs_torch"], f"{row['runtime']} speedup")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_renderers(tmp_path: Path) -> None:
    results = _run("renderers", tmp_path, "--portraits", "astronaut", "--sheets-dir", str(tmp_path))
    assert {(r["portrait"], r["renderer"]) for r in results["renderers"]} == {
        ("astronaut", "warp"),
        ("astronaut", "ganimation"),
    }
    for row in results["renderers"]:
        _positive(row["cost_ms"]["p50"], f"{row['renderer']} cost")
        assert 0 <= row["face_found"] <= 1 and row["identity_distance"]["p95"] >= 0
    _positive(results["setup_s"]["astronaut"], "set-up")


@pytest.mark.timeout(90)
def test_encoders(tmp_path: Path) -> None:
    results = _run("encoders", tmp_path)
    assert {row["encoder"] for row in results["video"]} == {"vp8 aiortc", "vp8 engine", "h264 aiortc", "h264 engine"}
    for row in results["video"]:
        _positive(row["cpu_ms_p50"], row["encoder"])
        _positive(row["kbps"], f"{row['encoder']} bitrate")
        _positive(row["luma_psnr_db"], f"{row['encoder']} PSNR")
    assert len(results["jpeg"]) == 4
    for row in results["jpeg"]:
        _positive(row["cpu_ms_p50"], row["encoder"])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_peers(tmp_path: Path) -> None:
    results = _run("peers", tmp_path)
    [point] = results["points"]
    assert point["sessions"] == 1
    _positive(point["due"], "frames due")
    assert point["on_time"] + point["late"] == point["due"]
    assert point["received_fps_mean"] > 10, "video arrived at the client"
    _positive(point["server_cpu_cores"], "server CPU")
    _positive(point["client_cpu_cores"], "client CPU")


@pytest.mark.timeout(60)
def test_gpu_smoke_runs_anywhere_and_says_what_it_skipped(tmp_path: Path) -> None:
    """On a machine without a CUDA GPU the GPU parts are skipped with the reason; the CPU encode bound is measured."""
    from engine.backends.selection import tensorrt_unavailable_reason

    results = _run("gpu", tmp_path)
    _positive(results["encode_ms"], "encode ms")
    assert results["skipped"] == tensorrt_unavailable_reason()
    for row in results["summary"]:
        assert row["cpu_encode_sessions"] >= 1
        assert (row["gpu_sessions"] is None) == (results["skipped"] is not None)


@pytest.mark.timeout(120)
def test_churn(tmp_path: Path) -> None:
    results = _run("churn", tmp_path)
    assert results["sessions"] == 6 and len(results["series"]) == 6
    for sample in results["series"]:
        _positive(sample["rss_mb"], "RSS")
        _positive(sample["fds"], "descriptors")
    assert math.isfinite(results["rss_slope_mb_per_100_sessions"])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_chaos(tmp_path: Path) -> None:
    results = _run("chaos", tmp_path)
    assert not results["honest_errors"], results["honest_errors"]
    for phase in ("quiet", "attack"):
        _positive(results["phases"][phase]["fps_mean"], f"{phase} records/s")
        _positive(results["phases"][phase]["latency_ms"]["p50"], f"{phase} latency")
    attacks = results["attacks"]
    assert set(attacks) >= {"slow_reader", "ping_flood", "fast_sender", "offer_no_ice", "garbage", "no_token"}
    assert all(a["attempts"] >= 1 for a in attacks.values())
    assert all(a["server_errors"] == 0 for a in attacks.values()), attacks
    assert results["server_refusals"].get("auth", 0) > 0 and results["server_refusals"].get("rate_limited", 0) > 0
    assert results["sigterm_returncode"] == 0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_vcam(tmp_path: Path) -> None:
    pytest.importorskip("pyvirtualcam", reason="the vcam extra is not installed: pip install 'avatar-engine[vcam]'")
    results = _run("vcam", tmp_path)
    assert results["frames_rendered"] > 25
    for key in ("p50", "p95", "p99"):
        _positive(results["latency_ms"][key], f"latency {key}")
    for segment, stats in results["segments_ms"].items():
        assert stats["p50"] >= 0, segment
    # The sample waits for its audio window (mel window + lookahead) before any frame can show it.
    assert results["segments_ms"]["audio_window"]["p50"] >= 10
    assert results["latency_ms"]["p50"] > results["engine_latency_ms"]["p50"]
    camera = results["camera"]
    assert results["camera_format"] == "I420" and camera["frames"] >= camera["seconds"] * 10
    _positive(camera["gap_ms"]["p50"], "camera gap")
    assert 0 < camera["rendered_share"] <= 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_whip(tmp_path: Path) -> None:
    from bench import janus

    missing = janus.missing()
    if missing is not None:
        pytest.skip(missing)
    results = _run("whip", tmp_path)
    pairing = results["pairing"]
    # Janus rebases the timestamps it forwards: the subscriber's first RTP timestamp is 0.
    assert pairing["first_rtp_timestamp"] == 0
    assert pairing["paired_frames"] > 25 and pairing["paired_share"] > 0.9, pairing
    for key in ("p50", "p95", "p99"):
        _positive(results["latency_ms"][key], f"latency {key}")
        _positive(results["transport_ms"][key], f"transport {key}")
    # A frame reaches the subscriber after it left the publisher's pipeline, never before.
    assert results["latency_ms"]["p50"] > results["engine_ms"]["p50"]
    assert results["segments_ms"]["audio_window"]["p50"] >= 10
    subscriber = results["subscriber"]
    # The track repeats the last picture when rendering lags: frames keep coming on a loaded machine too.
    assert subscriber["fps"] >= 5 and subscriber["voice_frames_per_s"] >= 10, subscriber
    assert set(results["processes"]) == {"publisher", "janus", "simple-whip-server"}
    for name, process in results["processes"].items():
        _positive(process["rss_mb"]["start"], f"{name} RSS")
        assert process["fds"]["start_max"] > 0, name


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_pipecat(tmp_path: Path) -> None:
    pytest.importorskip("pipecat", reason="the pipecat extra is not installed: pip install 'avatar-engine[pipecat]'")
    results = _run("pipecat", tmp_path)
    assert results["utterances"] >= 2
    # Every utterance gets a first frame, after its TTS audio entered; every byte of TTS audio comes out.
    assert results["first_frame_ms"]["n"] == results["utterances"]
    _positive(results["first_frame_ms"]["p50"], "first frame")
    assert results["audio_bytes_out"] == results["audio_bytes_in"] > 0
    # The audio follows the picture showing its start: never before it.
    assert results["av_gap_ms"]["n"] > 0 and min(v for _, v in results["av_gap_series"]) >= 0
    # Images keep coming between utterances too (the idle face); a loaded machine renders fewer than 25 a second.
    assert results["images"] >= results["seconds"] and math.isfinite(results["timeline_rate_ppm"])
    _positive(results["rss_mb"]["start"], "RSS")
