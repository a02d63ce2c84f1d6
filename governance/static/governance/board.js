// The board page's live preview: as a director edits the draft policy, ask the server (which prices with
// the same rules as real trips) for sample fares under the policy in force and under the draft.
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function money(value) {
    var sign = value.amount < 0 ? "-" : "";
    var cents = Math.abs(value.amount);
    return sign + "$" + Math.floor(cents / 100) + "." + String(cents % 100).padStart(2, "0");
  }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function render(table, samples) {
    var body = table.querySelector("tbody");
    body.replaceChildren();
    samples.forEach(function (sample) {
      var row = document.createElement("tr");
      row.appendChild(cell(sample.label));
      ["current", "proposed"].forEach(function (side) {
        var other = side === "current" ? "proposed" : "current";
        ["fare", "driver_pay", "coop"].forEach(function (key) {
          var changed = sample[side][key].amount !== sample[other][key].amount;
          var td = cell(money(sample[side][key]), side === "proposed" && changed ? "changed" : "");
          td.dataset.side = side;
          td.dataset.key = key;
          row.appendChild(td);
        });
      });
      body.appendChild(row);
    });
  }

  function setup(form) {
    var table = document.getElementById("preview");
    var errors = document.getElementById("preview-errors");
    var timer = null;
    var sequence = 0;

    function refresh() {
      var fields = {};
      form.querySelectorAll("[data-policy-field]").forEach(function (input) {
        fields[input.name] = input.value;
      });
      var mine = ++sequence;
      fetch(form.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(form) },
        body: JSON.stringify({ fields: fields }),
      })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (mine !== sequence) return; // a newer edit is already on its way
          if (answer.ok) {
            errors.hidden = true;
            table.classList.remove("stale");
            render(table, answer.samples);
          } else {
            errors.hidden = false;
            errors.textContent = Object.keys(answer.errors)
              .map(function (field) { return field + ": " + [].concat(answer.errors[field]).join("; "); })
              .join(" | ");
            table.classList.add("stale");
          }
          table.dataset.ready = String(mine);
        })
        .catch(function () {
          errors.hidden = false;
          // The page carries the message in its own language (the template translates it).
          errors.textContent = errors.dataset.unavailable || "The preview is unavailable right now.";
        });
    }

    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 200);
    });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("proposal-form");
    if (form) setup(form);
  });
})();
