// The desk's forms, checked as the clerk types: each change sends the form
// to the desk, which judges it with the ledger's own field rules, and the
// answer shows in a live region and on the field. Without this script the
// forms still work: the preview applies the same checks.
"use strict";

for (const form of document.querySelectorAll("form[data-check]")) {
  const live = document.getElementById("live-check");
  let timer = null;
  let marked = null;
  // Only the answer to the latest change counts: an earlier, slower one
  // must not overwrite it.
  let asked = 0;
  const check = async () => {
    const mine = ++asked;
    const response = await fetch(form.dataset.check, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const answer = await response.json();
    if (mine !== asked) return;
    if (marked) {
      marked.removeAttribute("aria-invalid");
      marked = null;
    }
    live.textContent = answer.message || "";
    const field = answer.field && form.elements.namedItem(answer.field);
    if (field && field.setAttribute) {
      field.setAttribute("aria-invalid", "true");
      marked = field;
    }
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(() => check().catch(() => {}), 300);
  };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
}

// An import being submitted: its progress, polled until it is done, then
// the page again for the summary.
const progress = document.getElementById("import-progress");
if (progress && progress.dataset.poll) {
  const bar = document.querySelector("progress");
  const sent = document.getElementById("sent");
  const poll = async () => {
    const response = await fetch(progress.dataset.poll, { credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    sent.textContent = String(state.sent);
    if (bar) bar.value = state.sent;
    if (state.done) {
      location.reload();
    } else {
      setTimeout(poll, 300);
    }
  };
  setTimeout(poll, 300);
}
