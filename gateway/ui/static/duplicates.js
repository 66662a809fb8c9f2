"use strict";
// The duplicates page: /ui/duplicates?index=..&threshold=..&limit=.. (find_duplicates).
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, clear } = UI;

  async function run(search) {
    const p = UI.params();
    if (p.get("threshold")) $("threshold").value = p.get("threshold");
    if (p.get("limit")) $("limit").value = p.get("limit");
    const index = await UI.fillIndexSelect($("index"), p.get("index") || "");
    UI.linkNav(index);
    const pairs = clear($("pairs"));
    if (!search && !p.get("index")) {
      UI.showStatus($("status"), "Choose an index and a similarity, then find its duplicates.");
      return;
    }
    const threshold = Number($("threshold").value);
    UI.showStatus($("status"), `Looking for pairs at ${threshold} or more in ${index}…`);
    try {
      const answer = await UI.api("find_duplicates", { index, threshold, limit: Number($("limit").value) });
      for (const pair of answer.pairs) {
        pairs.append(
          el(
            "div",
            { class: "pair" },
            side(index, pair.a),
            el("div", { class: "score", text: pair.score.toFixed(4) }),
            side(index, pair.b),
          ),
        );
      }
      UI.showStatus($("status"), `${UI.count(answer.pairs.length, "pair")} at ${threshold} or more in ${index}`);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function side(index, key) {
    const link = el("a", { class: "key", href: `/ui/search?index=${encodeURIComponent(index)}&similar=${encodeURIComponent(key)}`, text: key });
    return el("figure", { class: "side" }, UI.thumbnail(index, key), el("figcaption", {}, link));
  }

  function go() {
    UI.setParams({ index: $("index").value, threshold: $("threshold").value, limit: $("limit").value });
    run(true);
  }

  $("go").addEventListener("click", go);
  $("index").addEventListener("change", go);
  window.addEventListener("popstate", () => run(false));
  run(false);
})();
