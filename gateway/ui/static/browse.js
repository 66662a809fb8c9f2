"use strict";
// The review page: /ui/browse?index=..&page=..&per_page=..&min_rating=..&tags=1,2&hidden=1&open=KEY
// A grid in key order (browse), stars and tag chips; click selects, shift-click selects a
// range; the selection is rated, tagged, untagged, hidden or unhidden in one call.
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, clear } = UI;
  const selected = new Set();
  let items = [];
  let anchor = null; // the last item clicked: shift-click selects from it
  let total = 0;

  function state() {
    const p = UI.params();
    const int = (name, fallback) => {
      const n = parseInt(p.get(name) || "", 10);
      return Number.isFinite(n) ? n : fallback;
    };
    return {
      index: p.get("index") || "",
      page: Math.max(1, int("page", 1)),
      per_page: int("per_page", 24),
      min_rating: int("min_rating", 0),
      tags: (p.get("tags") || "").split(",").filter((t) => /^\d+$/.test(t)).map(Number),
      hidden: p.get("hidden") === "1",
      open: p.get("open") || "",
    };
  }

  function go(changes, push = true) {
    const s = { ...state(), ...changes };
    UI.setParams(
      {
        index: s.index,
        page: s.page > 1 ? s.page : "",
        per_page: s.per_page !== 24 ? s.per_page : "",
        min_rating: s.min_rating || "",
        tags: s.tags.join(","),
        hidden: s.hidden ? "1" : "",
        open: s.open,
      },
      push,
    );
    run();
  }

  function stars(rating) {
    return el("span", { class: "stars", "data-rating": rating, title: `${rating} of 5` }, "★".repeat(rating) + "☆".repeat(5 - rating));
  }

  function chips(tags) {
    return el("span", { class: "chips" }, tags.map((t) => el("span", { class: "chip", "data-tag": t.id, text: t.name })));
  }

  async function showTagFilter(index, s) {
    const box = clear($("tag-filter"));
    let tags = [];
    try {
      tags = (await UI.api("tags", { index })).tags;
    } catch (_) {
      tags = [];
    }
    for (const t of tags) {
      const on = s.tags.includes(t.id);
      const toggle = () => go({ page: 1, tags: on ? s.tags.filter((x) => x !== t.id) : [...s.tags, t.id] });
      box.append(el("button", { type: "button", class: on ? "chip on" : "chip", "data-tag": t.id, onclick: toggle }, `${t.name} (${t.count})`));
    }
  }

  async function run() {
    const s = state();
    $("min-rating").value = String(s.min_rating);
    $("include-hidden").checked = s.hidden;
    $("per-page").value = String(s.per_page);
    s.index = await UI.fillIndexSelect($("index"), s.index);
    UI.linkNav(s.index);
    showTagFilter(s.index, s);
    UI.showStatus($("status"), `Loading page ${s.page} of ${s.index}…`);
    const loading = window.location.search;
    $("items").removeAttribute("data-loaded");
    try {
      const body = { index: s.index, page: s.page, per_page: s.per_page, min_rating: s.min_rating, tag_ids: s.tags, include_hidden: s.hidden };
      const answer = await UI.api("browse", body);
      total = answer.total;
      showItems(s.index, answer.items);
      const pages = Math.max(1, Math.ceil(total / s.per_page));
      $("page-of").textContent = `page ${s.page} of ${pages}`;
      $("prev").disabled = s.page <= 1;
      $("next").disabled = s.page >= pages;
      UI.showStatus($("status"), `${UI.count(total, "item")} in ${s.index}${s.min_rating ? `, rated ${s.min_rating} or more` : ""}${s.tags.length ? `, with ${UI.count(s.tags.length, "tag")}` : ""}`);
      const opened = items.find((it) => it.key === s.open);
      if (opened) showDetails(s.index, opened);
      else $("details").hidden = true;
      if (window.location.search === loading) $("items").setAttribute("data-loaded", loading); // for tests: this URL's page is shown
    } catch (err) {
      showItems(s.index, []);
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function showItems(index, list) {
    items = list;
    const keys = new Set(list.map((it) => it.key));
    for (const key of [...selected]) if (!keys.has(key)) selected.delete(key);
    const grid = clear($("items"));
    list.forEach((item, position) => {
      const card = el(
        "figure",
        { class: `item${item.hidden ? " is-hidden" : ""}${selected.has(item.key) ? " selected" : ""}`, "data-key": item.key, tabindex: "0" },
        UI.thumbnail(index, item.key),
        el(
          "figcaption",
          {},
          el("span", { class: "key", text: item.key }),
          stars(item.rating),
          chips(item.tags),
          item.hidden ? el("span", { class: "badge", text: "hidden" }) : null,
          el("button", { type: "button", class: "open", title: "view", onclick: (e) => { e.stopPropagation(); go({ open: item.key }); } }, "View"),
        ),
      );
      card.addEventListener("click", (event) => pick(position, event.shiftKey));
      grid.append(card);
    });
    updateSelection();
  }

  function pick(position, range) {
    const key = items[position].key;
    if (range && anchor !== null) {
      const [a, b] = [Math.min(anchor, position), Math.max(anchor, position)];
      for (let i = a; i <= b; i++) selected.add(items[i].key);
    } else if (selected.has(key)) selected.delete(key);
    else selected.add(key);
    anchor = position;
    for (const card of document.querySelectorAll("#items .item")) card.classList.toggle("selected", selected.has(card.getAttribute("data-key")));
    updateSelection();
  }

  function updateSelection() {
    $("selection").hidden = selected.size === 0;
    $("selected-count").textContent = `${selected.size} selected`;
  }

  async function act(what, call) {
    const keys = [...selected];
    try {
      const answer = await call(keys);
      UI.showStatus($("status"), `${what}: ${UI.count(answer.updated, "item")}${answer.missing.length ? `, ${answer.missing.length} gone` : ""}`);
      await run();
      UI.showStatus($("status"), `${what}: ${UI.count(answer.updated, "item")}`);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
    }
  }

  function showDetails(index, item) {
    const box = clear($("details"));
    box.hidden = false;
    const similar = `/ui/search?index=${encodeURIComponent(index)}&similar=${encodeURIComponent(item.key)}`;
    box.append(
      el("h2", { class: "key", text: item.key }),
      el("div", { class: "large" }, UI.thumbnail(index, item.key)),
      el("p", {}, stars(item.rating), item.hidden ? el("span", { class: "badge", text: "hidden" }) : null),
      chips(item.tags),
      el("h3", { text: "Metadata" }),
      el("pre", { class: "metadata", text: item.metadata ? JSON.stringify(item.metadata, null, 2) : "(none)" }),
      el("p", {}, el("a", { id: "more-like", href: similar }, "More like this")),
      el("button", { type: "button", id: "close-details", onclick: () => go({ open: "" }) }, "Close"),
    );
  }

  for (let r = 0; r <= 5; r++) {
    const label = r ? "★".repeat(r) : "no rating";
    $("rate-buttons").append(
      el("button", { type: "button", class: "rate", "data-rating": r, title: `rate ${r}`, onclick: () => act(`Rated ${r}`, (keys) => UI.api("set_rating", { index: $("index").value, keys, rating: r })) }, label),
    );
  }
  const tagCall = (field) => (keys) => UI.api("tag_items", { index: $("index").value, keys, [field]: [$("tag-name").value.trim()] });
  $("add-tag").addEventListener("click", () => $("tag-name").value.trim() && act(`Tagged ${$("tag-name").value.trim()}`, tagCall("add")));
  $("remove-tag").addEventListener("click", () => $("tag-name").value.trim() && act(`Untagged ${$("tag-name").value.trim()}`, tagCall("remove")));
  $("hide").addEventListener("click", () => act("Hidden", (keys) => UI.api("tag_items", { index: $("index").value, keys, hidden: true })));
  $("unhide").addEventListener("click", () => act("Shown again", (keys) => UI.api("tag_items", { index: $("index").value, keys, hidden: false })));
  $("clear-selection").addEventListener("click", () => {
    selected.clear();
    for (const card of document.querySelectorAll("#items .item.selected")) card.classList.remove("selected");
    updateSelection();
  });
  $("index").addEventListener("change", () => go({ index: $("index").value, page: 1, tags: [], open: "" }));
  $("min-rating").addEventListener("change", () => go({ page: 1, min_rating: Number($("min-rating").value) }));
  $("include-hidden").addEventListener("change", () => go({ page: 1, hidden: $("include-hidden").checked }));
  $("per-page").addEventListener("change", () => go({ page: 1, per_page: Number($("per-page").value) }));
  $("prev").addEventListener("click", () => go({ page: state().page - 1, open: "" }));
  $("next").addEventListener("click", () => go({ page: state().page + 1, open: "" }));
  window.addEventListener("popstate", () => run());
  run();
})();
