"use strict";
// The plan form: POST /v1/batches, then the batch's own page follows it.
(() => {
  const { t, api, showError } = AP;
  const form = document.getElementById("batch-form");
  const fields = form.elements;
  const errorBox = document.getElementById("batch-error");
  const submit = document.getElementById("create-batch");

  function plan() {
    const kols = [...form.querySelectorAll("input[name=kols]:checked")].map((box) => Number(box.value));
    const body = {
      stocks: fields.stocks.value.split(/[,，、\s]+/).filter(Boolean), kols,
      assignment: fields.assignment.value, posting_type: fields.posting_type.value,
      max_words: Number(fields.max_words.value), variants: Number(fields.variants.value),
      speed_mode: fields.speed_mode.checked,
    };
    if (fields.seed.value !== "") body.seed = Number(fields.seed.value);
    if (fields.backend.value) body.backend = fields.backend.value;
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const body = plan();
    if (body.kols.length === 0) {
      showError(errorBox, t("batches.pick_kol"));
      return;
    }
    submit.disabled = true;
    try {
      const view = await api("POST", "/v1/batches", { plan: body });
      window.location.assign(`/ui/batches/${view.batch_id}`);
    } catch (error) {
      showError(errorBox, error);
      submit.disabled = false;
    }
  });
})();
