"""The Batch page's folder and zip picker: each picture goes to the server in its own request
(`PUT upload/<ticket>`, see `api/uploads.py`), written to disk as it arrives, so a folder of
thousands of photos never sits in the server's memory as Streamlit's uploader would hold it.

A `st.components.v2` component: the browser reads the folder, keeps the pictures (by their
extension; hidden files and system folders left out), sends them two at a time and shows
its progress; when all are sent it tells the page (`sent`), which then offers the job.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from classifier import images
from classifier.jobs import uploads
from ui.columns import plain

HTML = """
<div class="picker">
  <label class="pick"><input type="file" id="folder" webkitdirectory multiple hidden>
    <span>Pick a folder</span></label>
  <label class="pick"><input type="file" id="zip" accept=".zip,application/zip" hidden>
    <span>Pick a zip</span></label>
  <span id="status" role="status" aria-live="polite"></span>
</div>
"""

CSS = """
.picker { display: flex; flex-wrap: wrap; align-items: center; gap: 0.75rem;
  font-family: var(--st-font); color: var(--st-text-color); }
.pick span { display: inline-block; padding: 0.4rem 0.9rem; cursor: pointer;
  border: 1px solid var(--st-border-color); border-radius: var(--st-button-radius);
  background: var(--st-secondary-background-color); }
.pick span:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
.pick input:focus-visible + span { outline: 2px solid var(--st-primary-color); }
#status { font-size: 0.9rem; opacity: 0.8; }
"""

JS = """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const status = parentElement.querySelector("#status");
  const wanted = new Set(data.extensions);
  const junk = (part) => part.startsWith(".") || part === "__MACOSX" || part === "@eaDir";
  const isPicture = (name) => {
    const parts = name.split("/");
    if (parts.some(junk)) return false;
    const dot = name.lastIndexOf(".");
    return dot > 0 && wanted.has(name.slice(dot + 1).toLowerCase());
  };
  async function send(files, kind) {
    const queue = [...files];
    const total = queue.length;
    let sent = 0;
    let refused = "";
    status.textContent = `Sending 0 of ${total}…`;
    async function worker() {
      while (queue.length && !refused) {
        const file = queue.shift();
        const name = kind === "zip" ? file.name : (file.webkitRelativePath || file.name);
        const address = `${data.url}?kind=${kind}&name=${encodeURIComponent(name)}`;
        try {
          const answer = await fetch(address, { method: "PUT", body: file });
          if (!answer.ok) {
            const said = await answer.json().catch(() => ({}));
            refused = said.error || `The server answered ${answer.status}.`;
          }
        } catch (error) {
          refused = "The connection to the server broke off; pick the folder again.";
        }
        sent += 1;
        status.textContent = `Sending ${sent} of ${total}…`;
      }
    }
    await Promise.all([worker(), worker()]);
    status.textContent = refused ? "" : `Sent ${total}.`;
    setTriggerValue("sent", { total, refused });
  }
  const folder = parentElement.querySelector("#folder");
  folder.onchange = () => {
    const files = [...folder.files].filter((f) => isPicture(f.webkitRelativePath || f.name));
    if (!files.length) {
      status.textContent = "This folder holds no pictures.";
      return;
    }
    send(files, "picture");
  };
  const zip = parentElement.querySelector("#zip");
  zip.onchange = () => zip.files.length && send([zip.files[0]], "zip");
}
"""

_picker = st.components.v2.component("batch_folder_picker", html=HTML, css=CSS, js=JS)


def pick(ticket: str) -> dict | None:
    """Draw the picker for an upload; return what it sent ({total, refused}) in the run
    right after it finished sending, else None."""
    result = _picker(
        data={"url": f"upload/{ticket}", "extensions": list(images.ACCEPTED_EXTENSIONS)},
        # One picker per upload; the key may not hold "__", which a ticket may.
        key=f"batch_picker_{hashlib.sha256(ticket.encode()).hexdigest()[:16]}",
        on_sent_change=lambda: None,
    )
    return getattr(result, "sent", None)


# --- A visit's upload: opened on first use, its picker, how the sending goes ----------------
# The Batch and Evaluate pages each keep one, under `<prefix>_ticket` and `<prefix>_sent`.


def _open(prefix: str) -> uploads.Upload:
    """This visit's open upload (a new job's folder and ticket), opened on first use."""
    ticket = st.session_state.get(f"{prefix}_ticket")
    upload = uploads.find(ticket) if ticket else None
    if upload is None:
        upload = uploads.open_upload()
        st.session_state[f"{prefix}_ticket"] = upload.ticket
    return upload


def received(prefix: str, hint: str) -> uploads.Upload | None:
    """Draw the picker of this visit's upload and say how the sending goes; return the
    upload once every picture sent has arrived (one at least), else None, having said why:
    `hint` (Markdown) before anything is picked, the count so far, or the refusal with a
    "Pick again" button."""
    upload = _open(prefix)
    sent = pick(upload.ticket)
    if sent is not None:  # the picker finished sending (only in the run right after)
        st.session_state[f"{prefix}_sent"] = (upload.ticket, sent.get("refused") or "")
    ticket, refused_sending = st.session_state.get(f"{prefix}_sent", (None, ""))
    finished = ticket == upload.ticket
    problem = upload.error or (refused_sending if finished else None)
    if problem:
        st.error(plain(problem), icon=":material/error:")
        st.button("Pick again", on_click=start_over, args=(prefix,), icon=":material/undo:")
        return None
    if upload.pictures and not finished:
        st.caption(f"{len(upload.pictures):,} photos received so far…")
        return None
    if not upload.pictures:
        st.caption(hint)
        return None
    return upload


def start_over(prefix: str) -> None:
    """Drop what this visit's upload received, and start a new one."""
    upload = uploads.find(st.session_state.get(f"{prefix}_ticket") or "")
    if upload is not None:
        with upload.lock:
            upload.job.discard()
    forget(prefix)


def forget(prefix: str) -> None:
    """Let go of this visit's upload (its pictures now a job's); the next one is new."""
    if ticket := st.session_state.pop(f"{prefix}_ticket", None):
        uploads.close(ticket)
    st.session_state.pop(f"{prefix}_sent", None)
