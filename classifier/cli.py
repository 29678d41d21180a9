"""Command line: `python -m classifier predict | models`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from classifier import engine, zoo
from classifier.config import get_settings
from classifier.predict import DEFAULT_TOP_K, Prediction, classify_many, get_model


def _top_k(value: str) -> int:
    k = int(value)
    if not 1 <= k <= 1000:
        raise argparse.ArgumentTypeError(f"expected 1 to 1000, received {k}")
    return k


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m classifier", description="Classify pictures with ImageNet networks."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="print the top classes of each picture")
    predict.add_argument("files", nargs="+", type=Path, metavar="FILE")
    predict.add_argument(
        "--model",
        choices=list(zoo.MODELS),
        default=None,
        help=f"default: {get_settings().default_model}",
    )
    predict.add_argument("--top-k", type=_top_k, default=DEFAULT_TOP_K, metavar="K")
    predict.add_argument("--json", action="store_true", help="print one JSON list")

    commands.add_parser("models", help="list the models and what is available here")
    return parser


def _as_json(file: Path, prediction: Prediction) -> dict:
    entry = {
        "file": str(file),
        "model": prediction.model,
        "top_k": [
            {"label": c.label, "index": c.index, "probability": round(c.probability, 6)}
            for c in prediction.top_k
        ],
    }
    if prediction.notice:
        entry["requested_model"] = prediction.requested_model
        entry["notice"] = prediction.notice
    return entry


def _as_text(file: Path, prediction: Prediction) -> str:
    lines = [
        f"{file}  ({prediction.model_title}, {prediction.timings.inference_ms:.1f} ms inference)"
    ]
    lines += [f"  {c.probability:7.2%}  {c.label}" for c in prediction.top_k]
    return "\n".join(lines)


def run_predict(args: argparse.Namespace) -> int:
    """Classify each file; report bad files on stderr and keep going."""
    try:
        model = get_model(args.model)
    except zoo.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if model.notice:
        print(f"note: {model.notice}", file=sys.stderr)

    outcomes: list[Prediction | str] = [""] * len(args.files)
    contents, slots = [], []
    for slot, file in enumerate(args.files):
        try:
            contents.append(file.read_bytes())
            slots.append(slot)
        except OSError as exc:
            outcomes[slot] = f"cannot read the file ({exc.strerror or exc})"
    for slot, result in zip(slots, classify_many(contents, model, args.top_k), strict=True):
        outcomes[slot] = result if isinstance(result, Prediction) else str(result)

    output, failed = [], 0
    for file, outcome in zip(args.files, outcomes, strict=True):
        if isinstance(outcome, Prediction):
            output.append(_as_json(file, outcome) if args.json else _as_text(file, outcome))
            continue
        failed += 1
        print(f"{file}: {outcome}", file=sys.stderr)
        if args.json:
            output.append({"file": str(file), "error": outcome})
    if args.json:
        print(json.dumps(output, indent=2))
    else:
        print("\n\n".join(output))
    return 1 if failed else 0


def run_models(_args: argparse.Namespace) -> int:
    """Print every model with its input size, weights and engine cache state."""
    for spec in zoo.MODELS.values():
        status = zoo.weights_status(spec.name)
        cached = engine.cached_engine_path(spec.name)
        weights = "available" if status.available else f"missing ({status.reason})"
        print(f"{spec.name}  {spec.title}")
        print(f"  input      {spec.input_size}x{spec.input_size}")
        print(f"  weights    {weights}")
        print(f"  source     {status.source}")
        print(f"  engine     {'cached: ' + str(cached) if cached else 'not built yet'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"predict": run_predict, "models": run_models}
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
