"""The Evaluate page's parts: a new evaluation from a labelled folder or zip, the list of
evaluations, and one run's report (its confusion matrix, mistakes, likely label errors and,
for two models, their comparison)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial

import altair as alt
import pandas as pd
import streamlit as st

from classifier import evaluation, history, models
from classifier.evaluation import jobs as evaluating
from classifier.evaluation.labelled import read_csv_bytes
from classifier.history.store import safe_csv
from ui import folder_picker, resources, sidebar
from ui.batch_view import REFRESH_SECONDS, STATUS_TITLES
from ui.columns import PICTURE_COLUMN, plain, share_column, thumbnail_uri

MAX_MODELS = 4
MATRIX_CLASSES = 30  # classes drawn in the confusion matrix, at most (the most confused)
Thumbnails = Callable[[Sequence[str]], dict[str, bytes]]  # some pictures' thumbnails, by name
LISTED = 50  # evaluations in the list
SHOWN = 60  # pictures in a gallery


def _title(name: str) -> str:
    return sidebar.model_title(name)


def new_evaluation(store: history.HistoryStore, choices: sidebar.Choices) -> None:
    """Models to evaluate, the set's picker, what its labels match, and the start button."""
    offered = models.names(resources.model_scope())
    picked = st.multiselect(
        "Models to evaluate",
        offered,
        default=[choices.model] if choices.model in offered else [],
        format_func=_title,
        max_selections=MAX_MODELS,
        key="evaluate_models",
        help="Each model runs once over the same photos; with two, they are compared.",
    )
    upload = folder_picker.received(
        "evaluate",
        "A labelled set: one folder per class, named after the class (for the ImageNet "
        "models a class's name, its number or WordNet id, e.g. n02123045), or a zip with a "
        "labels.csv of file,label beside the photos.",
    )
    if upload is None:
        return
    pictures = upload.pictures
    title = upload.title or f"{len(pictures)} photos"
    try:
        csv_text = None if upload.labels_csv is None else read_csv_bytes(upload.labels_csv)
        labelled = evaluation.from_names([p.name for p in pictures], title, csv_text)
    except evaluation.SetError as exc:
        st.error(plain(str(exc)), icon=":material/error:")
        st.button("Pick again", on_click=folder_picker.start_over, args=("evaluate",),
                  icon=":material/undo:")  # fmt: skip
        return
    counts = labelled.counts()
    st.caption(
        f"{plain(title)}: {len(labelled.photos):,} labelled photos in {len(counts):,} "
        f"classes{_left_out(labelled)}."
    )
    plans = _matches(labelled, picked)
    start, again = st.columns(2)
    again.button("Pick others", on_click=folder_picker.start_over, args=("evaluate",),
                 icon=":material/undo:")  # fmt: skip
    ready = bool(picked) and all(plans.values())
    if start.button(
        f"Evaluate {len(picked)} model{'s' if len(picked) != 1 else ''}",
        type="primary",
        icon=":material/play_arrow:",
        disabled=not ready,
    ):
        try:
            with upload.lock:
                run_id = evaluating.start(
                    store, upload.job, labelled, picked, source="app",
                    thumbnails=choices.save_thumbnails,
                )  # fmt: skip
        except (evaluation.SetError, models.ModelError) as exc:
            st.error(plain(str(exc)), icon=":material/error:")
            return
        folder_picker.forget("evaluate")
        st.query_params["run"] = run_id
        st.rerun()


def _left_out(labelled: evaluation.LabelledSet) -> str:
    if not labelled.left_out:
        return ""
    return f" ({len(labelled.left_out):,} files left out: not labelled pictures)"


def _matches(labelled: evaluation.LabelledSet, picked: Sequence[str]) -> dict[str, bool]:
    """Show which of the set's labels each model knows; return which models can start."""
    counts = labelled.counts()
    frame = {"label": list(counts), "photos": [counts[label] for label in counts]}
    usable: dict[str, bool] = {}
    for name in picked:
        try:
            plan = evaluation.plan(labelled, name, resources.model_scope())
        except (evaluation.SetError, models.ModelError) as exc:
            st.error(plain(str(exc)), icon=":material/error:")
            usable[name] = False
            continue
        usable[name] = True
        found = {c.label: c.name for c in plan.setup.classes}
        why = {label: reason for label, reason, _ in plan.setup.unmatched}
        frame[_title(name)] = [
            found[label] if label in found else f"left out: {why.get(label, '')}"
            for label in counts
        ]
    st.dataframe(
        pd.DataFrame(frame),
        hide_index=True,
        width="stretch",
        column_config={
            "label": st.column_config.TextColumn("Label in the set"),
            "photos": st.column_config.NumberColumn("Photos"),
        },
    )
    return usable


# --- The list of evaluations ----------------------------------------------------------------


def latest_texts() -> dict[str, str]:
    """Each model's newest evaluation in words, for the Models page: "94% on Desk, 3 Dec"."""
    try:
        store = resources.store()
        found = evaluation.latest_by_model(store) if store is not None else {}
        scope = resources.model_scope()
        # A model removed and another added under its name: not the old one's numbers.
        kept = models.all_models(scope) if found and scope is not None else []
        added = {m.name: m.entry.created_at for m in kept}
    except Exception:  # the models are listed all the same
        return {}
    return {
        model: f"{_percent(e.accuracy)} on {e.title}, {e.created_at.day} {e.created_at:%b}"
        for model, e in found.items()
        if model not in added or e.created_at >= added[model]
    }


def runs_list(store: history.HistoryStore) -> None:
    """The person's evaluations, a row per model, newest first, each opening its run."""
    found = evaluation.newest(store, LISTED)
    if not found:
        st.caption("No evaluations yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "open": [f"?run={e.run_id}" for e in found],  # first: in reach on a phone
                "set": [e.title for e in found],
                "model": [_title(e.model) for e in found],
                "status": [STATUS_TITLES.get(e.status, e.status) for e in found],
                "accuracy": [e.accuracy for e in found],
                "photos": [e.photos for e in found],
                "created": [e.created_at for e in found],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "set": st.column_config.TextColumn("Set"),
            "model": st.column_config.TextColumn("Model"),
            "status": st.column_config.TextColumn("Status"),
            "accuracy": share_column("Accuracy"),
            "photos": st.column_config.NumberColumn("Photos"),
            "created": st.column_config.DatetimeColumn("Started", format="D MMM, HH:mm"),
            "open": st.column_config.LinkColumn("Report", display_text="Open"),
        },
    )


# --- One run ----------------------------------------------------------------------------------


def run_page(store: history.HistoryStore, run_id: str) -> None:
    """One run: its progress while it runs, then each model's report and their comparison."""
    found = evaluating.refresh(store, run_id)
    if not found:
        st.error("No evaluation has this id among yours.", icon=":material/search_off:")
        return
    st.subheader(f"{plain(found[0].title)}")
    if changed := st.session_state.pop("evaluate_changed", None):
        st.toast(changed, icon=":material/check:")
    if any(e.status == "running" for e in found):
        _progress(store, run_id)
        return
    for e in found:
        if e.status == "cancelled":
            st.warning(
                plain(
                    f"{_title(e.model)}: cancelled; the numbers below are of the "
                    f"{e.photos or 0:,} photos answered before."
                ),
                icon=":material/stop_circle:",
            )
        elif e.status == "failed":
            reason = f": {e.error}" if e.error else ""
            st.warning(plain(f"{_title(e.model)}: stopped{reason}"), icon=":material/warning:")
    shown = [e for e in found if e.status in ("done", "cancelled") and e.answers]
    if not shown:
        return
    thumbnails = partial(evaluating.thumbnails, store, run_id)
    if len(shown) > 1:
        _comparison(shown, thumbnails)
    tabs = st.tabs([plain(_title(e.model)) for e in shown]) if len(shown) > 1 else [st.container()]
    for tab, e in zip(tabs, shown, strict=True):
        with tab:
            report(store, e, thumbnails)


def _progress(store: history.HistoryStore, run_id: str) -> None:
    @st.fragment(run_every=REFRESH_SECONDS)
    def progress() -> None:
        found = evaluating.jobs_of(store, run_id)
        for job in found:
            share = job.handled / job.total if job.total else 1.0
            st.progress(share, text=plain(f"{_title(job.model)}: {job.handled:,} of {job.total:,}"))
        if st.button("Cancel", icon=":material/stop:", key="evaluate_cancel"):
            evaluating.cancel(store, run_id)
            st.rerun()
        if not found or all(job.ended for job in found):  # (no jobs: refresh ends it)
            st.rerun()

    st.caption("Running on the server: you may close this tab and come back.")
    progress()


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _answer_label(answer: evaluation.Answer, classes: Sequence[evaluation.SetClass]) -> str:
    """The matrix's column an answer falls in: the set's label for its class, or another."""
    for c in classes:
        if c.index == answer.predicted:
            return c.label
    return evaluation.ANOTHER_CLASS


def _gallery(
    answers: Sequence[evaluation.Answer],
    classes: Sequence[evaluation.SetClass],
    thumbnails: Thumbnails,
    key: str,
) -> None:
    """Pictures with their label and answer, as a table (names shown as written)."""
    if not answers:
        st.caption("No photos.")
        return
    shown = list(answers)[:SHOWN]
    pictures = thumbnails([a.file for a in shown])
    st.dataframe(
        pd.DataFrame(
            {
                "picture": [thumbnail_uri(pictures.get(a.file)) for a in shown],
                "file": [a.file for a in shown],
                "label": [a.label for a in shown],
                "answer": [a.top[0][1] for a in shown],
                "confidence": [a.top[0][2] for a in shown],
            }
        ),
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            "picture": PICTURE_COLUMN,
            "file": st.column_config.TextColumn("File"),
            "label": st.column_config.TextColumn("Label"),
            "answer": st.column_config.TextColumn("Answer"),
            "confidence": share_column("Confidence"),
        },
    )
    if len(answers) > SHOWN:
        st.caption(f"The first {SHOWN} of {len(answers):,}; the downloads hold all.")


def report(store: history.HistoryStore, e: evaluation.Evaluation, thumbnails: Thumbnails) -> None:
    """One model's report on the set."""
    values, setup, answers = e.report, e.setup, e.answers
    first, second, third, fourth = st.columns(4)
    first.metric("Accuracy", _percent(e.accuracy))
    if values.get("top5_accuracy") is not None:
        second.metric("Top-5 accuracy", _percent(values["top5_accuracy"]))
    third.metric("Photos", f"{e.photos or 0:,}")
    if values.get("calibration"):
        fourth.metric(
            "Calibration error",
            f"{values['calibration']['ece']:.3f}",
            help="Expected calibration error: how far the confidence is from the "
            "share of right answers, on average (0 is perfect).",
        )
    if values.get("in_training"):
        st.warning(
            f"{values['in_training']:,} of these photos taught this model, so this accuracy "
            "flatters it: evaluate it on photos it has not seen.",
            icon=":material/warning:",
        )
    for note in setup.notes:
        st.info(plain(note), icon=":material/info:")
    for label, why, count in setup.unmatched:
        st.warning(
            plain(f"Left out {count:,} photo(s) labelled “{label}”: {why}."),
            icon=":material/label_off:",
        )
    if e.unreadable:
        with st.expander(f"{len(e.unreadable):,} unreadable photos, not counted"):
            st.dataframe(
                pd.DataFrame(
                    {"file": [f for f, _ in e.unreadable], "why": [w for _, w in e.unreadable]}
                ),
                hide_index=True,
                width="stretch",
            )
    if aside := e.set_aside_why:
        photos = f"{len(aside):,} photo{'' if len(aside) == 1 else 's'}"
        with st.expander(f"{photos} set aside by label fixes, not counted"):
            st.dataframe(
                pd.DataFrame({"file": [f for f, _ in aside], "why": [w for _, w in aside]}),
                hide_index=True,
                width="stretch",
            )
    if not answers:
        return
    _confusion(e, answers, setup.classes, thumbnails)
    st.markdown("**Per class**")
    st.dataframe(
        pd.DataFrame(values["per_class"]),
        hide_index=True,
        width="stretch",
        column_config={
            "class": st.column_config.TextColumn("Class"),
            "precision": share_column("Precision"),
            "recall": share_column("Recall"),
            "f1": share_column("F1"),
            "support": st.column_config.NumberColumn("Photos"),
        },
    )
    _reliability(values["calibration"])
    st.markdown("**Most confident mistakes**")
    mistakes = sorted((a for a in answers if not a.correct), key=lambda a: -a.top[0][2])
    _gallery(mistakes, setup.classes, thumbnails, key=f"mistakes_{e.public_id}")
    _label_issues(store, e, values, setup.classes, thumbnails)
    _downloads(e)


def _most_confused(confusion: dict, limit: int) -> tuple[list[str], list[str], list[list[int]]]:
    """The matrix cut to the `limit` classes with the most mistakes (in or out of them),
    in the set's order; another class's column is kept."""
    labels, columns, matrix = confusion["classes"], confusion["columns"], confusion["matrix"]
    if len(labels) <= limit:
        return labels, columns, matrix
    mistakes = [
        sum(row) - row[n] + sum(r[n] for r in matrix) - row[n] for n, row in enumerate(matrix)
    ]
    keep = sorted(sorted(range(len(labels)), key=lambda n: -mistakes[n])[:limit])
    kept_columns = keep + list(range(len(labels), len(columns)))
    return (
        [labels[n] for n in keep],
        [columns[n] for n in kept_columns],
        [[matrix[r][c] for c in kept_columns] for r in keep],
    )


def _confusion(e, answers, classes, thumbnails) -> None:
    confusion = e.report["confusion"]
    labels, columns, matrix = _most_confused(confusion, MATRIX_CLASSES)
    rows = [
        {"label": label, "answer": column, "photos": int(count)}
        for label, counts in zip(labels, matrix, strict=True)
        for column, count in zip(columns, counts, strict=True)
    ]
    cell = alt.selection_point(name="cell", fields=["label", "answer"], toggle=False)
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X(
            "answer:N",
            title="Answer",
            sort=columns,
            axis=alt.Axis(labelAngle=-40, labelLimit=140, labelOverlap=False),  # all, on a phone
        ),
        y=alt.Y("label:N", title="Label", sort=labels, axis=alt.Axis(labelLimit=140)),
    )
    squares = (
        base.mark_rect(stroke="#888", strokeWidth=0.5)
        .encode(
            color=alt.Color("photos:Q", scale=alt.Scale(scheme="blues"), legend=None),
            opacity=alt.condition(cell, alt.value(1.0), alt.value(0.55)),
            tooltip=[
                alt.Tooltip("label:N", title="Label"),
                alt.Tooltip("answer:N", title="Answer"),
                alt.Tooltip("photos:Q", title="Photos"),
            ],
        )
        .add_params(cell)
    )
    numbers = base.mark_text(fontSize=13).encode(
        text="photos:Q",
        color=alt.condition(
            alt.datum.photos > max(1, max(r["photos"] for r in rows)) / 2,
            alt.value("white"),
            alt.value("black"),
        ),
    )
    st.markdown("**Confusion matrix**: click a square to see its photos")
    if len(labels) < len(confusion["classes"]):
        st.caption(
            f"The {len(labels)} of {len(confusion['classes']):,} classes with the most mistakes; "
            "the per-class table below has them all."
        )
    event = st.altair_chart(
        (squares + numbers).properties(height=alt.Step(44)),  # a row per class, room for its number
        on_select="rerun",
        selection_mode="cell",
        key=f"confusion_{e.public_id}",
        width="stretch",
        alt="Confusion matrix: the set's labels against the model's answers",
    )
    picked = (event.get("selection") or {}).get("cell") or []
    if picked:
        label, answer = picked[0].get("label"), picked[0].get("answer")
        inside = [a for a in answers if a.label == label and _answer_label(a, classes) == answer]
        with st.container(key=f"square_{e.public_id}"):  # (its photos, where the eye is)
            st.caption(plain(f"Labelled “{label}”, answered “{answer}”: {len(inside):,} photos"))
            _gallery(inside, classes, thumbnails, key=f"cell_{e.public_id}")


def _reliability(calibration: dict) -> None:
    rows = [
        {
            "confidence": (b["lower"] + b["upper"]) / 2,
            "accuracy": b["accuracy"],
            "photos": b["count"],
            "range": f"{b['lower']:.0%}–{b['upper']:.0%}",
        }
        for b in calibration["bins"]
        if b["count"]
    ]
    if not rows:
        return
    st.markdown("**Reliability**: how often the answer was right, by its confidence")
    bars = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar(width=18)
        .encode(
            x=alt.X(
                "confidence:Q",
                title="Confidence",
                scale=alt.Scale(domain=[0, 1], nice=False, clamp=True),
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y(
                "accuracy:Q",
                title="Right",
                scale=alt.Scale(domain=[0, 1], nice=False, clamp=True),
                axis=alt.Axis(format="%"),
            ),
            tooltip=[
                alt.Tooltip("range:N", title="Confidence"),
                alt.Tooltip("accuracy:Q", format=".0%", title="Right"),
                alt.Tooltip("photos:Q", title="Photos"),
            ],
        )
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"confidence": [0, 1], "accuracy": [0, 1]}))
        .mark_line(strokeDash=[4, 4], color="gray")
        .encode(x="confidence:Q", y="accuracy:Q")
    )
    st.altair_chart(
        bars + diagonal,
        height=240,
        width="stretch",
        alt="Reliability diagram: share of right answers by confidence",
    )


def _label_issues(store, e: evaluation.Evaluation, values: dict, classes, thumbnails) -> None:
    st.markdown("**Likely mislabelled**")
    if values.get("label_issues_note"):
        st.caption(plain(values["label_issues_note"]))
        return
    issues = values.get("label_issues") or []
    if not issues:
        st.caption("No photo's label looks wrong to this model.")
        return
    by_file = {a.file: a for a in e.answers}
    listed = [by_file[i["file"]] for i in issues if i["file"] in by_file]
    _gallery(listed, classes, thumbnails, key=f"issues_{e.public_id}")
    labels = list(dict.fromkeys(c.label for c in classes))
    with st.container(border=True):
        st.caption(
            "Fix a photo's label in this evaluation (every model's numbers are worked out "
            "again), or drop the photo. Download labels.csv to fix your own copy of the set."
        )
        files = [i["file"] for i in issues]
        suggested = {i["file"]: i["suggested"] for i in issues}
        chosen = st.selectbox("Photo", files, key=f"fix_file_{e.public_id}")
        label = st.selectbox(
            "Its label",
            labels,
            index=labels.index(suggested[chosen]) if suggested.get(chosen) in labels else 0,
            # One box per photo, so each opens on its own suggestion.
            key=f"fix_label_{e.public_id}_{files.index(chosen)}",
        )
        fix, drop = st.columns(2)
        fixed = fix.button("Fix the label", icon=":material/edit:", key=f"fix_{e.public_id}")
        dropped = drop.button("Drop the photo", icon=":material/delete:", key=f"drop_{e.public_id}")
    if fixed or dropped:
        try:
            evaluation.relabel(store, e.run_id, chosen, None if dropped else label)
        except ValueError as exc:
            st.error(plain(str(exc)), icon=":material/error:")
            return
        st.session_state["evaluate_changed"] = (
            "Dropped from the set." if dropped else "Label fixed."
        )
        st.rerun()


def _downloads(e: evaluation.Evaluation) -> None:
    """The report as JSON, each photo's answer as CSV, and the set's labels as labels.csv;
    each made when its button is clicked (a large evaluation's JSON is megabytes)."""

    def as_json() -> str:
        return json.dumps(e.as_dict(), indent=2)

    def answers_csv() -> bytes:
        rows = [
            {
                "file": a.file,
                "label": a.label,
                "answer": a.top[0][1],
                "probability": round(a.top[0][2], 6),
                "correct": a.correct,
            }
            for a in e.answers
        ]
        return safe_csv(rows, ("file", "label", "answer", "probability", "correct"))

    def labels_csv() -> bytes:
        return safe_csv([{"file": a.file, "label": a.label} for a in e.answers], ("file", "label"))

    one, two, three = st.columns(3)
    one.download_button(
        "Report (JSON)",
        as_json,
        f"evaluation-{e.public_id}.json",
        "application/json",
        icon=":material/download:",
        key=f"json_{e.public_id}",
    )
    two.download_button(
        "Answers (CSV)",
        answers_csv,
        f"evaluation-{e.public_id}.csv",
        "text/csv",
        icon=":material/download:",
        key=f"csv_{e.public_id}",
    )
    three.download_button(
        "labels.csv",
        labels_csv,
        "labels.csv",
        "text/csv",
        icon=":material/download:",
        key=f"labels_{e.public_id}",
    )


def _comparison(done: Sequence[evaluation.Evaluation], thumbnails: Thumbnails) -> None:
    """Two or more models: their accuracies, McNemar's test, the photos only one got right."""
    st.markdown("**Side by side**")
    # On the photos every model answered: a model that knows fewer of the set's labels
    # answers fewer photos, and accuracies on different photos do not compare.
    common = set.intersection(*({a.file for a in e.answers} for e in done))
    st.caption(f"On the {len(common):,} photos every model answered.")
    columns = st.columns(len(done))
    for column, e in zip(columns, done, strict=True):
        right = [a.correct for a in e.answers if a.file in common]
        shared = sum(right) / len(right) if right else None
        column.metric(
            plain(_title(e.model)),
            _percent(shared),
            help=f"{_percent(e.accuracy)} on all the {e.photos or 0:,} photos it answered",
        )
    first = done[0]
    for other in done[1:]:
        found = evaluation.mcnemar(first.answers, other.answers)
        p = found["p_value"]
        verdict = "more than chance would explain" if p < 0.05 else "within what chance explains"
        st.caption(
            plain(
                f"On {found['photos']:,} photos both answered, {_title(first.model)} alone was "
                f"right on {len(found['only_first_right']):,} and {_title(other.model)} alone on "
                f"{len(found['only_second_right']):,}: a difference {verdict} "
                f"(McNemar's exact test, p = {p:.3g})."
            )
        )
        mine = {a.file: a for a in first.answers}
        theirs = {a.file: a for a in other.answers}
        differ = found["only_first_right"] + found["only_second_right"]
        pictures = thumbnails(differ[:SHOWN])
        if differ:
            st.dataframe(
                pd.DataFrame(
                    {
                        "picture": [thumbnail_uri(pictures.get(f)) for f in differ[:SHOWN]],
                        "file": differ[:SHOWN],
                        "label": [mine[f].label for f in differ[:SHOWN]],
                        "first": [mine[f].top[0][1] for f in differ[:SHOWN]],
                        "second": [theirs[f].top[0][1] for f in differ[:SHOWN]],
                        "right": [
                            _title(first.model) if mine[f].correct else _title(other.model)
                            for f in differ[:SHOWN]
                        ],
                    }
                ),
                hide_index=True,
                width="stretch",
                key=f"differ_{other.public_id}",
                column_config={
                    "picture": PICTURE_COLUMN,
                    "file": st.column_config.TextColumn("File"),
                    "label": st.column_config.TextColumn("Label"),
                    "first": st.column_config.TextColumn(_title(first.model)),
                    "second": st.column_config.TextColumn(_title(other.model)),
                    "right": st.column_config.TextColumn("Right"),
                },
            )
