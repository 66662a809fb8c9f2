"use strict";
// The search page: /ui/search?index=..&q=.. (text), &similar=KEY (more like one item),
// &like=K1&like=K2 (more like several: their centroid), &filter=..&min_score=..&top_k=..
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, clear } = UI;
  const selected = new Set();
  let hits = [];
  let imageFile = null;

  function state() {
    const p = UI.params();
    return {
      index: p.get("index") || "",
      q: p.get("q") || "",
      similar: p.get("similar") || "",
      like: p.getAll("like"),
      filter: p.get("filter") || "",
      min_score: p.get("min_score") || "",
      top_k: p.get("top_k") || "",
    };
  }

  function options(s) {
    const body = { index: s.index, top_k: Number(s.top_k || $("top-k").value || 24) };
    const filter = UI.parseFilter(s.filter);
    if (filter) body.filter = filter;
    if (s.min_score !== "") body.min_score = Number(s.min_score);
    return body;
  }

  function controlsFrom(s) {
    $("q").value = s.q;
    $("filter").value = s.filter;
    $("min-score").value = s.min_score;
    if (s.top_k) $("top-k").value = s.top_k;
    if (s.filter || s.min_score) $("filters").open = true;
  }

  function formState(extra) {
    return {
      index: $("index").value,
      filter: $("filter").value.trim(),
      min_score: $("min-score").value,
      top_k: $("top-k").value === "24" ? "" : $("top-k").value,
      ...extra,
    };
  }

  async function showStats(index) {
    const box = clear($("stats"));
    try {
      const s = await UI.api("index_stats", { index });
      const details = s.details || {};
      const facts = [
        ["items", s.count],
        ["dimension", s.dimension],
        ["model", s.model],
        ["search", s.index_type],
        ["back end", details.backend],
        ["on disk", `${(s.bytes_on_disk / 1048576).toFixed(1)} MiB`],
      ];
      for (const [name, value] of facts) {
        if (value === undefined || value === null) continue;
        box.append(el("span", { class: "fact" }, el("span", { class: "name", text: name }), el("span", { class: "value", text: value })));
      }
    } catch (err) {
      box.append(el("span", { class: "fact error", text: UI.describeError(err) }));
    }
  }

  async function run() {
    const s = state();
    controlsFrom(s);
    s.index = await UI.fillIndexSelect($("index"), s.index);
    UI.linkNav(s.index);
    showStats(s.index);
    let what = null;
    let call = null;
    try {
      const body = options(s);
      if (s.like.length) {
        what = `more like ${UI.count(s.like.length, "selected item")}`;
        call = () => UI.api("similar", { ...body, keys: s.like });
      } else if (s.similar) {
        what = `more like ${s.similar}`;
        call = () => UI.api("similar", { ...body, key: s.similar });
      } else if (s.q) {
        what = `“${s.q}”`;
        call = () => UI.api("search_text", { ...body, query: s.q });
      } else if (imageFile) {
        what = `the image ${imageFile.name}`;
        call = () => {
          const form = new FormData();
          form.append("image", imageFile, imageFile.name);
          for (const [name, value] of Object.entries(body)) form.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
          return UI.api("search_image", form);
        };
      }
    } catch (err) {
      UI.showStatus($("status"), `Bad filter: ${err.message}`, true);
      return;
    }
    if (!call) {
      UI.showStatus($("status"), "Type a text, drop an image, or open an item's “more like this”.");
      showHits(s.index, []);
      return;
    }
    UI.showStatus($("status"), `Searching ${s.index} for ${what}…`);
    try {
      const answer = await call();
      showHits(s.index, answer.results);
      UI.showStatus($("status"), `${UI.count(answer.results.length, "result")} for ${what} in ${s.index}`);
    } catch (err) {
      showHits(s.index, []);
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function showHits(index, results) {
    hits = results;
    selected.clear();
    updateSelection();
    $("details").hidden = true;
    const grid = clear($("results"));
    for (const hit of results) {
      const pick = el("input", { type: "checkbox", class: "pick", "aria-label": `select ${hit.key}` });
      pick.addEventListener("change", () => {
        if (pick.checked) selected.add(hit.key);
        else selected.delete(hit.key);
        updateSelection();
      });
      const card = el(
        "figure",
        { class: "hit", "data-key": hit.key },
        pick,
        el("button", { type: "button", class: "open", title: hit.key, onclick: () => showDetails(index, hit) }, UI.thumbnail(index, hit.key)),
        el("figcaption", {}, el("span", { class: "key", text: hit.key }), el("span", { class: "score", text: hit.score.toFixed(3) })),
      );
      grid.append(card);
    }
  }

  function updateSelection() {
    $("selection").hidden = selected.size === 0;
    $("selected-count").textContent = `${selected.size} selected`;
  }

  async function showDetails(index, hit) {
    const box = clear($("details"));
    box.hidden = false;
    box.append(
      el("h2", { class: "key", text: hit.key }),
      UI.thumbnail(index, hit.key),
      el("p", {}, "score ", el("span", { class: "score", text: hit.score.toFixed(4) })),
      el("h3", { text: "Metadata" }),
      el("pre", { class: "metadata", text: hit.metadata ? JSON.stringify(hit.metadata, null, 2) : "(none)" }),
    );
    const source = el("p", { class: "source" });
    box.append(source);
    box.append(
      el("button", { type: "button", id: "more-like", onclick: () => go({ similar: hit.key }) }, "More like this"),
    );
    try {
      const got = await UI.api("get", { index, keys: [hit.key] });
      const item = got.items && got.items[0];
      if (item && item.source) source.append("indexed from ", el("code", { text: item.source }));
    } catch (_) {
      /* the details stay without the source */
    }
  }

  function go(extra) {
    imageFile = null;
    UI.setParams(formState(extra));
    run();
  }

  $("go").addEventListener("click", () => go({ q: $("q").value.trim() }));
  $("q").addEventListener("keydown", (event) => {
    if (event.key === "Enter") go({ q: $("q").value.trim() });
  });
  $("index").addEventListener("change", () => go({ q: $("q").value.trim() }));
  $("by-selection").addEventListener("click", () => go({ like: [...selected] }));
  $("clear-selection").addEventListener("click", () => {
    selected.clear();
    for (const box of document.querySelectorAll("#results .pick")) box.checked = false;
    updateSelection();
  });
  UI.dropZone($("drop"), $("image"), (file) => {
    UI.setParams(formState({}));
    imageFile = file;
    run();
  });
  window.addEventListener("popstate", () => {
    imageFile = null;
    run();
  });
  run();
})();
