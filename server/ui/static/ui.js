"use strict";
// Shared by every review page: the page's data and words, the /v1 API with the login
// session, an SSE reader for POST streams, and the stock search box. Text from users and
// models only ever goes into the page as text nodes, never as markup.
const AP = (() => {
  const data = JSON.parse(document.getElementById("ui-data").textContent);
  const t = (key) => data.messages[key] ?? key;

  async function api(method, path, body, { stream = false } = {}) {
    const headers = { "X-Autoposter-UI": "1", Accept: stream ? "text/event-stream" : "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (!response.ok) throw await problem(response);
    if (stream) return response;
    return response.status === 204 ? null : response.json();
  }

  async function problem(response) {
    if (response.status === 401) return new Error(t("error.session"));
    let detail = `${response.status} ${response.statusText}`;
    let field = null;
    try {
      const body = await response.json();
      detail = body.detail || detail;
      field = body.field || null;
    } catch (_) { /* not problem+json: keep the status line */ }
    // The API's detail usually names its field already ("stock: no TWSE ...").
    const named = !field || detail.startsWith(`${field}:`);
    return new Error(named ? detail : `${field}: ${detail}`);
  }

  // Server-sent events from a fetch() response: {event, data, id} with data parsed.
  async function* events(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const boundary = /\r?\n\r?\n/;
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let match;
      while ((match = boundary.exec(buffer)) !== null) {
        const block = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
  }

  function parseBlock(block) {
    let event = "message";
    let id = null;
    const lines = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue; // a keepalive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") lines.push(value);
      else if (field === "id") id = value;
    }
    return lines.length ? { event, id, data: JSON.parse(lines.join("\n")) } : null;
  }

  function el(tag, { text, cls, attrs } = {}, children = []) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function showError(node, error) {
    node.textContent = error instanceof Error ? error.message : String(error);
    node.hidden = false;
  }

  function localTimes(root = document) {
    for (const node of root.querySelectorAll("time[datetime]")) {
      const when = new Date(node.dateTime);
      if (!Number.isNaN(when.valueOf())) node.textContent = when.toLocaleString(data.lang);
    }
  }

  const usd = (value) => `$${Number(value).toFixed(6)}`;

  // Suggestions by code or name from GET /v1/stocks. "multi" boxes hold a comma list and
  // complete its last entry.
  function stockSearch(input) {
    const list = input.parentElement.querySelector(".suggestions");
    const multi = input.dataset.stockSearch === "multi";
    const split = (text) => text.split(/[,，、\s]+/);
    let timer = null;
    let asked = 0;
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(lookup, 150);
    });
    input.addEventListener("keydown", (event) => { if (event.key === "Escape") list.hidden = true; });
    input.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 200));

    async function lookup() {
      const query = (multi ? split(input.value).pop() : input.value).trim();
      const mine = ++asked;
      if (!query) { list.hidden = true; return; }
      let found;
      try {
        found = await api("GET", `/v1/stocks?${new URLSearchParams({ q: query, limit: "8" })}`);
      } catch (_) {
        list.hidden = true;
        return;
      }
      if (mine !== asked) return; // a later keystroke asked again
      list.replaceChildren(...found.map(option));
      list.hidden = found.length === 0;
    }

    function option(stock) {
      const button = el("button", { attrs: { type: "button", "data-code": stock.code } }, [
        el("strong", { text: stock.code }), ` ${stock.name} `, el("span", { cls: "hint", text: stock.market }),
      ]);
      button.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus
      button.addEventListener("click", () => choose(stock));
      return el("li", {}, [button]);
    }

    function choose(stock) {
      if (multi) {
        const parts = split(input.value).filter(Boolean);
        parts.pop();
        parts.push(stock.code);
        input.value = `${parts.join(", ")}, `;
      } else {
        input.value = stock.code;
      }
      list.hidden = true;
      input.dispatchEvent(new CustomEvent("stock-chosen", { detail: stock }));
      input.focus();
    }
  }

  document.querySelectorAll("input[data-stock-search]").forEach(stockSearch);
  localTimes();
  return { data, t, api, events, el, showError, localTimes, usd };
})();
