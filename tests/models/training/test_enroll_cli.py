"""``avatar enroll``, ``avatar eval generator`` and ``avatar train generator``: parsers, defaults, a tiny run."""

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from models.training import cli as training_cli
from models.training import enroll_cli
from models.training.generator_trainer import EnrollConfig
from models.training.unpaired_trainer import UnpairedConfig


def build_parser() -> argparse.ArgumentParser:
    """The commands wired as ``avatar`` wires its plugins (and ``avatar train`` its networks)."""
    parser = argparse.ArgumentParser(prog="avatar")
    commands = parser.add_subparsers(dest="command", required=True)
    enroll_cli.add_enroll_parser(commands, "enroll")
    training_cli.add_eval_parser(commands, "eval")
    training_cli.add_train_parser(commands, "train")
    return parser


def test_parser_defaults_are_the_configs_defaults() -> None:
    enroll, unpaired = EnrollConfig(), UnpairedConfig()
    expected = dataclasses.asdict(enroll) | {
        "width": enroll.model.conv_dim, "repeat_num": enroll.model.repeat_num, "heldout": enroll.heldout_size
    }  # fmt: skip
    assert enroll_cli.ENROLL_DEFAULTS == {name: expected[name] for name in enroll_cli.ENROLL_DEFAULTS}
    model = unpaired.model
    expected = dataclasses.asdict(unpaired) | {"width": model.conv_dim, "repeat_num": model.repeat_num}
    assert enroll_cli.UNPAIRED_DEFAULTS == {name: expected[name] for name in enroll_cli.UNPAIRED_DEFAULTS}


def test_building_the_parser_imports_no_torch() -> None:
    # A fresh interpreter: in this one, torch is already loaded by the imports above.
    code = (
        "import argparse, sys; from models.training import cli, enroll_cli; "
        "p = argparse.ArgumentParser(); c = p.add_subparsers(); "
        "enroll_cli.add_enroll_parser(c, 'enroll'); cli.add_eval_parser(c, 'eval'); "
        "cli.add_train_parser(c, 'train'); print('torch' in sys.modules)"
    )
    repository = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repository)
    assert result.stdout.strip() == "False"


def test_enroll_takes_an_optional_portrait() -> None:
    args = build_parser().parse_args(["enroll", "-o", "out"])
    assert args.portrait is None and args.face_box is None and not args.adversarial
    args = build_parser().parse_args(["enroll", "me.jpg", "-o", "out", "--face-box", "1,2,3,4", "--adversarial"])
    assert args.portrait == Path("me.jpg") and args.face_box == "1,2,3,4" and args.adversarial


def test_train_generator_needs_images_and_aus() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "generator", "-o", "out"])
    args = build_parser().parse_args(["train", "generator", "--images", "i", "--aus", "a.csv", "-o", "out"])
    assert args.epochs == 30 and args.run is enroll_cli.run_train_generator


@pytest.mark.slow
def test_enroll_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args([
        "enroll", "-o", str(tmp_path / "enrolled"), "--width", "8", "--repeat-num", "1", "--steps", "4",
        "--batch-size", "2", "--eval-every", "2", "--heldout", "3", "--threads", "1", "--no-progress", "--init", "none",
    ])  # fmt: skip
    assert args.run(args) == 0
    assert "PSNR, all held-out (dB)" in capsys.readouterr().out

    args = parser.parse_args([
        "eval", "generator", "--weights", str(tmp_path / "enrolled" / "generator.pth"), "--heldout", "3",
        "-o", str(tmp_path / "evaluated"),
    ])  # fmt: skip
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert "PSNR, all held-out (dB)" in out and "width 8" in out
    metrics = json.loads((tmp_path / "evaluated" / "eval.json").read_text())
    enrolled = json.loads((tmp_path / "enrolled" / "eval.json").read_text())
    assert metrics["psnr_db"] == pytest.approx(enrolled["psnr_db"])  # same held-out set for the same seed
    assert (tmp_path / "evaluated" / "grid.png").is_file()
