"use strict";
// One post: the editor's checks as the pipeline runs them, and every change as a PATCH.
(() => {
  const { data, t, api, el, showError } = AP;
  const rules = data.rules;
  const unit = new RegExp(rules.unit_pattern, "gu");
  const textLength = (text) => (text.match(unit) || []).length;
  const title = document.getElementById("title");
  const body = document.getElementById("body");
  const checks = document.getElementById("live-checks");
  const dirty = document.getElementById("dirty");
  const errorBox = document.getElementById("post-error");
  // The HTML parser drops a textarea's leading newline; start from the stored text.
  title.value = data.saved.title;
  body.value = data.saved.body;

  function evaluate() {
    const bodyLength = textLength(body.value);
    const titleLength = [...title.value.trim()].length;
    const text = `${title.value}\n${body.value}`;
    return [
      ["not_empty", Boolean(title.value && body.value), ""],
      ["stock_named", text.includes(rules.stock_code) || text.includes(rules.stock_name),
        `${rules.stock_code} ${rules.stock_name}`],
      ["length", bodyLength > 0 && bodyLength <= rules.hard_max,
        `${bodyLength} / ${rules.max_words} (≤ ${rules.hard_max})`],
      ["title_length", titleLength > 0 && titleLength <= rules.title_max_chars,
        `${titleLength} / ${rules.title_max_chars}`],
    ];
  }

  function edits() {
    const change = {};
    if (title.value !== data.saved.title) change.title = title.value;
    if (body.value !== data.saved.body) change.body = body.value;
    return change;
  }

  function show() {
    checks.replaceChildren(...evaluate().map(([name, passed, detail]) => el("li", {
      cls: passed ? "pass" : "fail", attrs: { "data-check": name },
      text: detail ? `${t(`check.${name}`)} · ${detail}` : t(`check.${name}`),
    })));
    dirty.hidden = Object.keys(edits()).length === 0;
  }

  const changes = {
    save: edits,
    approve: () => ({ ...edits(), status: "approved" }),
    reject: () => ({ status: "rejected" }),
    reopen: () => ({ status: "draft" }),
    publish: () => ({ status: "published" }),
    select: (button) => ({ selected_variant: Number(button.dataset.variant) }),
  };

  async function apply(change) {
    if (Object.keys(change).length === 0) {
      showError(errorBox, t("post.nothing_to_save"));
      return;
    }
    const buttons = document.querySelectorAll("button[data-action]");
    buttons.forEach((button) => { button.disabled = true; });
    try {
      await api("PATCH", `/v1/posts/${data.post_id}`, change);
      window.location.reload();
    } catch (error) {
      showError(errorBox, error);
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) apply(changes[button.dataset.action](button));
  });
  title.addEventListener("input", show);
  body.addEventListener("input", show);
  show();
})();
