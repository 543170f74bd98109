"""The generator commands: ``avatar enroll``, ``avatar eval generator`` and ``avatar train generator``.

``enroll`` and ``eval`` reach the ``avatar`` command through the
``avatar.commands`` entry point group, like ``models.training.cli``, so the
serving engine never imports training code; ``train generator`` is a
subcommand of ``avatar train`` added by :func:`add_train_generator_parser`.
Heavy imports (torch, dlib) happen when a command runs, not when ``avatar``
builds its parser.
"""

import argparse
import json
from pathlib import Path

ENROLL_HELP = "train a generator for one portrait on its synthesized expressions"
ENROLL_DEFAULTS = {
    "width": 16,
    "repeat_num": 6,
    "steps": 400,
    "batch_size": 8,
    "lr": 1e-3,
    "seed": 0,
    "threads": 2,
    "precision": "auto",
    "eval_every": 100,
    "heldout": 64,
    "init": "default",
    "target_psnr_db": 40.0,
}
"""EnrollConfig's defaults, repeated here so that building the parser imports no torch (a test holds them equal)."""
UNPAIRED_DEFAULTS = {
    "epochs": 30,
    "decay_epochs": 10,
    "batch_size": 4,
    "width": 32,
    "repeat_num": 6,
    "seed": 0,
    "threads": 2,
}
"""UnpairedConfig's defaults, likewise."""


def _add_portrait_options(parser: argparse.ArgumentParser, *, positional: bool) -> None:
    help_text = "portrait image (PNG/JPEG); default: the NASA astronaut portrait"
    if positional:
        parser.add_argument("portrait", nargs="?", type=Path, default=None, help=help_text)
    else:
        parser.add_argument("--avatar", dest="portrait", type=Path, default=None, help=help_text)
    parser.add_argument(
        "--face-box", metavar="X,Y,W,H", default=None, help="face rectangle in portrait pixels, when detection fails"
    )


def add_enroll_parser(commands: argparse._SubParsersAction, name: str) -> None:
    d = ENROLL_DEFAULTS
    parser = commands.add_parser(
        name,
        help=ENROLL_HELP,
        description=ENROLL_HELP.capitalize() + ": the portrait is cropped as the engine crops it, an AU-driven "
        "warp renders it with random expressions, and a GANimation generator learns to reproduce them from the "
        "photo and the AUs, starting from weights enrolled on the default avatar (--init). It stops at --target-psnr "
        "or after --steps, checkpoints every minute and on Ctrl-C (--resume continues), and never replaces a "
        "finished run without --overwrite. Deterministic given --seed. Writes generator.pth, generator.onnx, "
        "eval.json, grid.png and history.json to the output folder.",
    )
    _add_portrait_options(parser, positional=True)
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for checkpoints and results")
    parser.add_argument("--width", type=int, default=d["width"], help="generator conv_dim (default %(default)s)")
    parser.add_argument("--repeat-num", type=int, default=d["repeat_num"], help="residual blocks (default %(default)s)")
    parser.add_argument(
        "--init",
        default=d["init"],
        metavar="default|none|PATH",
        help="weights to start from: 'default' (models/weights/enroll_base.pth, width 16, 6 blocks), "
        "'none' (random: the slow cold start) or a generator checkpoint (default %(default)s)",
    )
    parser.add_argument(
        "--target-psnr",
        type=float,
        default=d["target_psnr_db"],
        metavar="DB",
        help="stop once the held-out PSNR against the synthesizer reaches this many dB; 0 runs all --steps "
        "(default %(default)s: the full cold run of the default generator reached 40.6)",
    )
    parser.add_argument("--steps", type=int, default=d["steps"], help="most generator steps (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="default %(default)s")
    parser.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate (default %(default)s)")
    parser.add_argument("--seed", type=int, default=d["seed"], help="default %(default)s")
    parser.add_argument("--threads", type=int, default=d["threads"], help="torch CPU threads (default %(default)s)")
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default=d["precision"],
        help="training arithmetic: bf16 (autocast; about 1.8x faster on CPUs with AVX512-BF16 or AMX), fp32, or "
        "auto: bf16 where the CPU has it (default %(default)s)",
    )
    parser.add_argument(
        "--eval-every", type=int, default=d["eval_every"], help="steps between held-out checks (default %(default)s)"
    )
    parser.add_argument("--heldout", type=int, default=d["heldout"], help="held-out AU vectors (default %(default)s)")
    parser.add_argument("--adversarial", action="store_true", help="add the reference WGAN-GP critic (slower)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint-last.pt")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh even if OUTPUT holds a finished or unfinished run"
    )
    parser.add_argument("--stop-after", type=int, metavar="STEPS", help="end this run after STEPS steps (resume later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_enroll)


def run_enroll(args: argparse.Namespace) -> int:
    from engine.avatar import load_avatar, parse_face_box
    from models.ganimation.net import GeneratorConfig
    from models.training.enroll_data import Enrollment
    from models.training.generator_eval import format_table
    from models.training.generator_trainer import EnrollConfig, train_enrollment

    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    config = EnrollConfig(
        steps=args.steps,
        init=None if args.init == "none" else args.init,
        target_psnr_db=args.target_psnr or None,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        threads=args.threads,
        precision=args.precision,
        eval_every=args.eval_every,
        heldout_size=args.heldout,
        adversarial=args.adversarial,
        model=GeneratorConfig(conv_dim=args.width, repeat_num=args.repeat_num),
    )
    avatar = load_avatar(args.portrait, parse_face_box(args.face_box) if args.face_box else None)
    history = train_enrollment(
        Enrollment.from_avatar(avatar),
        args.output,
        config,
        resume=args.resume,
        overwrite=args.overwrite,
        stop_after_steps=args.stop_after,
        progress=not args.no_progress,
    )
    last = history["log"][-1] if history["log"] else None
    if "eval" not in history:
        where = f"step {last['step']}, held-out PSNR {last['heldout_psnr_db']:.2f} dB; " if last else ""
        print(f"stopped at {where}continue with --resume")
        return 130 if history.get("interrupted") else 0
    print(format_table(history["eval"]))
    why = "reached the target PSNR" if history.get("reached_target") else "all steps done"
    print(
        f"{history['steps_done']} steps ({why}) in {history['elapsed_s'] / 60:.1f} min "
        f"({history['step_s']:.3f} s a step, {history['eval_s']:.1f} s a held-out check); results in {args.output}"
    )
    return 0


def add_eval_generator_parser(networks: argparse._SubParsersAction) -> None:
    """``avatar eval generator`` (the ``eval`` command itself lives in models/training/cli.py)."""
    generator = networks.add_parser(
        "generator",
        help="PSNR, SSIM, mouth and eye error, face detection against the expression synthesizer",
        description="Score a generator checkpoint (any format models.ganimation.io reads) against the expression "
        "synthesizer's renders of the portrait, on held-out AU vectors (the set `avatar enroll` evaluates on "
        "for the same --seed); print a table, write eval.json and grid.png.",
    )
    generator.add_argument("--weights", type=Path, required=True, help="generator checkpoint (.pth)")
    _add_portrait_options(generator, positional=False)
    generator.add_argument(
        "-o", "--output", type=Path, help="folder for eval.json and grid.png (default: the folder of --weights)"
    )
    generator.add_argument("--heldout", type=int, default=64, help="held-out AU vectors (default 64)")
    generator.add_argument("--seed", type=int, default=0, help="picks the held-out vectors (default 0, as enroll)")
    generator.set_defaults(run=run_eval_generator)


def run_eval_generator(args: argparse.Namespace) -> int:
    from PIL import Image

    from engine.avatar import load_avatar, parse_face_box
    from models.ganimation.io import load_generator
    from models.training.enroll_data import Enrollment, heldout_aus
    from models.training.generator_eval import evaluate_generator, expression_grid, format_table

    generator, config, _ = load_generator(args.weights)
    enrollment = Enrollment.from_avatar(
        load_avatar(args.portrait, parse_face_box(args.face_box) if args.face_box else None)
    )
    metrics = evaluate_generator(generator, enrollment, heldout_aus(args.seed, args.heldout))
    out = args.output if args.output is not None else args.weights.parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps({"weights": str(args.weights), **metrics}, indent=2))
    Image.fromarray(expression_grid(generator, enrollment)).save(out / "grid.png")
    print(f"generator: width {config.conv_dim}, {config.repeat_num} residual blocks")
    print(format_table(metrics))
    print(f"wrote {out / 'eval.json'} and {out / 'grid.png'}")
    return 0


def add_train_generator_parser(networks: argparse._SubParsersAction) -> None:
    """``avatar train generator``; call it from ``avatar train``'s parser with that parser's subparsers."""
    d = UNPAIRED_DEFAULTS
    parser = networks.add_parser(
        "generator",
        help="train a GANimation generator on a face data set (reference, unpaired)",
        description="The reference GANimation training on real faces with OpenFace AUs: --images is a folder "
        "of square face crops (resized to 128x128); --aus is a folder of per-image OpenFace CSVs named like the "
        "images (FaceLandmarkImg output) or one CSV with a 'file' column; both need AU01_r..AU45_r.",
    )
    parser.add_argument("--images", type=Path, required=True, help="folder of face crops")
    parser.add_argument(
        "--aus", type=Path, required=True, help="folder of per-image OpenFace CSVs, or one CSV with a 'file' column"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for checkpoints, history and weights")
    parser.add_argument("--epochs", type=int, default=d["epochs"], help="default %(default)s")
    parser.add_argument(
        "--decay-epochs", type=int, default=d["decay_epochs"], help="final epochs of falling rate (default %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=d["batch_size"], help="default %(default)s")
    parser.add_argument("--width", type=int, default=d["width"], help="generator conv_dim (default %(default)s)")
    parser.add_argument("--repeat-num", type=int, default=d["repeat_num"], help="residual blocks (default %(default)s)")
    parser.add_argument("--seed", type=int, default=d["seed"], help="default %(default)s")
    parser.add_argument("--threads", type=int, default=d["threads"], help="torch CPU threads (default %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint-last.pt")
    parser.add_argument("--stop-after", type=int, metavar="EPOCHS", help="end this run after EPOCHS (resume later)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_train_generator)


def run_train_generator(args: argparse.Namespace) -> int:
    from models.ganimation.net import GeneratorConfig
    from models.training.face_au_data import FaceAuData
    from models.training.unpaired_trainer import UnpairedConfig, train_unpaired

    config = UnpairedConfig(
        epochs=args.epochs,
        decay_epochs=args.decay_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=args.threads,
        model=GeneratorConfig(conv_dim=args.width, repeat_num=args.repeat_num),
    )
    data = FaceAuData.load(args.images, args.aus)
    history = train_unpaired(
        data, args.output, config, resume=args.resume, stop_after_epochs=args.stop_after, progress=not args.no_progress
    )
    done = len(history["epochs"])
    print(
        f"{done}/{config.epochs} epochs on {len(data)} images; "
        + (f"weights in {args.output}" if done == config.epochs else "continue with --resume")
    )
    return 0
