// The ranked ballot, enhanced: the numbered selects stay the form (it works without this script); here a
// voter can also drag a candidate by its handle, or press its arrow buttons, and the numbers follow the
// order. Ranked candidates come first, in their order, and unranked ones after them.
(function () {
  "use strict";
  var list = document.getElementById("ranking");
  if (!list) { return; }
  var help = document.querySelector(".js-only");
  if (help) { help.hidden = false; }
  var labels = list.dataset;

  function items() { return Array.prototype.slice.call(list.querySelectorAll(".rank-item")); }
  function selectOf(item) { return item.querySelector("select"); }
  function nameOf(item) { return item.querySelector("label").textContent.trim(); }

  // Ranked items first (in list order), then unranked; ranks renumbered 1, 2, 3... from the top.
  function renumber(alsoRank) {
    var all = items();
    var ranked = all.filter(function (item) { return selectOf(item).value !== "" || item === alsoRank; });
    var unranked = all.filter(function (item) { return ranked.indexOf(item) < 0; });
    ranked.concat(unranked).forEach(function (item) { list.appendChild(item); });
    ranked.forEach(function (item, index) { selectOf(item).value = String(index + 1); });
  }

  // A number chosen in a select puts that candidate at that place.
  function sortBySelects(changed) {
    var all = items();
    var ranked = all.filter(function (item) { return selectOf(item).value !== ""; });
    var wanted = changed && selectOf(changed).value !== "" ? Number(selectOf(changed).value) : null;
    var others = ranked.filter(function (item) { return item !== changed; });
    others.sort(function (a, b) { return Number(selectOf(a).value) - Number(selectOf(b).value); });
    if (wanted !== null) { others.splice(Math.min(wanted - 1, others.length), 0, changed); }
    others.forEach(function (item) { list.appendChild(item); });
    all.filter(function (item) { return others.indexOf(item) < 0; }).forEach(function (item) { list.appendChild(item); });
    renumber(null);
  }

  function move(item, step) {
    var all = items();
    var target = all.indexOf(item) + step;
    if (target < 0 || target >= all.length) { return; }
    if (step < 0) { list.insertBefore(item, all[target]); } else { list.insertBefore(item, all[target].nextSibling); }
    renumber(item);
  }

  function button(text, className, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = text;
    b.setAttribute("aria-label", label);
    return b;
  }

  // The drag listens on the document: moving the item in the list drops any pointer capture on its handle.
  var dragged = null;
  function startDrag(event, item) {
    dragged = item;
    item.classList.add("dragging");
    event.preventDefault();
  }
  function dragMove(event) {
    if (!dragged) { return; }
    var others = items().filter(function (item) { return item !== dragged; });
    var before = null;
    for (var i = 0; i < others.length; i++) {
      var box = others[i].getBoundingClientRect();
      if (event.clientY < box.top + box.height / 2) { before = others[i]; break; }
    }
    list.insertBefore(dragged, before);
  }
  function endDrag() {
    if (!dragged) { return; }
    dragged.classList.remove("dragging");
    var item = dragged;
    dragged = null;
    renumber(item);
    item.querySelector(".handle").focus();
  }

  document.addEventListener("pointermove", dragMove);
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", endDrag);

  items().forEach(function (item) {
    var name = nameOf(item);
    var handle = button("\u2630", "handle", (labels.dragLabel || "Drag %(name)s").replace("%(name)s", name));
    var up = button("\u2191", "move up", (labels.upLabel || "Move %(name)s up").replace("%(name)s", name));
    var down = button("\u2193", "move down", (labels.downLabel || "Move %(name)s down").replace("%(name)s", name));
    item.insertBefore(handle, item.firstChild);
    item.appendChild(up);
    item.appendChild(down);
    handle.addEventListener("pointerdown", function (event) { startDrag(event, item); });
    handle.addEventListener("keydown", function (event) {
      if (event.key === "ArrowUp") { move(item, -1); handle.focus(); event.preventDefault(); }
      if (event.key === "ArrowDown") { move(item, 1); handle.focus(); event.preventDefault(); }
    });
    up.addEventListener("click", function () { move(item, -1); up.focus(); });
    down.addEventListener("click", function () { move(item, 1); down.focus(); });
    selectOf(item).addEventListener("change", function () { sortBySelects(item); });
  });
}());
