"""``renderers``: what each face renderer costs and keeps of a face, on three portraits, with contact sheets.

For the default portrait and the two in ``bench/portraits/`` (public domain;
README there), the built-in speech drives CAUSE (the default weights) and each
AU frame is rendered by the instant warp renderer, and on the astronaut also by
the default generator (enrolled on her). Per portrait:

- **set-up**: photo file to first frame (load, detect, landmarks, photo AUs,
  rig, one frame), with dlib's models already loaded, as a running server has
  them; the first portrait's cold figure (models loading) is reported apart;
- **per-frame cost**: ``Renderer.render`` per frame (draw + full-resolution
  compose + I420 of the changed blocks), p50 / p95;
- on every ``--every``-th frame, seen through dlib: **identity** (descriptor
  distance to the photo, p95; same person below 0.6), **face found** (share of
  frames where the detector finds a face overlapping the photo's box),
  **sharpness** (variance of the Laplacian of the face box's luma, frame over
  photo, median), and the **inner-lip gap** (IOD), correlated with the speech
  envelope (RMS over the frame's 40 ms) at lags of -4..12 frames (positive:
  the lips follow the sound): the best lag and its correlation.

A contact sheet per portrait (the photo, relaxed, each web preset, an open
mouth, a blink) is written to ``bench/results/contact-<portrait>.png`` (the
names do not change between runs, so the committed sheets are the latest).
Blinks per minute and head motion come from the liveness models, not from the
renderer, and are not measured here.
"""

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from bench.models import build_backends
from bench.plots import new_figure, save
from bench.report import RESULTS_DIR, Report, Target, percentiles
from bench.speech import looped_speech
from engine.au import AU_NAMES
from engine.audio import SAMPLE_RATE_HZ
from engine.avatar import Avatar, NoFaceError, default_portrait_path, detect_face, load_portrait, prepare_avatar
from engine.avatar.framing import framing_window
from engine.avatar.identity import descriptor_distance
from engine.avatar.landmarks import detect_landmarks, face_descriptor
from engine.avatar.photo_aus import mouth_measures
from engine.backends.generator_card import read_card
from engine.backends.model_files import resolve_source
from engine.pipeline import Renderer, RenderRequest, Session
from engine.pipeline.frames import AUFrame, FrameTrace
from engine.pipeline.renderer import FaceRenderer, GanimationFaces, WarpFaces
from engine.pipeline.renderer_choice import choose_renderer

NAME = "renderers"
SUMMARY = "per-frame cost, set-up, identity, sharpness and lip sync of each renderer on three portraits"
PORTRAITS = {
    "astronaut": default_portrait_path(),
    "grace_hopper": Path(__file__).resolve().parent / "portraits" / "grace_hopper.jpg",
    "barack_obama": Path(__file__).resolve().parent / "portraits" / "barack_obama.jpg",
}
WEB_APP = Path(__file__).resolve().parents[1] / "clients" / "web" / "avatar_web" / "app.js"
SHEET_EXTRA = {"open mouth": {"AU25": 4.0, "AU26": 4.0}, "blink": {"AU45": 5.0}}
FPS = 25
LAGS_FRAMES = range(-4, 13)
IDENTITY_P95 = 0.4
FACE_FOUND = 0.99
SHARPNESS_RATIO = 0.7


def web_presets() -> dict[str, dict[str, float]]:
    """The page's expression presets (``PRESETS`` in clients/web/avatar_web/app.js), read from the page itself."""
    block = re.search(r"const PRESETS = \{(.*?)\n\};", WEB_APP.read_text(), re.S)
    if block is None:
        raise ValueError(f"no PRESETS object in {WEB_APP}")
    as_json = re.sub(r"(\w+|\"[^\"]+\"):", lambda m: f'"{m.group(1).strip(chr(34))}":', block.group(1))
    return dict(json.loads("{" + as_json.rstrip().rstrip(",") + "}"))


def aus_of(spec: dict[str, float]) -> np.ndarray:
    aus = np.zeros(len(AU_NAMES), np.float32)
    for name, value in spec.items():
        aus[AU_NAMES.index(name)] = value
    return aus


def add_arguments(parser: argparse.ArgumentParser, *, smoke: bool) -> None:
    parser.add_argument(
        "--seconds", type=float, default=2.0 if smoke else 8.0, help="seconds of speech (default: %(default)s)"
    )
    parser.add_argument(
        "--every", type=int, default=4 if smoke else 2, help="analyse every n-th frame with dlib (default: %(default)s)"
    )
    parser.add_argument(
        "--portraits", nargs="+", choices=sorted(PORTRAITS), default=list(PORTRAITS), help="which portraits"
    )
    parser.add_argument(
        "--sheets-dir", type=Path, default=RESULTS_DIR, help="where the contact sheets go (default: bench/results/)"
    )


def _frame(index: int, aus: np.ndarray) -> AUFrame:
    return AUFrame(index, aus, FrameTrace(shown_sample=index * SAMPLE_RATE_HZ // FPS, due_sample=0, audio_arrival_s=0))


def _setup_s(path: Path) -> tuple[float, Avatar, WarpFaces]:
    """Photo file -> first frame with the warp renderer, seconds."""
    start = time.perf_counter()
    avatar = prepare_avatar(load_portrait(path))
    faces = WarpFaces()
    Renderer(faces).render([RenderRequest(avatar, _frame(0, avatar.photo_aus))])
    return time.perf_counter() - start, avatar, faces


def _sharpness(image: np.ndarray, box: tuple[slice, slice]) -> float:
    luma = image[box].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return float(ndimage.laplace(luma).var())


def _envelope(audio: np.ndarray, frames: int) -> np.ndarray:
    window = int(0.04 * SAMPLE_RATE_HZ)
    starts = [i * SAMPLE_RATE_HZ // FPS for i in range(frames)]
    return np.array([np.sqrt(np.mean(audio[s : s + window] ** 2)) if s < audio.size else 0.0 for s in starts])


def _lag_correlation(gaps: dict[int, float], envelope: np.ndarray) -> tuple[int, float]:
    """The lag (frames, positive: lips after sound) at which the lip gap best follows the envelope, and r there."""
    best = (0, -1.0)
    for lag in LAGS_FRAMES:
        pairs = [(gap, envelope[i - lag]) for i, gap in gaps.items() if 0 <= i - lag < envelope.size]
        if len(pairs) > 3:
            r = float(np.corrcoef(np.array(pairs).T)[0, 1])
            if r > best[1]:
                best = (lag, r)
    return best


def measure(
    name: str, avatar: Avatar, faces: FaceRenderer, au_frames: list[np.ndarray], audio: np.ndarray, every: int
) -> dict[str, Any]:
    """Render every AU frame; analyse every ``every``-th with dlib."""
    renderer = Renderer(faces)
    face = avatar.face_box
    box = (slice(int(face.y), int(face.y + face.height)), slice(int(face.x), int(face.x + face.width)))
    photo_descriptor = face_descriptor(avatar.portrait, face)
    photo_sharpness = _sharpness(avatar.portrait, box)
    cost_ms, distances, found, sharpness, gaps = [], [], [], [], {}
    for index, aus in enumerate(au_frames):
        start = time.perf_counter()
        rgb = renderer.render([RenderRequest(avatar, _frame(index, aus))])[0].rgb
        cost_ms.append((time.perf_counter() - start) * 1e3)
        if index % every:
            continue
        try:
            seen = detect_face(rgb)
            overlap = abs(seen.x - face.x) < face.width / 2 and abs(seen.y - face.y) < face.height / 2
        except NoFaceError:
            overlap = False
        found.append(overlap)
        distances.append(descriptor_distance(face_descriptor(rgb, face), photo_descriptor))
        sharpness.append(_sharpness(rgb, box) / photo_sharpness)
        gaps[index] = mouth_measures(detect_landmarks(rgb, face).astype(np.float64))[0]
    lag, r = _lag_correlation(gaps, _envelope(audio, len(au_frames)))
    return {
        "portrait": name,
        "renderer": faces.name,
        "frames": len(au_frames),
        "analysed": len(found),
        "cost_ms": percentiles(cost_ms[1:]),
        "identity_distance": percentiles(distances),
        "face_found": float(np.mean(found)),
        "sharpness_ratio": percentiles(sharpness),
        "lip_lag_frames": lag,
        "lip_envelope_r": r,
    }


def contact_sheet(avatar: Avatar, faces: FaceRenderer, path: Path) -> None:
    """The photo, relaxed, each web preset, an open mouth and a blink, around the head, labelled."""
    specs = {"photo": None, "relaxed": {}, **web_presets(), **SHEET_EXTRA}
    height, width = avatar.portrait.shape[:2]
    x0, y0, side, _ = framing_window(avatar.face_box, height, width, "head")
    tile, label = 200, 18
    columns = 5
    rows = -(-len(specs) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + label)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    renderer = Renderer(faces)
    for i, (title, spec) in enumerate(specs.items()):
        aus = avatar.photo_aus if spec is None else aus_of(spec)
        rgb = renderer.render([RenderRequest(avatar, _frame(0, aus))])[0].rgb
        picture = Image.fromarray(np.ascontiguousarray(rgb[y0 : y0 + side, x0 : x0 + side]))
        x, y = (i % columns) * tile, (i // columns) * (tile + label)
        sheet.paste(picture.resize((tile, tile), Image.Resampling.LANCZOS), (x, y))
        draw.text((x + 4, y + tile + 3), title, fill=(0, 0, 0))
    sheet.save(path)


def run(args: argparse.Namespace) -> Report:
    generator_source = resolve_source("generator", None)
    generator, au_backend, setup = build_backends("openvino", generator_source)
    card = read_card(generator_source)
    audio = looped_speech(args.seconds)
    session = Session(au_backend, fps=FPS)
    au_frames = [frame.aus for frame in session.push_audio(audio) + session.finish()]
    results: list[dict[str, Any]] = []
    setups: dict[str, float] = {}
    cold_s = None
    args.sheets_dir.mkdir(parents=True, exist_ok=True)
    for name in args.portraits:
        seconds, avatar, warp = _setup_s(PORTRAITS[name])
        if cold_s is None:
            cold_s = seconds
            seconds, avatar, warp = _setup_s(PORTRAITS[name])  # again, with dlib's models loaded
        setups[name] = seconds
        print(f"renderers: {name}: set up in {seconds * 1e3:.0f} ms; rendering {len(au_frames)} frames ...", flush=True)
        candidates: list[FaceRenderer] = [warp]
        if name == "astronaut":  # the default generator is hers; its card says how it reads AUs
            choice = choose_renderer("ganimation", card, avatar)
            candidates.append(GanimationFaces(generator, relative_aus=choice.relative_aus))
        for faces in candidates:
            results.append(measure(name, avatar, faces, au_frames, audio, args.every))
        if not args.smoke:
            contact_sheet(avatar, warp, args.sheets_dir / f"contact-{name}.png")
    rows = [
        [
            f"{r['portrait']} / {r['renderer']}",
            r["cost_ms"]["p50"],
            r["cost_ms"]["p95"],
            r["identity_distance"]["p95"],
            r["face_found"],
            r["sharpness_ratio"]["p50"],
            r["lip_envelope_r"],
            r["lip_lag_frames"],
        ]
        for r in results
    ]
    warp_rows = [r for r in results if r["renderer"] == "warp"]
    targets = [
        Target(f"identity p95, {r['portrait']} (warp)", f"<= {IDENTITY_P95}", r["identity_distance"]["p95"],
               r["identity_distance"]["p95"] <= IDENTITY_P95) for r in warp_rows
    ] + [
        Target(f"face found, {r['portrait']} (warp)", f">= {FACE_FOUND}", r["face_found"],
               r["face_found"] >= FACE_FOUND) for r in warp_rows
    ] + [
        Target(f"sharpness ratio, {r['portrait']} (warp)", f">= {SHARPNESS_RATIO}", r["sharpness_ratio"]["p50"],
               r["sharpness_ratio"]["p50"] >= SHARPNESS_RATIO) for r in warp_rows
    ] + [
        Target(f"set-up, {name}", "< 1 s (models loaded)", seconds, seconds < 1.0) for name, seconds in setups.items()
    ]  # fmt: skip
    return Report(
        scenario=NAME,
        smoke=args.smoke,
        config={"seconds": args.seconds, "every": args.every, "portraits": args.portraits, "fps": FPS},
        setup=setup.as_dict(),
        results={"renderers": results, "setup_s": setups, "first_setup_cold_s": cold_s},
        headers=["portrait / renderer", "ms p50", "ms p95", "id p95", "found", "sharp", "lip r", "lag fr"],
        rows=rows,
        targets=targets,
        plot=lambda path: _plot(results, path),
    )


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    figure = new_figure(9, 4)
    cost, quality = figure.subplots(1, 2)
    labels = [f"{r['portrait']}\n{r['renderer']}" for r in results]
    cost.bar(labels, [r["cost_ms"]["p50"] for r in results], color="C0", label="p50")
    cost.set_ylabel("ms per frame (render + compose + I420)")
    measures: dict[str, Callable[[dict[str, Any]], float]] = {
        "identity p95": lambda r: r["identity_distance"]["p95"],
        "sharpness": lambda r: r["sharpness_ratio"]["p50"],
        "lip r": lambda r: r["lip_envelope_r"],
    }
    width = 0.8 / len(measures)
    for k, (title, value) in enumerate(measures.items()):
        quality.bar(np.arange(len(results)) + k * width, [value(r) for r in results], width, label=title)
    quality.set_xticks(np.arange(len(results)) + 0.4 - width / 2, labels)
    quality.legend()
    save(figure, path)
