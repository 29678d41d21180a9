"""Command line (`classifier`, or `python -m classifier`).

classifier predict [--model NAME] [--top-k K] [--json] [--quiet] [--save] [--recursive]
                   [--explain DIR] [--server URL [--token TOKEN]] FILE|DIR|- ...
classifier models [list] [--server URL [--token TOKEN]]
classifier models add NAME FILE [--labels FILE] [--preprocess SCALING] [--crop whole|centre]
classifier models remove NAME
classifier teach NAME DIR [--base MODEL]
classifier teach NAME --from-history [--model MODEL] [--since DATE] [--owner WHO] [--base MODEL]
classifier evaluate DIR --model NAME [--model NAME ...] [--json] [--no-save]
classifier evaluate --list
classifier history export (--owner WHO | --all) [--format csv|json] [--output FILE]
classifier history export --server URL [--token TOKEN] [--format csv|json] [--output FILE]
classifier history clear (--owner WHO | --all) --yes
classifier history people

WHO is the email someone signed in with, or their owner id as `history people` lists it.

A FILE is a picture; a DIR is searched for pictures (with --recursive, its folders too);
`-` reads one picture from standard input.

With --server (default: the CLASSIFIER_SERVER environment variable), `predict`, `models
[list]` and `history export` call that deployment's HTTP API instead of working on this
computer, sending an API token from --token or, better, CLASSIFIER_TOKEN. The pictures are
read here and classified there, and the answers print as they do here; `--save` saves on
the server, whose token decides whose history `history export` writes; `--explain` works
only on this computer. The other commands always act on this computer.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from classifier import images, models
from classifier.config import SettingsError, get_settings
from classifier.predict import MAX_TOP_K, Prediction, classify
from classifier.terminal import (
    STDIN,
    Preparation,
    answer_text,
    find_pictures,
    native_logs_kept_off,
    say_once,
    write_export,
)

if TYPE_CHECKING:  # imported where used: a plain `predict` never opens the history
    from classifier import history
    from classifier.jobs import pipeline

DEFAULT_TOP_K = 5


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a day such as 2024-03-01, received {value!r}"
        ) from None


def _top_k(value: str) -> int:
    k = int(value)
    if not 1 <= k <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_TOP_K:,}, received {k}")
    return k


SCALING_NAMES = tuple(models.SCALINGS)
# How much of a picture an added model sees (`upload.CROPS`), by the names people type.
CROP_NAMES = {"whole": models.WHOLE_PICTURE, "centre": images.CROP_FRACTION}

# Each command's --help ends with these (`tests/test_cli.py` checks that each one parses).
EXAMPLES = {
    "classifier": """\
  classifier predict photo.jpg          # the top 5 classes of a photo
  classifier models                     # the models available here, and yours
  classifier predict --help             # each command's options, with examples""",
    "predict": """\
  classifier predict photo.jpg other.png
  classifier predict --model efficientnet_lite0 --top-k 3 photo.jpg
  classifier predict --json --quiet holiday/ --recursive   # JSON on stdout, errors on stderr
  cat photo.jpg | classifier predict -  # a picture from standard input
  classifier predict --save --explain maps/ photo.jpg   # kept in the history, with its maps
  classifier predict --server https://YOUR-APP.streamlit.app photo.jpg""",
    "models": """\
  classifier models                     # what is available and cached here, and yours
  classifier models add "Desk things" converted_keras.zip   # a Teachable Machine export
  classifier models remove "Desk things"
  classifier models add Birds birds.tflite --labels birds.txt --preprocess zero_to_one
  classifier models add Flowers flowers.onnx --labels flowers.txt   # from torch.onnx.export""",
    "teach": """\
  classifier teach Mugs photos/         # photos/<class>/*.jpg: one folder per class
  classifier teach Mugs photos/ --base mobilenet_v3_small
  classifier teach Drinks --from-history --since 2024-03-01   # from the corrected predictions
  classifier predict --model Mugs photo.jpg""",
    "evaluate": """\
  classifier evaluate photos/ --model Mugs --model efficientnet_lite0
  classifier evaluate photos/ --model efficientnet_lite0 --json --no-save
  classifier evaluate --list""",
    "history": """\
  classifier history people             # who signed in: owner id, email, name, last seen
  classifier history export --owner alice@example.com --format json --output alice.json
  classifier history export --all --format csv --output everything.csv
  classifier history clear --owner alice@example.com --yes""",
}


def _with_examples(name: str) -> dict:
    """Return the keyword arguments giving a parser `name`'s examples after its options."""
    return {
        "epilog": f"examples:\n{EXAMPLES[name]}",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="classifier",
        description="Classify pictures with ImageNet networks, or with models of your own.",
        **_with_examples("classifier"),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser(
        "predict", help="print the top classes of each picture", **_with_examples("predict")
    )
    predict.add_argument(
        "files", nargs="+", metavar="FILE", help="a picture, a folder of pictures, or - (stdin)"
    )
    predict.add_argument(
        "--recursive", "-r", action="store_true", help="search folders' subfolders too"
    )
    predict.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help=f"{', '.join(models.MODELS)} or an added model; "
        f"default: {get_settings().default_model} (CLASSIFIER_MODEL), or with --server, "
        "the server's",
    )
    predict.add_argument("--top-k", type=_top_k, default=DEFAULT_TOP_K, metavar="K")
    predict.add_argument("--json", action="store_true", help="print one JSON list")
    predict.add_argument("--save", action="store_true", help="record the results in the history")
    predict.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no notes, no progress and no word of a model's first preparation on stderr "
        "(errors are still said)",
    )
    predict.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write where the model looked: one PNG per picture and class shown, into DIR "
        "(on this computer only)",
    )
    _remote_options(predict, "classify on this deployment (its HTTP API) instead of here")
    predict.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        default=None,
        metavar="ADDRESS",
        help="classify on a Ray cluster (ray://head:10001, head:6379 or auto; alone: a local "
        "Ray on this machine); default: CLASSIFIER_RAY_ADDRESS. Needs the ray extra",
    )
    predict.add_argument(
        "--output", type=Path, metavar="FILE", help="with --ray: write the rows to FILE"
    )
    predict.add_argument(
        "--format",
        choices=["csv", "json", "parquet"],
        default="csv",
        help="with --ray --output: the file's format (default: csv)",
    )

    models_parser = commands.add_parser(
        "models", help="list, add or remove models", **_with_examples("models")
    )
    _remote_options(models_parser, "list this deployment's models instead of this computer's")
    model_commands = models_parser.add_subparsers(dest="models_command", metavar="ACTION")
    listing = model_commands.add_parser("list", help="list the models and what is available here")
    _remote_options(listing, "list this deployment's models instead of this computer's", True)
    add = model_commands.add_parser(
        "add", help="add your own model: a Teachable Machine zip, .keras, .h5, .tflite or .onnx"
    )
    add.add_argument("name", metavar="NAME", help="the name it gets in the picker and history")
    add.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the model file (.tflite, .keras, .h5, or .onnx as torch.onnx.export writes it), "
        "or a zip of it and its labels.txt",
    )
    add.add_argument(
        "--labels", type=Path, metavar="FILE", help="class names, one per line or a JSON list"
    )
    add.add_argument(
        "--preprocess",
        choices=SCALING_NAMES,
        metavar="SCALING",
        help=f"how pixels are scaled: {', '.join(SCALING_NAMES)} "
        "(detected for Teachable Machine and quantized models; imagenet is assumed for "
        "ONNX models taking channels first, as PyTorch's do)",
    )
    add.add_argument(
        "--crop",
        choices=tuple(CROP_NAMES),
        help="what the model sees: the picture's centre square whole (Teachable Machine, "
        "Keras), or a centre crop of 87.5%% of the short side (torchvision, timm); by default "
        "centre for ONNX models taking channels first, whole otherwise",
    )
    remove = model_commands.add_parser("remove", help="remove an added model")
    remove.add_argument("name", metavar="NAME")

    teach = commands.add_parser(
        "teach",
        help="teach a model your own classes from a folder per class of photos",
        **_with_examples("teach"),
    )
    teach.add_argument(
        "name", metavar="NAME", help="the model's name (a taught model of this name is retrained)"
    )
    teach.add_argument(
        "folder",
        type=Path,
        nargs="?",
        metavar="DIR",
        help="one folder of photos per class, named by class (or --from-history)",
    )
    teach.add_argument(
        "--from-history",
        action="store_true",
        help="teach from the history instead: each corrected prediction's photo under the "
        "class it was corrected to, and those rated right under their answer when a "
        "correction names that class (everyone's, unless --owner)",
    )
    teach.add_argument(
        "--model",
        metavar="MODEL",
        help="with --from-history: only the predictions of this model (its name as saved)",
    )
    teach.add_argument(
        "--since",
        type=_day,
        metavar="DATE",
        help="with --from-history: only the predictions saved on or after this day "
        "(YYYY-MM-DD, UTC)",
    )
    teach.add_argument(
        "--owner",
        metavar="WHO",
        help="with --from-history: only one person's predictions (the email they signed in "
        "with, or their owner id)",
    )
    teach.add_argument(
        "--base",
        choices=tuple(models.MODELS),
        default="efficientnet_lite0",
        metavar="MODEL",
        help=f"the built-in network giving the features: {', '.join(models.MODELS)} "
        "(default: efficientnet_lite0)",
    )
    teach.set_defaults(usage_error=teach.error)

    evaluate = commands.add_parser(
        "evaluate",
        help="how right models are on a labelled set: a folder per class, or a labels.csv",
        usage="%(prog)s DIR --model NAME [--model NAME ...] [--json] [--no-save]\n"
        "       %(prog)s --list [--json]",
        **_with_examples("evaluate"),
    )
    evaluate.add_argument(
        "folder", type=Path, nargs="?", metavar="DIR",
        help="one folder of photos per class, named by class (or a labels.csv of file,label)",
    )  # fmt: skip
    evaluate.add_argument(
        "--model", action="append", default=[], metavar="NAME",
        help="a model to evaluate (again for each other one)",
    )  # fmt: skip
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    evaluate.add_argument(
        "--no-save", action="store_true", help="do not keep the evaluation in the history"
    )
    evaluate.add_argument("--list", action="store_true", help="list the evaluations kept")
    evaluate.set_defaults(usage_error=evaluate.error)

    past = commands.add_parser(
        "history", help="export or clear the prediction history", **_with_examples("history")
    )
    past_commands = past.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    export = past_commands.add_parser(
        "export",
        help="write one person's or every prediction",
        usage="%(prog)s (--owner WHO | --all) [--format {csv,json}] [--output FILE]\n"
        "       %(prog)s --server URL [--token TOKEN] [--format {csv,json}] [--output FILE]",
    )
    _whose(export, required=False)  # required without a server: checked in _deployment
    _remote_options(export, "export your predictions saved on this deployment (the token's)")
    export.set_defaults(usage_error=export.error)
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--output", type=Path, metavar="FILE", help="default: standard output")
    clear = past_commands.add_parser("clear", help="delete one person's or every prediction")
    _whose(clear)
    clear.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
    past_commands.add_parser("people", help="list who signed in to the app, most recent first")
    return parser


def _whose(command: argparse.ArgumentParser, required: bool = True) -> None:
    """Make a history command name whose predictions it acts on: one owner, or --all."""
    whose = command.add_mutually_exclusive_group(required=required)
    whose.add_argument(
        "--owner",
        metavar="WHO",
        help="one person's: the email they signed in with, or their owner id",
    )
    whose.add_argument("--all", action="store_true", help="everyone's, and those saved by nobody")


def _remote_options(command: argparse.ArgumentParser, what: str, again: bool = False) -> None:
    """Give a command --server and --token; `again` for a subcommand repeating its parent's
    (set only when typed there, so it never hides the parent's)."""
    default = argparse.SUPPRESS if again else None
    command.add_argument(
        "--server",
        metavar="URL",
        default=default,
        help=f"{what}, such as https://YOUR-APP.streamlit.app; default: CLASSIFIER_SERVER",
    )
    command.add_argument(
        "--token",
        metavar="TOKEN",
        default=default,
        help="an API token made on the app's API page (cls_...); default: CLASSIFIER_TOKEN, "
        "which keeps it out of your shell history",
    )


def _as_json(file: Path, prediction: Prediction, top_k: int) -> dict:
    entry = {
        "file": str(file),
        "model": prediction.model,
        "top_k": [
            {"label": c.label, "index": c.index, "probability": round(c.probability, 6)}
            for c in prediction.top(top_k)
        ],
    }
    if prediction.notice:
        entry["requested_model"] = prediction.requested_model
        entry["notice"] = prediction.notice
    return entry


def _as_text(file: Path, prediction: Prediction, top_k: int) -> str:
    ranked = [(c.probability, c.label) for c in prediction.top(top_k)]
    return answer_text(str(file), prediction.model_title, prediction.timings.inference_ms, ranked)


LOCAL_RAY = "local"  # `--ray` without an address


def _ray_address(args: argparse.Namespace) -> tuple[bool, str | None]:
    """Tell whether to classify on Ray, and at which address (None: a local Ray)."""
    if args.ray is not None:
        return True, None if args.ray == LOCAL_RAY else args.ray
    # As `ray_runner.address_from_environment`, without importing it for every `predict`.
    found = os.environ.get("CLASSIFIER_RAY_ADDRESS", "").strip() or None
    return found is not None, found


def _run_on_ray(args: argparse.Namespace, address: str | None) -> int:
    """Classify the files on Ray; print the answers (or write them to --output)."""
    from classifier.jobs import ray_runner

    if args.explain is not None or args.remote is not None:
        print("error: --ray goes without --explain and --server", file=sys.stderr)
        return 2
    try:
        result = ray_runner.run(
            args.model or get_settings().default_model,
            args.files,
            address=address,
            top_k=args.top_k,
            output=args.output,
            fmt=args.format,
            save=args.save,
            recursive=args.recursive,
        )
    except models.UnknownModel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ray_runner.RayRunError, models.ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if result.notice and not args.quiet:
        say_once(result.notice, models.writable_cache_dir())
    if args.output is None:
        _print_ray_rows(result, args.json)
    print(
        f"{result.classified} classified, {result.failed} failed on Ray ({result.workers} "
        f"workers, {result.seconds:.1f} s){f'; {result.saved} saved' if args.save else ''}",
        file=sys.stderr,
    )
    return 1 if result.failed or result.missing else 0


def _print_ray_rows(result, as_json: bool) -> None:
    entries = []
    for row in result.rows:
        if row["error"]:
            if as_json:
                entries.append({"file": row["file"], "error": row["error"]})
            else:
                print(f"{row['file']}: {row['error']}", file=sys.stderr)
            continue
        ranked = json.loads(row["top_k"]) if isinstance(row["top_k"], str) else row["top_k"]
        if as_json:
            entries.append({"file": row["file"], "model": result.model, "top_k": ranked})
        else:
            lines = [(c["probability"], c["label"]) for c in ranked]
            text = answer_text(row["file"], result.model_title, row["inference_ms"], lines)
            print(text, end="\n\n")
    if as_json:
        print(json.dumps(entries, indent=2))


def run_predict(args: argparse.Namespace) -> int:
    """Classify the files, several at once, and print the answers in their order; report
    bad files on stderr and keep going."""
    if args.remote is not None:
        from classifier import remote  # a deployment's API (httpx)

        return remote.run_predict(args, args.remote)
    on_ray, address = _ray_address(args)
    if on_ray:
        return _run_on_ray(args, address)
    if args.output is not None:
        print("error: --output goes with --ray (without, answers are printed)", file=sys.stderr)
        return 2
    saver = _Saver() if args.save else None  # a history that cannot be opened: said first
    try:
        choice = models.choose(args.model or get_settings().default_model)
        preparation = None if args.quiet else _first_preparation(choice)
        with preparation.step("building it") if preparation else contextlib.nullcontext():
            model = models.load(choice)
    except models.UnknownModel as exc:  # a usage error, like a mistyped option
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except models.ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if model.notice and not args.quiet:  # `classifier models` says it again
        say_once(model.notice, models.writable_cache_dir())

    if args.explain is not None:
        try:
            args.explain.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"error: --explain {args.explain}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    pictures, failed = find_pictures(args.files, args.recursive)
    entries: list[dict] = []
    try:
        failed += _classify_each(args, model, pictures, entries, saver)
    finally:  # also on Ctrl-C: what was printed is saved, and the count said
        if saver is not None:
            saver.close()
    if args.json:
        print(json.dumps(entries, indent=2))
    # A first-ever load's export: here, where Ctrl-C is handled.
    if preparation is None:
        models.wait_for_exports()
    else:
        with preparation.step("saving it for the next runs"):
            models.wait_for_exports()
        preparation.ready()
    return 1 if failed else 0


def _first_preparation(choice: models.Choice) -> Preparation | None:
    """Say that a built-in network is prepared for this machine, if it is its first run here
    (its engine file is made once, in about 20 s; then each run opens it at once)."""
    spec = choice.spec
    if spec.kind is not models.Kind.BUILTIN or not models.litert_available():
        return None
    if models.cached_engine_path(spec.name) is not None:
        return None
    return Preparation(spec.title)


def _classify_each(
    args: argparse.Namespace,
    model: models.LoadedModel,
    pictures: list[Path],
    entries: list[dict],
    saver: _Saver | None,
) -> int:
    """Classify the pictures, several at once (`classifier.jobs.pipeline`: each core reads,
    decodes and runs one, a few decoded at a time); print each answer in order, hand it to
    `saver`, and return how many failed. Standard input is read and classified here, in
    its turn."""
    from classifier.jobs import pipeline

    failed = 0
    taken: set[str] = set()  # maps' file names used in this run
    shown = len(pictures) > 1 and not (args.json or args.quiet) and sys.stderr.isatty()
    progress = _Progress(len(pictures)) if shown else None
    files = [file for file in pictures if file != STDIN]
    saving = saver is not None  # the history keeps a thumbnail and the file's digest
    outcomes = pipeline.classify_files(model, files, thumbnails=saving, digests=saving)
    try:
        for index, file in enumerate(pictures):
            outcome = _classify_stdin(index, model, saving) if file == STDIN else next(outcomes)
            failed += _report(args, model, outcome, entries, saver, taken, progress)
            if progress is not None:
                progress.update(index + 1)
    finally:  # also on Ctrl-C: the workers stop, and the bar goes before the last lines
        outcomes.close()
        if progress is not None:
            progress.clear()
    return failed


def _classify_stdin(index: int, model: models.LoadedModel, saving: bool) -> pipeline.Outcome:
    """Read one picture from standard input and classify it, as the pipeline does a file
    (with the digest and thumbnail the history keeps, when saving)."""
    from classifier.jobs import pipeline

    try:
        data = sys.stdin.buffer.read()
    except OSError as exc:
        message = f"cannot read the file ({exc.strerror or exc})"
        return pipeline.Outcome(index, STDIN, None, message, "", None)
    digest = images.content_digest(data) if saving else ""
    try:
        prediction = classify(data, model)
    except (images.ImageError, models.ModelError) as exc:
        return pipeline.Outcome(index, STDIN, None, str(exc), digest, None)
    made = images.make_thumbnail(prediction.image) if saving else None
    return pipeline.Outcome(index, STDIN, prediction, None, digest, made)


def _report(
    args: argparse.Namespace,
    model: models.LoadedModel,
    outcome: pipeline.Outcome,
    entries: list[dict],
    saver: _Saver | None,
    taken: set[str],
    progress: _Progress | None,
) -> int:
    """Print one picture's answer (or its error on stderr), write its maps, hand it to
    `saver`; return 1 if it failed (a map that could not be made counts), else 0."""
    file, prediction = outcome.path, outcome.prediction
    if prediction is None:
        if progress is not None:
            progress.clear()
        print(f"{file}: {outcome.error}", file=sys.stderr)
        if args.json:
            entries.append({"file": str(file), "error": outcome.error})
        return 1
    failed = 0
    overlay = None
    if args.explain is not None:
        if progress is not None:
            progress.clear()  # it may say on stderr that there is no map
        overlay = _write_maps(args.explain, file, prediction, model, args.top_k, taken)
        failed += overlay is None
    if saver is not None:  # before the answer is printed: a printed answer is kept
        name = "standard input" if file == STDIN else file.name
        record = saver.record(prediction, name, outcome.digest, args.top_k, outcome.thumbnail)
        saver.add(dataclasses.replace(record, overlay=overlay))
    if args.json:
        entries.append(_as_json(file, prediction, args.top_k))
    else:
        if progress is not None and sys.stdout.isatty():
            progress.clear()  # the same screen: the answer takes the bar's line
        print(_as_text(file, prediction, args.top_k), end="\n\n", flush=True)
    return failed


class _Progress:
    """A bar on stderr, redrawn in place with a carriage return: for a terminal only."""

    WIDTH = 30  # characters of the bar itself
    EVERY = 0.1  # seconds between redraws, unless the bar was cleared

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()
        self.drawn_at = -self.EVERY
        self.visible = False

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.visible and now - self.drawn_at < self.EVERY and done < self.total:
            return
        filled = self.WIDTH * done // self.total
        rate = done / max(now - self.started, 1e-9)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,}"
        line += f"  {rate:,.1f} pictures/s"
        sys.stderr.write("\r" + line[: _columns() - 1])
        sys.stderr.flush()
        self.drawn_at, self.visible = now, True

    def clear(self) -> None:
        """Blank the bar's line (before another line is written to the terminal)."""
        if self.visible:
            sys.stderr.write("\r" + " " * (_columns() - 1) + "\r")
            sys.stderr.flush()
            self.visible = False


def _columns() -> int:
    """Return the width of the terminal stderr writes to (80 if it cannot be had)."""
    try:
        return max(os.get_terminal_size(sys.stderr.fileno()).columns, 2)
    except (OSError, ValueError):
        return 80


MAX_STEM = 80  # characters of a picture's name kept in its maps' file names


def _write_maps(
    folder: Path, file: Path, prediction: Prediction, model, top_k: int, taken: set[str]
) -> bytes | None:
    """Write the overlay of each class shown as `<picture>-<rank>-<class>.png` (a picture
    named like an earlier one gets ` (2)`, ` (3)`, ...); return the top class's overlay as a
    history thumbnail, or None after saying on stderr why there is none."""
    from classifier import explain

    name = "stdin" if file == STDIN else file.name[:MAX_STEM]
    stem, number = name, 1
    while stem in taken:
        number += 1
        stem = f"{name} ({number})"
    taken.add(stem)
    try:
        found = explain.explain(model, prediction.model_input)
        thumbnail = None
        for rank, top in enumerate(prediction.top(top_k), start=1):
            slug = re.sub(r"[^\w]+", "-", top.label.casefold()).strip("-")[:60] or "class"
            picture = explain.overlay(prediction.model_input, found.map(top.index))
            picture.save(folder / f"{stem}-{rank}-{slug}.png")
            thumbnail = thumbnail or images.make_thumbnail(picture)
    except explain.ExplainError as exc:
        print(f"{file}: no map: {exc}", file=sys.stderr)
        return None
    except OSError as exc:
        print(f"{file}: cannot write its map ({exc.strerror or exc})", file=sys.stderr)
        return None
    return thumbnail


def _print_people(store: history.HistoryStore) -> None:
    """Print who signed in, one per line: owner id, email, name, last seen (tab-separated)."""
    from classifier.history import owners

    people = owners.everyone_known(store)
    if not people:
        print("nobody has signed in to the app with this database yet", file=sys.stderr)
    for person in people:
        seen = person.last_seen.isoformat(timespec="seconds")
        print("\t".join((person.owner, person.email or "-", person.name or "-", seen)))


@contextlib.contextmanager
def _ctrl_c_after():
    """Hold Ctrl-C back while the block runs (POSIX); it takes effect right after."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    block(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        block(signal.SIG_UNBLOCK, {signal.SIGINT})


class _Saver:
    """Record predictions in the configured history as they come, a few at a time, so an
    interrupted run keeps (and says) what it printed."""

    BATCH = 32
    SECONDS = 1.0

    def __init__(self) -> None:
        self.url = get_settings().history_url()  # a history that cannot be opened: say so now
        self.store: history.HistoryStore | None = None
        self.pending: list[history.NewRecord] = []
        self.saved = 0
        self.flushed_at = time.monotonic()

    @staticmethod
    def record(
        prediction: Prediction, name: str, digest: str, top_k: int, thumbnail: bytes | None
    ) -> history.NewRecord:
        """Return the history row of a prediction, with its thumbnail made already (the
        history, SQLAlchemy, imported now)."""
        from classifier import history

        record = history.NewRecord.from_prediction(
            prediction, name, digest, top_k, with_thumbnail=False, source="cli"
        )
        return dataclasses.replace(record, thumbnail=thumbnail)

    def add(self, record: history.NewRecord) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.BATCH or time.monotonic() - self.flushed_at > self.SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            if self.store is None:
                from classifier import history

                self.store = history.HistoryStore(self.url)
            with _ctrl_c_after():  # saved and counted whole, or not at all
                self.store.add_many(self.pending)
                self.saved += len(self.pending)
                self.pending = []
        self.flushed_at = time.monotonic()

    def close(self) -> None:
        """Save what is pending and say how many were saved."""
        try:
            self.flush()
        finally:
            if self.store is not None:
                self.store.dispose()
            if self.saved:
                print(f"saved {self.saved} prediction(s) to the history", file=sys.stderr)


def run_history(args: argparse.Namespace) -> int:
    """Export or clear one owner's or the whole history, or list who signed in."""
    if args.remote is not None:
        from classifier import remote

        return remote.run_export(args, args.remote)
    from classifier import history
    from classifier.history import owners

    if args.history_command == "clear" and not args.yes:
        whose = "every saved prediction" if args.all else "all of this person's predictions"
        print(f"error: clearing deletes {whose}; add --yes to confirm", file=sys.stderr)
        return 2
    url = get_settings().history_url()
    if args.history_command == "clear":
        store = history.HistoryStore(url)
    else:  # only reading: an existing SQLite file is opened read-only
        store = history.HistoryStore.open_readable(url, prefer_read_only=True)
    try:
        if args.history_command == "people":
            _print_people(store)
            return 0
        if not args.all:
            owner = owners.find_owner(store, args.owner)
            store = store.scoped(owners.Scope.own(owner))
        if args.history_command == "clear":
            print(f"deleted {store.clear()} prediction(s)", file=sys.stderr)
            return 0
        data = (
            store.export_csv(model_title=models.title_of)
            if args.format == "csv"
            else store.export_json()
        )
    finally:
        store.dispose()
    return write_export(data, args.output)


def run_models(args: argparse.Namespace) -> int:
    """List the models, or add or remove one."""
    if args.remote is not None:
        from classifier import remote

        return remote.run_models(args.remote)
    if args.models_command == "add":
        return run_models_add(args)
    if args.models_command == "remove":
        return run_models_remove(args)
    for spec in models.MODELS.values():
        status = models.weights_status(spec.name)
        cached = models.cached_engine_path(spec.name)
        weights = "available" if status.available else f"missing ({status.reason})"
        print(f"{spec.name}  {spec.title}")
        print(f"  input      {spec.input_size}x{spec.input_size}")
        print(f"  weights    {weights}")
        print(f"  source     {status.source}")
        print(f"  engine     {'cached: ' + str(cached) if cached else 'not built yet'}")
    for model in models.all_models():
        classes = model.class_names
        shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
        print(f"{model.name}  (added {model.entry.created_at:%Y-%m-%d %H:%M} UTC)")
        print(f"  source     {model.entry.source}")
        print(f"  input      {model.input_size}x{model.input_size}, {model.preprocessing}")
        print(f"  classes    {len(classes):,}: {shown}")
        print(f"  engine     {model.path()}")
    return 0


def run_models_add(args: argparse.Namespace) -> int:
    """Check, convert and keep a model file under a name."""
    try:
        name = models.check_new_name(args.name)
        data = args.file.read_bytes()
        labels = args.labels.read_bytes() if args.labels else None
        print(f"reading {args.file} ...", file=sys.stderr)
        candidate = models.read_model(data, labels)
        scaling_name = args.preprocess or candidate.detected_scaling
        if scaling_name is None:
            print(
                "error: this model does not say how it scales pixels; add --preprocess with "
                f"one of {', '.join(SCALING_NAMES)}",
                file=sys.stderr,
            )
            return 2
        crop = CROP_NAMES[args.crop] if args.crop else None  # None: what was detected
        model = models.save(name, candidate, scaling_name, crop=crop)
    except (models.ModelFileError, models.ModelNameTaken) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if candidate.details.get("size_assumed"):
        size = model.input_size
        print(
            f"note: this model takes pictures of any size; it is given {size}x{size} pictures",
            file=sys.stderr,
        )
    cropped = model.details.crop
    seen = "whole picture" if cropped == models.WHOLE_PICTURE else f"centre crop {cropped:.1%}"
    print(
        f"added {model.name}: {len(model.class_names):,} classes, "
        f"{model.input_size}x{model.input_size}, {model.scaling}, {seen}",
        file=sys.stderr,
    )
    return 0


def run_models_remove(args: argparse.Namespace) -> int:
    """Remove an added model; its predictions stay in the history."""
    if args.name in models.MODELS:
        print(f"error: {args.name} is a built-in model and cannot be removed", file=sys.stderr)
        return 1
    if not models.remove(args.name):
        print(f"error: no added model is called {args.name!r}", file=sys.stderr)
        return 1
    print(f"removed {args.name}", file=sys.stderr)
    return 0


def class_folders(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Return the photos of each class folder (every file but hidden ones, sorted), and the
    files found outside class folders."""
    if not folder.is_dir():
        raise OSError(2, "No such folder", str(folder))
    classes: dict[str, list[Path]] = {}
    loose: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            classes[child.name] = sorted(
                path
                for path in child.rglob("*")
                if path.is_file() and not path.name.startswith(".")
            )
        elif child.is_file():
            loose.append(child)
    return classes, loose


def _folder_photos(args: argparse.Namespace) -> tuple[tuple[str, ...], list, list]:
    """Return the classes of a folder per class, their photos (read in their turn), and the
    files skipped with why.

    Raises:
        TeachError: fewer than 2 classes, or a class name that cannot be one.
        OSError: no such folder.
    """
    from classifier import teach

    classes, loose = class_folders(args.folder)
    if loose:
        print(
            f"ignored {len(loose):,} file(s) directly in {args.folder}: "
            "put each class's photos in a folder named after the class",
            file=sys.stderr,
        )
    class_names = teach.check_classes(list(classes))
    limit = get_settings().max_bytes
    photos, skipped = [], []
    for label, files in zip(class_names, classes.values(), strict=True):
        for path in files:
            if path.stat().st_size > limit:
                skipped.append((str(path), f"larger than {images.size_text(limit)}"))
            else:
                photos.append(teach.Photo(str(path), path, label))  # read in its turn
    return class_names, photos, skipped


def _history_photos(args: argparse.Namespace) -> tuple[tuple[str, ...], list, list]:
    """Return the classes the corrected predictions in the history name (everyone's, or
    --owner's), their photos, and nothing skipped (`history.teaching` says what it leaves out).

    Raises:
        TeachError: nothing to teach from, or fewer than 2 classes.
        HistoryError: the history cannot be read, or --owner names nobody.
    """
    from classifier import history, teach
    from classifier.history import owners, teaching

    since = None if args.since is None else datetime.combine(args.since, datetime.min.time(), UTC)
    store = history.HistoryStore.open_readable(get_settings().history_url(), prefer_read_only=True)
    try:
        whose = store
        if args.owner is not None:
            whose = store.scoped(owners.Scope.own(owners.find_owner(store, args.owner)))
        gathered = teaching.labelled_photos(whose, model=args.model, since=since)
    finally:
        store.dispose()
    if not gathered.photos:
        if (said := gathered.nothing_to_teach()) is not None:
            raise teach.TeachError(said)
        which = "".join(
            (
                f" of {models.title_of(args.model)}" if args.model is not None else "",
                f" since {args.since.isoformat()}" if args.since is not None else "",
            )
        )
        raise teach.TeachError(
            f"No saved prediction{which} was corrected (rated wrong with the right class "
            "given), so there is nothing to teach from."
        )
    parts = [f"{gathered.corrected:,} corrected prediction(s)"]
    if gathered.rated_right:
        parts.append(f"{gathered.rated_right:,} rated right")
    small = (
        f" ({gathered.thumbnail_only:,} with only a thumbnail)" if gathered.thumbnail_only else ""
    )
    print(f"from the history: {' and '.join(parts)}{small}", file=sys.stderr)
    if gathered.without_picture:
        print(f"left out {gathered.without_picture:,} without a picture kept", file=sys.stderr)
    if gathered.left_out:
        print(
            f"left out {gathered.left_out:,} past the limit of "
            f"{get_settings().teach_max_photos:,} photos (the newest are taken)",
            file=sys.stderr,
        )
    classes = gathered.classes()
    for label, taken in list(classes.items()):  # one stray correction does not stop the rest
        if len(taken) < teach.MIN_PHOTOS and len(classes) > teach.MIN_CLASSES:
            print(
                f"left out the class “{label}”: {len(taken)} photo, and a class needs at "
                f"least {teach.MIN_PHOTOS}",
                file=sys.stderr,
            )
            del classes[label]
    if len(classes) < teach.MIN_CLASSES:
        (only,) = classes
        raise teach.TeachError(
            f"The corrected predictions name one class, “{only}”; teach at least "
            f"{teach.MIN_CLASSES}: correct predictions to another class too."
        )
    class_names = teach.check_classes(list(classes))
    photos = [
        teach.Photo(photo.name, photo.data, label)
        for label, taken in zip(class_names, classes.values(), strict=True)
        for photo in taken
    ]
    return class_names, photos, []


def run_teach(args: argparse.Namespace) -> int:
    """Teach (or retrain) a model from a folder per class, or from the corrected predictions
    in the history; print its cross-validated accuracy."""
    from classifier import teach

    if args.from_history == (args.folder is not None):
        args.usage_error("give a folder of photos per class, or --from-history")  # exits 2
    if not args.from_history and (args.model, args.since, args.owner) != (None, None, None):
        args.usage_error("--model, --since and --owner go with --from-history")
    try:
        name, retrained = teach.retraining(args.name)
        replace = retrained is not None
        teach.check_base(args.base)
        gather = _history_photos if args.from_history else _folder_photos
        class_names, photos, skipped = gather(args)
        title = models.title_of(args.base)
        print(f"reading {len(photos):,} photos with {title} ...", file=sys.stderr)
        examples = teach.embed(photos, args.base, progress=_progress_printer())
        for photo_name, why in [*skipped, *examples.unreadable]:
            print(f"skipped {photo_name}: {why}", file=sys.stderr)
        taught = teach.train(examples, class_names)
        model = teach.save(name, taught, replace=replace)
    except (
        teach.TeachError, models.ModelFileError, models.ModelNameTaken, models.ModelChanged
    ) as exc:  # fmt: skip
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = examples.counts()
    width = max(len(n) for n in class_names)
    print(
        f"cross-validated accuracy ({taught.folds} folds): {taught.accuracy:.1%} "
        f"over {len(examples.labels):,} photos"
    )
    for class_name, accuracy in taught.class_accuracy().items():
        print(f"  {class_name:<{width}}  {counts[class_name]:>5,} photos  {accuracy:6.1%}")
    verb = "retrained" if replace else "saved"
    print(f'{verb} {model.name}: classify with --model "{model.name}"', file=sys.stderr)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate models on a labelled folder and print the report; or list the evaluations."""
    from classifier import evaluation, history
    from classifier.evaluation import text

    if args.list:
        store = history.HistoryStore.open_readable(
            get_settings().history_url(), prefer_read_only=True
        )
        try:
            kept = evaluation.newest(store)
        finally:
            store.dispose()
        if args.json:
            print(json.dumps([e.as_dict(whole=False) for e in kept], indent=2))
        else:
            print(text.list_text(kept))
        return 0
    if args.folder is None or not args.model:
        args.usage_error("give a folder and at least one --model (or --list)")
    if len(set(args.model)) != len(args.model):
        args.usage_error("each --model once")
    try:
        labelled = evaluation.read_folder(args.folder)
        store = None if args.no_save else history.HistoryStore(get_settings().history_url())
        if not args.json:
            print(f"evaluating {', '.join(args.model)} on {len(labelled.photos):,} photos ...",
                  file=sys.stderr)  # fmt: skip
        done = evaluation.evaluate_folder(
            args.folder, labelled, args.model, store=store, empty=labelled.empty,
            progress=None if args.json else _progress_printer(),
        )  # fmt: skip
    except models.UnknownModel as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (evaluation.SetError, models.ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kept = [d.evaluation for d in done]
    if args.json:
        document = {"set": labelled.title, "models": [e.as_dict() for e in kept]}
        if len(kept) > 1:
            document["comparisons"] = [
                {"first": kept[0].model, "second": other.model,
                 **evaluation.mcnemar(kept[0].answers, other.answers)}
                for other in kept[1:]
            ]  # fmt: skip
        print(json.dumps(document, indent=2))
    else:
        print("\n\n".join(text.report_text(e) for e in kept))
        if len(kept) > 1:
            print()
            print(text.comparison_text(kept))
    if store is not None:
        print(f"kept: classifier evaluate --list (run {kept[0].run_id})", file=sys.stderr)
    models.wait_for_exports()
    return 0


def _progress_printer():
    """Return a progress callback printing every tenth of the way on stderr."""
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if tenth > shown[0]:
            shown[0] = tenth
            print(f"  {done:,}/{total:,}", file=sys.stderr)

    return progress


def _from_the_database(exc: Exception) -> bool:
    """Tell whether an error came from the history database (only if it was ever opened)."""
    if "classifier.history" not in sys.modules:
        return False
    from sqlalchemy.exc import SQLAlchemyError

    from classifier import history

    return isinstance(exc, history.HistoryError | SQLAlchemyError)


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    try:
        get_settings()
        models.default_model()  # CLASSIFIER_MODEL names a model this version has
    except SettingsError as exc:  # a mistyped environment variable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    from classifier import remote  # (httpx only when a command calls a server)

    try:
        args.remote = remote.deployment(args)
    except remote.Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models.quiet_native_logs()  # LiteRT's "Created TensorFlow Lite XNNPACK delegate" line
    # TensorFlow (imported when a model is first prepared) logs nothing below errors, and
    # the C++ log lines no setting silences are kept off the terminal. `terminal` stays the
    # terminal while TensorFlow's converter points stderr elsewhere: an interruption is said.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_logs_kept_off() as terminal:
        return _run(args, terminal)


def _run(args: argparse.Namespace, terminal: TextIO) -> int:
    """Run the command the arguments name; say on `terminal` what an interruption left."""
    from classifier import remote

    handlers = {
        "predict": run_predict,
        "models": run_models,
        "teach": run_teach,
        "history": run_history,
        "evaluate": run_evaluate,
    }
    try:
        return handlers[args.command](args)
    except SettingsError as exc:  # a secrets file that cannot name the history database
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except remote.Usage as exc:  # a --server address found unusable only when called
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except Exception as exc:
        if not _from_the_database(exc):
            raise
        # One line that never holds the database URL or its password, nor SQL; a
        # malformed URL exits 1 like an unreachable database (found only on first use).
        from classifier import history

        url = get_settings().database_url
        print(f"error: {history.public_message(exc, url=url, detail=True)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        abandoned = models.abandon_exports()
        for title in abandoned:
            print(f"interrupted: {title} will be prepared again next time", file=terminal)
        terminal.flush()
        if abandoned:  # their threads are still converting: exit without waiting for them
            sys.stdout.flush()
            sys.stderr.flush()
            models.sweep_abandoned()
            os._exit(130)
        return 130
