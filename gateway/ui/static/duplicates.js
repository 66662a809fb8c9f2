"use strict";
// The duplicates page: /ui/duplicates?index=..&method=clip&threshold=..&limit=..
// or &method=phash&max_distance=.. (find_duplicates). CLIP shows pairs side by side; the
// perceptual hash shows groups, where "keep this" hides every other item of the group.
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, clear } = UI;

  function showMethod() {
    const phash = $("method").value === "phash";
    $("threshold-label").hidden = phash;
    $("distance-label").hidden = !phash;
  }

  async function run(search) {
    const p = UI.params();
    for (const [param, id] of [["threshold", "threshold"], ["limit", "limit"], ["method", "method"], ["max_distance", "max-distance"]]) {
      if (p.get(param)) $(id).value = p.get(param);
    }
    showMethod();
    const index = await UI.fillIndexSelect($("index"), p.get("index") || "");
    UI.linkNav(index);
    const pairs = clear($("pairs"));
    if (!search && !p.get("index")) {
      UI.showStatus($("status"), "Choose an index and a method, then find its duplicates.");
      return;
    }
    const method = $("method").value;
    const body = { index, method, limit: Number($("limit").value) };
    if (method === "phash") body.max_distance = Number($("max-distance").value);
    else body.threshold = Number($("threshold").value);
    const what = method === "phash" ? `${body.max_distance} bits apart or less` : `${body.threshold} or more`;
    UI.showStatus($("status"), `Looking for duplicates at ${what} in ${index}…`);
    try {
      const answer = await UI.api("find_duplicates", body);
      if (method === "phash") {
        for (const group of answer.groups) pairs.append(groupOf(index, group));
        UI.showStatus($("status"), `${UI.count(answer.groups.length, "group")} at ${what} in ${index}`);
        return;
      }
      for (const pair of answer.pairs) {
        pairs.append(el("div", { class: "pair" }, side(index, pair.a), el("div", { class: "score", text: pair.score.toFixed(4) }), side(index, pair.b)));
      }
      UI.showStatus($("status"), `${UI.count(answer.pairs.length, "pair")} at ${what} in ${index}`);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function side(index, key, ...extra) {
    const link = el("a", { class: "key", href: `/ui/search?index=${encodeURIComponent(index)}&similar=${encodeURIComponent(key)}`, text: key });
    return el("figure", { class: "side", "data-key": key }, UI.thumbnail(index, key), el("figcaption", {}, link, ...extra));
  }

  function groupOf(index, group) {
    const keys = group.items.map((it) => it.key);
    const box = el("div", { class: "group" });
    for (const it of group.items) {
      const keep = el("button", { type: "button", class: "keep", onclick: () => keepOnly(index, it.key, keys) }, "Keep this, hide the others");
      box.append(side(index, it.key, el("span", { class: "score", text: ` ${it.distance} bits` }), el("br"), keep));
    }
    return box;
  }

  async function keepOnly(index, keep, keys) {
    try {
      const answer = await UI.api("tag_items", { index, keys: keys.filter((k) => k !== keep), hidden: true });
      await run(true);
      UI.showStatus($("status"), `Kept ${keep}; hid ${UI.count(answer.updated, "item")} (the browse page shows them with “show hidden”)`);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function go() {
    const phash = $("method").value === "phash";
    UI.setParams({
      index: $("index").value,
      method: phash ? "phash" : "",
      threshold: phash ? "" : $("threshold").value,
      max_distance: phash ? $("max-distance").value : "",
      limit: $("limit").value,
    });
    run(true);
  }

  $("go").addEventListener("click", go);
  $("index").addEventListener("change", go);
  $("method").addEventListener("change", showMethod);
  window.addEventListener("popstate", () => run(false));
  run(false);
})();
