"""An evaluation as the command line prints it: the report, the confusion matrix, the
likely label errors, and for two models their comparison."""

from __future__ import annotations

from collections.abc import Sequence

from classifier.evaluation.kept import Evaluation
from classifier.evaluation.metrics import mcnemar

MAX_COLUMN = 16  # a class's name in the matrix's header, at most ("(another class)" fits)
SHOWN = 10  # mistakes and label errors listed


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def report_text(evaluation: Evaluation) -> str:
    """Return one model's evaluation as lines of text."""
    report, setup = evaluation.report, evaluation.setup
    lines = [f"{evaluation.model_title} on {evaluation.title}"]
    if evaluation.accuracy is None:
        lines.append("  no picture of the set could be read")
    else:
        top5 = report.get("top5_accuracy")
        extra = f", top-5 {_percent(top5)}" if top5 is not None else ""
        lines.append(
            f"  accuracy {_percent(evaluation.accuracy)}{extra} over {evaluation.photos:,} photos"
        )
    for note in setup.notes:
        lines.append(f"  note: {note}")
    if report.get("in_training"):
        lines.append(
            f"  note: {report['in_training']:,} of these photos taught this model: "
            "its accuracy on them flatters it"
        )
    for label, why, count in setup.unmatched:
        lines.append(f"  left out {count:,} photo(s) labelled {label}: {why}")
    for name, why in evaluation.unreadable:
        lines.append(f"  unreadable {name}: {why}")
    if setup.left_out:
        lines.append(
            f"  left out {len(setup.left_out):,} file(s) that are not labelled pictures "
            "(--json lists them)"
        )
    if not report.get("per_class"):
        return "\n".join(lines)
    width = max(len("class"), *(len(row["class"]) for row in report["per_class"]))
    width = min(width, 40)
    lines.append("")
    lines.append(f"  {'class':<{width}}  precision  recall     f1  support")
    for row in report["per_class"]:
        lines.append(
            f"  {_cut(row['class'], width):<{width}}  {row['precision']:9.1%}  "
            f"{row['recall']:6.1%}  {row['f1']:5.1%}  {row['support']:7,}"
        )
    lines += ["", "  confusion matrix (rows: label, columns: answer)"]
    confusion = report["confusion"]
    columns = [_cut(name, MAX_COLUMN) for name in confusion["columns"]]
    widths = [max(len(name), 5) for name in columns]
    head = (
        "  "
        + " " * width
        + "  "
        + "  ".join(f"{n:>{w}}" for n, w in zip(columns, widths, strict=True))
    )
    lines.append(head)
    for label, row in zip(confusion["classes"], confusion["matrix"], strict=True):
        cells = "  ".join(f"{v:>{w},}" for v, w in zip(row, widths, strict=True))
        lines.append(f"  {_cut(label, width):<{width}}  {cells}")
    calibration = report.get("calibration")
    if calibration:
        lines += ["", f"  expected calibration error {calibration['ece']:.3f}"]
    if report.get("mistakes"):
        lines += ["", "  most confident mistakes"]
        for m in report["mistakes"][:SHOWN]:
            lines.append(f"    {m['file']}: labelled {m['label']}, answered {m['answer']} "
                         f"({m['probability']:.0%})")  # fmt: skip
    lines += ["", "  likely label errors"]
    if report.get("label_issues_note"):
        lines.append(f"    {report['label_issues_note']}")
    elif not report.get("label_issues"):
        lines.append("    none found")
    for issue in report.get("label_issues", [])[:SHOWN]:
        lines.append(
            f"    {issue['file']}: labelled {issue['label']}, looks like {issue['suggested']}"
        )
    more = len(report.get("label_issues", [])) - SHOWN
    if more > 0:
        lines.append(f"    ... and {more:,} more (--json lists them all)")
    return "\n".join(lines)


def comparison_text(evaluations: Sequence[Evaluation]) -> str:
    """Return the comparison of the first model with each other one (McNemar's test)."""
    lines = []
    first = evaluations[0]
    for other in evaluations[1:]:
        found = mcnemar(first.answers, other.answers)
        lines.append(
            f"{first.model_title} {_percent(first.accuracy)} against {other.model_title} "
            f"{_percent(other.accuracy)} on {found['photos']:,} photos: "
            f"{len(found['only_first_right']):,} right only by the first, "
            f"{len(found['only_second_right']):,} only by the second; "
            f"McNemar p = {found['p_value']:.3g}"
        )
    return "\n".join(lines)


def list_text(evaluations: Sequence[Evaluation]) -> str:
    """Return kept evaluations, a line each, newest first."""
    if not evaluations:
        return "no evaluations kept yet: classifier evaluate DIR --model NAME"
    lines = []
    for e in evaluations:
        when = e.created_at.strftime("%Y-%m-%d %H:%M")
        what = _percent(e.accuracy) if e.status == "done" else e.status
        photos = f"{e.photos:,} photos" if e.photos is not None else ""
        lines.append(
            f"{when}  {e.public_id}  {what:>7}  {e.model}  on {e.title}  {photos}".rstrip()
        )
    return "\n".join(lines)
