"use strict";
// One batch: its counts and items, kept current from GET /v1/batches/{id}/events.
(() => {
  const { data, t, api, el, showError, usd } = AP;
  const root = document.getElementById("batch");
  const id = root.dataset.batchId;
  const badge = document.getElementById("batch-status");
  const progress = document.getElementById("batch-progress");
  const counts = document.getElementById("batch-counts");
  const live = document.getElementById("batch-live");
  const rows = document.querySelector("#batch-items tbody");
  const cancel = document.getElementById("cancel-batch");
  let view = data.batch;
  let pending = null;

  function render() {
    root.dataset.status = view.status;
    badge.className = `badge batch-${view.status}`;
    badge.textContent = t(`batch_status.${view.status}`);
    const c = view.counts;
    progress.max = view.total;
    progress.value = c.done + c.failed + c.cancelled;
    const shown = [
      ["state.queued", c.queued], ["state.running", c.running], ["state.done", c.done],
      ["state.failed", c.failed], ["state.cancelled", c.cancelled],
      ["usage.prompt_tokens", view.prompt_tokens], ["usage.completion_tokens", view.completion_tokens],
      ["col.cost", usd(view.cost_usd)], ["batch.elapsed", `${Math.round(view.elapsed_s)} s`],
      ["batch.eta", view.eta_s === null ? "–" : `${Math.round(view.eta_s)} s`],
    ];
    counts.replaceChildren(...shown.map(([key, value]) => el("div", {}, [el("dt", { text: t(key) }), el("dd", { text: value })])));
    cancel.hidden = view.status !== "running";
    rows.replaceChildren(...view.items.map(row));
  }

  function row(item) {
    const kol = data.kols[item.kol];
    const link = item.state === "queued" ? el("span") : el("a", { text: t("batch.open_post"), attrs: { href: `/ui/posts/${item.post_id}` } });
    return el("tr", { attrs: { "data-item": String(item.item_no), "data-state": item.state } }, [
      el("td", { cls: "num", text: item.item_no }),
      el("td", { text: item.stock }),
      el("td", { text: kol ? `${item.kol} · ${kol}` : item.kol }),
      el("td", {}, [el("span", { cls: `badge item-${item.state}`, text: t(`state.${item.state}`) })]),
      el("td", { cls: "num", text: item.attempts }),
      el("td", { cls: "error", text: item.error || "" }),
      el("td", {}, [link]),
    ]);
  }

  async function refresh() {
    pending = null;
    try {
      view = await api("GET", `/v1/batches/${id}`);
      render();
    } catch (error) {
      showError(live, error);
    }
  }

  function refreshSoon() {
    if (pending === null) pending = setTimeout(refresh, 300);
  }

  function itemEvent(event) {
    const change = JSON.parse(event.data);
    const item = view.items.find((candidate) => candidate.item_no === change.item_no);
    if (item) {
      item.state = event.type === "item.started" ? "running" : change.state;
      item.error = change.error ?? item.error;
      render();
    }
    refreshSoon();
  }

  async function poll() {
    while (!view.finished_at) {
      await new Promise((resolve) => { setTimeout(resolve, 2000); });
      await refresh();
    }
    live.textContent = t("batch.finished");
  }

  function follow() {
    if (!data.live) {
      live.textContent = t("batch.polling");
      poll();
      return;
    }
    const source = new EventSource(`/v1/batches/${id}/events`);
    live.textContent = t("batch.following");
    for (const kind of ["item.started", "item.done", "item.failed"]) source.addEventListener(kind, itemEvent);
    source.addEventListener("batch.done", async () => {
      source.close();
      await refresh();
      live.textContent = t("batch.finished");
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        live.textContent = t("batch.polling");
        poll();
      }
    };
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api("DELETE", `/v1/batches/${id}`);
      await refresh();
    } catch (error) {
      showError(live, error);
    }
    cancel.disabled = false;
  });

  render();
  if (view.finished_at) live.textContent = t("batch.finished");
  else follow();
})();
