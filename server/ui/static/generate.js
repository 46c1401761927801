"use strict";
// Generate: POST /v1/posts as an event stream, every variant written into its own column.
(() => {
  const { t, api, events, el, showError } = AP;
  const form = document.getElementById("generate-form");
  const fields = form.elements;
  const submit = document.getElementById("generate");
  const statusLine = document.getElementById("generate-status");
  const errorBox = document.getElementById("generate-error");
  const run = document.getElementById("run");
  const columns = document.getElementById("variant-columns");
  const stages = document.getElementById("run-stages");
  const openPost = document.getElementById("open-post");
  const cards = [];

  document.getElementById("stock").addEventListener("stock-chosen", (event) => {
    document.getElementById("stock-label").textContent = `${event.detail.name} · ${event.detail.market}`;
  });

  const lines = (name) => fields[name].value.split("\n").map((line) => line.trim()).filter(Boolean);
  const number = (name) => (fields[name].value === "" ? null : Number(fields[name].value));

  function request() {
    const facts = {};
    for (const name of ["price", "change_pct", "volume"]) {
      if (number(name) !== null) facts[name] = number(name);
    }
    for (const name of ["headlines", "notes"]) {
      if (lines(name).length) facts[name] = lines(name);
    }
    const body = {
      stock: fields.stock.value.trim(), kol: Number(fields.kol.value),
      posting_type: fields.posting_type.value, max_words: Number(fields.max_words.value),
      variants: Number(fields.variants.value), speed_mode: fields.speed_mode.checked, facts,
    };
    if (fields.backend.value) body.backend = fields.backend.value;
    return body;
  }

  function card(index) {
    while (cards.length <= index) {
      const number = cards.length;
      const node = el("article", { cls: "variant", attrs: { "data-variant": String(number), "data-state": "waiting", "data-deltas": "0" } }, [
        el("header", {}, [
          el("strong", { text: `${t("variant.label")} ${number + 1}` }),
          el("span", { cls: "badge state", text: t("variant.waiting") }),
          el("span", { cls: "score" }),
        ]),
        el("pre", { cls: "stream" }),
      ]);
      cards.push(node);
      columns.append(node);
    }
    return cards[index];
  }

  function setState(node, state) {
    node.dataset.state = state;
    node.querySelector(".state").textContent = t(`variant.${state}`);
  }

  function delta({ variant, text }) {
    const node = card(variant);
    if (node.dataset.state === "waiting") setState(node, "writing");
    node.querySelector(".stream").append(text);
    node.dataset.deltas = String(Number(node.dataset.deltas) + 1);
  }

  function done(event) {
    const node = card(event.variant);
    setState(node, event.error ? "failed" : "done");
    if (event.score !== null) node.querySelector(".score").textContent = `${t("variant.score")} ${event.score}`;
    const checks = event.checks.map((check) => el("li", {
      cls: check.passed ? "pass" : "fail", text: `${t(`check.${check.name}`)} · ${check.detail}`,
      attrs: { "data-check": check.name },
    }));
    node.querySelector(".stream").replaceWith(
      ...(event.error ? [el("p", { cls: "error", text: event.error })] : []),
      el("h3", { cls: "v-title", text: event.title }),
      el("p", { cls: "v-body", text: event.body }),
      el("ul", { cls: "checks" }, checks),
    );
  }

  function selected({ variant }) {
    for (const node of cards) node.classList.toggle("selected", Number(node.dataset.variant) === variant);
    card(variant).querySelector("header").append(el("span", { cls: "badge selected-badge", text: t("variant.selected") }));
  }

  const chip = (text) => el("span", { cls: "chip", text });

  function finished({ post }) {
    statusLine.textContent = `${t("generate.finished")} · ${t(`status.${post.status}`)}`;
    // Every stage's time is known only now; tokens and cost with them.
    stages.replaceChildren(
      ...Object.entries(post.timings_ms).map(([name, ms]) => chip(`${t(`stage.${name}`)} ${Math.round(ms)} ms`)),
      chip(`${t("usage.prompt_tokens")} ${post.usage.prompt_tokens}`),
      chip(`${t("usage.completion_tokens")} ${post.usage.completion_tokens}`),
      chip(`${t("col.cost")} ${AP.usd(post.cost_usd)}`),
    );
    openPost.href = `/ui/posts/${post.post_id}`;
    openPost.hidden = false;
    run.dataset.status = post.status;
  }

  const handlers = {
    "post.created": ({ post_id }) => { run.dataset.postId = post_id; },
    stage: ({ name, ms }) => stages.append(chip(`${t(`stage.${name}`)} ${Math.round(ms)} ms`)),
    "variant.delta": delta,
    "variant.done": done,
    "post.selected": selected,
    "post.done": finished,
    error: ({ code, message }) => showError(errorBox, `${code}: ${message}`),
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = request();
    errorBox.hidden = true;
    submit.disabled = true;
    statusLine.textContent = t("generate.running");
    cards.length = 0;
    columns.replaceChildren();
    stages.replaceChildren();
    openPost.hidden = true;
    delete run.dataset.status;
    for (let index = 0; index < body.variants; index += 1) card(index);
    try {
      const response = await api("POST", "/v1/posts", body, { stream: true });
      run.hidden = false;
      for await (const message of events(response)) handlers[message.event]?.(message.data);
    } catch (error) {
      showError(errorBox, error);
      statusLine.textContent = "";
    } finally {
      submit.disabled = false;
    }
  });
})();
