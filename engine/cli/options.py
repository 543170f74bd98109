"""Options shared by the subcommands that run the networks, and the loud untrained warning."""

import argparse
import sys
from pathlib import Path

from engine.au.liveness import LivenessSettings
from engine.avatar import FRAMINGS
from engine.backends import BACKENDS, DEFAULT_BACKEND, AUStepBackend, BackendOptions, GeneratorBackend, create_backends
from engine.backends.model_files import ModelSource, resolve_source
from engine.backends.selection import AUTO, OPENVINO, default_options, select_backend
from engine.errors import UsageError
from engine.output.destinations import DEFAULT_HOST, DEFAULT_PORTS, Destinations
from engine.output.forward import ForwardSettings
from engine.output.livelink import DEFAULT_SUBJECT
from engine.output.vmc import DEFAULT_SHAPE_SET, SHAPE_SETS
from engine.output.vtube_studio import DEFAULT_TOKEN_PATH
from engine.pipeline.renderer_choice import RENDERER_CHOICES

UNTRAINED_BANNER = """\
************************************************************************
*  WARNING: UNTRAINED WEIGHTS                                          *
*  No trained {what} weights were found, so random (seeded) weights    *
*  are used. The pipeline runs end to end, but the face will NOT move  *
*  with the speech and may look distorted. Give trained weights with   *
*  --generator / --cause, or train them (README.md, "Weights").      *
************************************************************************"""


def add_avatar_options(parser: argparse.ArgumentParser) -> None:
    """``--avatar`` and ``--face-box``: which portrait, for every subcommand that animates one."""
    parser.add_argument(
        "--avatar",
        type=Path,
        default=None,
        help="portrait image (PNG/JPEG, any size); default: the NASA astronaut portrait (public domain)",
    )
    parser.add_argument(
        "--face-box",
        metavar="X,Y,W,H",
        default=None,
        help="face rectangle in portrait pixels, to use when face detection fails or picks the wrong face",
    )
    parser.add_argument(
        "--framing",
        choices=FRAMINGS,
        default="portrait",
        help="what the video shows: the whole portrait, or a square (head) or 16:9 (head-wide) frame around the "
        "head with the face about half its height, cut from the photo at its own resolution (default: portrait)",
    )


def add_liveness_options(parser: argparse.ArgumentParser) -> None:
    """Blinks, smoothing, head motion and idle motion: each on by default, each with a switch."""
    d = LivenessSettings()
    group = parser.add_argument_group("liveness (what makes the face look alive besides the lips)")
    on_off = argparse.BooleanOptionalAction
    group.add_argument("--blink", action=on_off, default=d.blink, help="spontaneous blinks (default: on)")
    group.add_argument(
        "--blink-rate",
        type=float,
        default=d.blink_rate_per_min,
        metavar="PER_MIN",
        help="mean blinks a minute in a pause, 0..40; about half while speaking, plus a likely blink at "
        f"each phrase end (default: {d.blink_rate_per_min:g})",
    )
    group.add_argument(
        "--smoothing", action=on_off, default=d.smoothing, help="smooth the AU stream, adding at most 40 ms "
        "of lag to slow movements and less to fast ones (default: on)"
    )  # fmt: skip
    group.add_argument(
        "--head-motion", action=on_off, default=d.head_motion, help="nods and turns on stressed syllables, "
        "sway in silence (default: on)"
    )  # fmt: skip
    group.add_argument(
        "--head-motion-scale",
        type=float,
        default=d.head_motion_scale,
        metavar="X",
        help=f"multiplies head motion, 0..3; 1 nods about 2.5 degrees (default: {d.head_motion_scale:g})",
    )
    group.add_argument("--idle", action=on_off, default=d.idle, help="small brow and lid movements (default: on)")
    group.add_argument("--still", action="store_true", help="switch all of the above off: the AUs exactly as estimated")
    group.add_argument("--liveness-seed", type=int, default=d.seed, metavar="N", help="random stream (default: 0)")


def liveness_settings(args: argparse.Namespace) -> LivenessSettings:
    """The LivenessSettings the liveness flags describe; ValueError (naming the flag) for values out of range."""
    for flag, value, highest in (
        ("--blink-rate", args.blink_rate, 40.0),
        ("--head-motion-scale", args.head_motion_scale, 3.0),
    ):
        if not 0.0 <= value <= highest:
            raise UsageError(f"{flag} must be in 0..{highest:g}, got {value:g}")
    if args.liveness_seed < 0:
        raise UsageError(f"--liveness-seed must be >= 0, got {args.liveness_seed}")
    if args.still:
        return LivenessSettings.off()
    return LivenessSettings(
        blink=args.blink,
        blink_rate_per_min=args.blink_rate,
        smoothing=args.smoothing,
        head_motion=args.head_motion,
        head_motion_scale=args.head_motion_scale,
        idle=args.idle,
        seed=args.liveness_seed,
    )


def add_forward_options(parser: argparse.ArgumentParser, *, per_session: bool) -> None:
    """``--vmc``, ``--vts``, ``--livelink`` and their settings: the avatar apps frames may be forwarded to.

    per_session: the destinations are offered to sessions, which pick among them by name (``avatar
    serve``); else every frame goes to every one (a program with one speaker).
    """
    if per_session:
        what = (
            "Avatar apps sessions may forward their face to: a WebSocket client asks in its hello "
            '("forward": {"vmc": "NAME"}), a WebRTC client in a "forward" control message. Each destination '
            "serves one session at a time; "
            "clients pick by NAME (default: 'default') and never name an address."
        )
    else:
        what = "Avatar apps every frame is also sent to, as it is ready."
    group = parser.add_argument_group(
        "avatar apps (VMC, VTube Studio, Live Link)",
        f"{what} Repeatable. HOST[:PORT] alone means NAME 'default'; the flag alone, {DEFAULT_HOST} at the usual port.",
    )

    def destination(flag: str, kind: str, apps: str) -> None:
        group.add_argument(
            flag,
            action="append",
            nargs="?",
            const=DEFAULT_HOST,
            default=[],
            metavar="[NAME=]HOST[:PORT]",
            help=f"{apps} (port default {DEFAULT_PORTS[kind]})",
        )

    destination("--vmc", "vmc", "a VMC protocol receiver, OSC over UDP: VSeeFace, Warudo, VNyan, VMC4UE (apps extra)")
    group.add_argument(
        "--vmc-shapes",
        choices=SHAPE_SETS,
        default=DEFAULT_SHAPE_SET,
        help="VMC shape names: VRM 1.0 presets (aa ih ou ee oh...), VRM 0.x (A I U E O...) or the 52 ARKit names for "
        f"perfect-sync avatars (default: {DEFAULT_SHAPE_SET})",
    )
    destination("--vts", "vts", "VTube Studio's plugin API, a WebSocket (ws:// optional)")
    group.add_argument(
        "--vts-token",
        type=Path,
        default=DEFAULT_TOKEN_PATH,
        metavar="PATH",
        help=f"where VTube Studio's plugin token is kept (default: {DEFAULT_TOKEN_PATH})",
    )
    destination("--livelink", "livelink", "Unreal Engine's Live Link, as Live Link Face packets over UDP")
    group.add_argument(
        "--livelink-subject",
        default=DEFAULT_SUBJECT,
        metavar="NAME",
        help=f"the Live Link subject name Unreal shows (default: {DEFAULT_SUBJECT})",
    )


def forward_settings(args: argparse.Namespace) -> ForwardSettings:
    """The ForwardSettings the avatar-app flags describe; UsageError for a malformed destination, a missing
    package (naming the extra) or an empty subject name."""
    if not args.livelink_subject:
        raise UsageError("--livelink-subject must not be empty")
    destinations = Destinations.from_entries({"vmc": args.vmc, "vts": args.vts, "livelink": args.livelink})
    settings = ForwardSettings(
        destinations=destinations,
        vmc_shapes=args.vmc_shapes,
        livelink_subject=args.livelink_subject,
        vts_token_path=args.vts_token,
    )
    settings.check_packages()
    return settings


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("models and runtime")
    group.add_argument(
        "--renderer",
        choices=RENDERER_CHOICES,
        default="auto",
        help="what draws the face: ganimation (the generator), warp (the photo's own landmarks moved, no training, "
        "any photo) or auto: the generator only where it fits the face (person-agnostic, or enrolled on this "
        "portrait with absolute AUs), else warp; the choice and its reason are printed (default: auto)",
    )
    group.add_argument(
        "--backend",
        choices=[AUTO, *sorted(BACKENDS)],
        default=AUTO,
        help=f"runtime for the networks (openvino runs CAUSE on onnxruntime); {AUTO} picks tensorrt where a "
        "CUDA GPU and the gpu extra are "
        f"present, else {DEFAULT_BACKEND} (the fastest measured on CPU) (default: {AUTO})",
    )
    group.add_argument(
        "--precision",
        choices=("f32", "bf16", "int8", "f16"),
        default=None,
        help="generator arithmetic; bf16 needs --backend openvino and a CPU with bfloat16, int8 needs openvino "
        "and the quantized generator (avatar quantize), f16 needs tensorrt "
        "(default: f16 on tensorrt, bf16 on openvino where the CPU has it, else f32)",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per generator run (default: 1 on openvino when serving, else every core)",
    )
    group.add_argument(
        "--streams",
        type=int,
        default=None,
        help="generator runs at once, each on its own thread, to serve many sessions (openvino only; "
        "default: cores / --threads on openvino, else 1)",
    )
    add_weight_options(group)


def add_weight_options(group: argparse._ArgumentGroup) -> None:
    """``--generator`` and ``--cause``: which weights, for every subcommand that loads the networks."""
    group.add_argument(
        "--generator",
        metavar="PATH",
        help="GANimation generator: .onnx, or a checkpoint in the reference (net_epoch_*_id_G.pth), "
        "ganimation_replicate (*_net_gen.pth) or our own format (default: models/weights/)",
    )
    group.add_argument(
        "--cause",
        metavar="PATH",
        help="CAUSE AU estimator: .onnx step graph or our checkpoint (default: models/weights/)",
    )


def model_sources(args: argparse.Namespace) -> tuple[ModelSource, ModelSource]:
    return resolve_source("generator", args.generator), resolve_source("cause", args.cause)


def announce_weights(*sources: ModelSource) -> None:
    """Say on stderr which weights run, and shout if any are untrained."""
    print("weights: " + "; ".join(source.describe() for source in sources), file=sys.stderr)
    untrained = [s.kind for s in sources if not s.trained]
    if untrained:
        print(UNTRAINED_BANNER.format(what=" and ".join(untrained).ljust(19)), file=sys.stderr)


def runtime_options(args: argparse.Namespace, *, serving: bool = True) -> tuple[str, BackendOptions]:
    """The backend ``--backend`` resolves to and its options, both said on stderr.

    ``serving``: defaults for many sessions at once (``avatar serve``), else
    for one stream of frames (``avatar render``); see ``default_options``.
    The generator's weights are looked at only where they decide the default
    precision (OpenVINO: int8 where they have an int8 build).
    """
    for flag, value in (("--threads", args.threads), ("--streams", args.streams)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    choice = select_backend(args.backend)
    print(choice.describe(), file=sys.stderr)
    generator = resolve_source("generator", args.generator) if choice.name == OPENVINO and not args.precision else None
    options = default_options(
        choice.name,
        threads=args.threads,
        streams=args.streams,
        precision=args.precision,
        serving=serving,
        generator=generator,
    )
    print(options.describe(), file=sys.stderr)
    return choice.name, options


def build_backends(args: argparse.Namespace, *, serving: bool = True) -> tuple[GeneratorBackend, AUStepBackend]:
    """The runtimes the options ask for, after announcing which weights they run."""
    generator, cause = model_sources(args)
    announce_weights(generator, cause)
    backend, options = runtime_options(args, serving=serving)
    return create_backends(backend, generator, cause, options)
