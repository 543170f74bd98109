"""``avatar corpus`` and ``avatar train``: the training commands, registered as an ``avatar`` plugin.

They live beside the training code and reach the ``avatar`` command through
the ``avatar.commands`` entry point group, so the serving engine never imports
training code (ARCHITECTURE.md's rule) yet users find every command in one place.
"""

import argparse
from pathlib import Path

from models.training.enroll_cli import add_eval_generator_parser, add_train_generator_parser

CORPUS_HELP = "generate the synthetic espeak speech-to-AU corpus"
TRAIN_HELP = "train a network (cause: speech -> AUs; generator: unpaired, on a real face data set)"
EVAL_HELP = "evaluate trained weights on held-out data (tables, JSON, plots)"


def add_corpus_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(name, help=CORPUS_HELP, description=CORPUS_HELP + " (deterministic given --seed).")
    parser.add_argument("-o", "--output", type=Path, required=True, help="empty folder for the shards and manifest")
    parser.add_argument("--utterances", type=int, default=2000, help="utterances, all splits together (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="fixes the content (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in the folder")
    parser.set_defaults(run=run_corpus)


def run_corpus(args: argparse.Namespace) -> int:
    from models.data.corpus import generate_corpus

    manifest = generate_corpus(
        args.output, n_utterances=args.utterances, seed=args.seed, workers=args.workers, overwrite=args.overwrite
    )
    counts = ", ".join(f"{split} {n}" for split, n in manifest["splits"].items())
    print(f"wrote {args.output}: {counts} utterances")
    return 0


def add_train_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(name, help=TRAIN_HELP, description=TRAIN_HELP)
    networks = parser.add_subparsers(dest="network", metavar="NETWORK", required=True)
    cause = networks.add_parser(
        "cause",
        help="train the CAUSE AU estimator on a corpus",
        description="Train CAUSE on the synthetic corpus (avatar corpus) with on-the-fly augmentation; "
        "evaluates on the held-out voices and texts every epoch, keeps the best, exports ONNX.",
    )
    source = cause.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", type=Path, help="synthetic corpus folder made by `avatar corpus`")
    source.add_argument(
        "--openface",
        type=Path,
        help="folder of recordings (wav, mp4, ...) each with a same-named OpenFace 2.x CSV; "
        "every 10th recording (sorted by name) is held out for evaluation",
    )
    cause.add_argument("-o", "--output", type=Path, required=True, help="folder for checkpoints, history and ONNX")
    cause.add_argument("--epochs", type=int, default=20, help="default 20")
    cause.add_argument("--steps-per-epoch", type=int, default=200, help="default 200")
    cause.add_argument("--batch-size", type=int, default=16, help="default 16")
    cause.add_argument("--segment-hops", type=int, default=300, help="crop length in 10 ms hops (default 300)")
    cause.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    cause.add_argument("--lookahead-hops", type=int, default=2, help="future hops the model may see (default 2)")
    cause.add_argument("--seed", type=int, default=0, help="default 0")
    cause.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    cause.add_argument("--no-augment", action="store_true", help="train on clean audio only")
    cause.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoint-last.pt")
    cause.add_argument(
        "--stop-after", type=int, metavar="EPOCHS", help="end this run after EPOCHS epochs (resume later)"
    )
    cause.add_argument("--no-progress", action="store_true", help="no progress bars")
    cause.set_defaults(run=run_train_cause)
    add_train_generator_parser(networks)


def run_train_cause(args: argparse.Namespace) -> int:
    from models.cause.net import CauseConfig
    from models.data.openface import find_pairs, load_openface_pair
    from models.training.cause_trainer import CauseTrainConfig, train_cause
    from models.training.corpus_items import corpus_items

    config = CauseTrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        segment_hops=args.segment_hops,
        lr=args.lr,
        seed=args.seed,
        augment=not args.no_augment,
        threads=args.threads,
        model=CauseConfig(lookahead_hops=args.lookahead_hops),
    )
    if args.corpus is not None:
        train_items = corpus_items(args.corpus, "train")
        heldout = {split: corpus_items(args.corpus, split) for split in ("heldout_voice", "heldout_text")}
    else:
        pairs = find_pairs(args.openface)
        items = [load_openface_pair(media, csv) for media, csv in pairs]
        train_items = [item for i, item in enumerate(items) if i % 10 != 9 or len(items) == 1]
        heldout = {"heldout_recordings": [item for i, item in enumerate(items) if i % 10 == 9]}
    history = train_cause(
        train_items,
        heldout,
        args.output,
        config,
        resume=args.resume,
        stop_after_epochs=args.stop_after,
        progress=not args.no_progress,
    )
    print(
        f"best held-out score (mean r over AU12 AU20 AU23 AU25 AU26): {history['best_score']:.3f}; "
        f"weights in {args.output}"
    )
    return 0


def add_eval_parser(commands: argparse._SubParsersAction, name: str) -> None:
    parser = commands.add_parser(name, help=EVAL_HELP, description=EVAL_HELP)
    networks = parser.add_subparsers(dest="network", metavar="NETWORK", required=True)
    cause = networks.add_parser(
        "cause",
        help="per-AU Pearson r and MAE on held-out voices and texts, speech-activity AUC, a track plot",
        description="Evaluate CAUSE on a corpus's held-out splits: per-AU r and MAE, the mean r over "
        "AU12 AU20 AU23 AU25 AU26, and the ROC AUC of the mouth opening (AU25+AU26) against an energy "
        "voice-activity detector. Prints a table; writes cause_eval.json and cause_tracks.png.",
    )
    cause.add_argument("--weights", type=Path, required=True, help="CAUSE checkpoint (e.g. OUTPUT/cause-best.pt)")
    cause.add_argument("--corpus", type=Path, required=True, help="corpus folder with held-out splits")
    cause.add_argument("-o", "--output", type=Path, default=Path("out/eval"), help="folder for JSON and PNG")
    cause.set_defaults(run=run_eval_cause)
    add_eval_generator_parser(networks)


def run_eval_cause(args: argparse.Namespace) -> int:
    from models.cause.io import load_cause
    from models.training.cause_report import cause_report, format_report
    from models.training.corpus_items import corpus_items

    heldout = {split: corpus_items(args.corpus, split) for split in ("heldout_voice", "heldout_text")}
    report = cause_report(load_cause(args.weights), heldout, args.output)
    print(format_report(report))
    print(f"wrote {args.output / 'cause_eval.json'} and {args.output / 'cause_tracks.png'}")
    return 0
