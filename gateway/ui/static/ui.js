"use strict";
// What every page of the UI shares: calls to the server's APIs (with the API key in a
// header when the server asks for one), thumbnails, the state in the URL, and building the
// page from data. Data is only ever put into the page as text (textContent, attributes),
// never parsed as HTML.
const UI = (() => {
  const KEY_STORE = "image-embed.api-key";
  let pendingKey = null;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElementNS(
      tag === "svg" || tag === "rect" || tag === "text" || tag === "g" ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
      tag,
    );
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name === "className" ? "class" : name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.firstChild.remove();
    return node;
  }

  class ApiError extends Error {
    constructor(status, code, detail) {
      super(`${code}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
      this.status = status;
      this.code = code;
      this.detail = detail;
    }
  }

  // -- the API key ------------------------------------------------------------------------
  function currentKey() {
    return sessionStorage.getItem(KEY_STORE);
  }

  function promptForKey(reason) {
    return new Promise((resolve) => {
      const input = el("input", { type: "password", id: "api-key", autocomplete: "off", placeholder: "API key" });
      const box = el(
        "div",
        { id: "key-prompt", class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "key-title" },
        el(
          "div",
          { class: "dialog" },
          el("h2", { id: "key-title", text: "API key" }),
          el("p", { text: reason }),
          el("p", { class: "hint", text: "It is kept in this tab only (sessionStorage) and sent in the X-API-Key header." }),
          input,
          el("button", { id: "api-key-submit", type: "button", onclick: () => submit() }, "Use this key"),
        ),
      );
      function submit() {
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY_STORE, key);
        box.remove();
        resolve(key);
      }
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") submit();
      });
      document.body.append(box);
      input.focus();
    });
  }

  function needKey(reason) {
    // Many calls may be refused at once (thumbnails): one prompt answers them all.
    if (!pendingKey) pendingKey = promptForKey(reason).finally(() => (pendingKey = null));
    return pendingKey;
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORE);
  }

  async function request(path, init = {}) {
    for (;;) {
      const sent = currentKey();
      const headers = { ...(init.headers || {}) };
      if (sent) headers["X-API-Key"] = sent;
      const response = await fetch(path, { cache: "no-store", ...init, headers, credentials: "same-origin" });
      if (response.status !== 401) return response;
      if (currentKey() === sent) {
        // refused with the key this tab holds (or none): ask for one, then try again
        forgetKey();
        await needKey(sent ? "The server refused that key; enter another." : "This server needs an API key.");
      }
    }
  }

  async function answer(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const code = (body && body.error) || `http_${response.status}`;
      throw new ApiError(response.status, code, (body && body.detail) || response.statusText);
    }
    return body;
  }

  // A BentoML API with a JSON body, or a multipart one (a FormData).
  async function api(name, body) {
    const init = { method: "POST" };
    if (body instanceof FormData) init.body = body;
    else {
      init.body = JSON.stringify(body || {});
      init.headers = { "Content-Type": "application/json" };
    }
    return answer(await request(`/${name}`, init));
  }

  async function getJSON(path) {
    return answer(await request(path));
  }

  // -- what the server serves -------------------------------------------------------------
  let served = null;
  function service() {
    if (!served) served = getJSON("/");
    return served;
  }

  async function indexNames() {
    // /health lists the indexes (and answers 503, with the same body, when a runner is down)
    const response = await request("/health");
    const body = await response.json().catch(() => ({}));
    const indexes = (body.models && body.models.index && body.models.index.indexes) || {};
    return Object.keys(indexes).filter((name) => !name.startsWith("("));
  }

  async function fillIndexSelect(select, current) {
    let names = [];
    try {
      names = await indexNames();
    } catch (_) {
      names = [];
    }
    if (current && !names.includes(current)) names.unshift(current);
    if (!names.length) names = ["default"];
    clear(select);
    for (const name of names) select.append(el("option", { value: name, text: name }));
    select.value = current && names.includes(current) ? current : names[0];
    return select.value;
  }

  // -- thumbnails -------------------------------------------------------------------------
  function thumbnailPath(index, key) {
    return `/thumbnail/${encodeURIComponent(index)}/${encodeURIComponent(key)}`;
  }

  // A box that fills with the item's thumbnail (fetched with the key header, shown from a
  // blob: URL), or with a placeholder when the item has none.
  function thumbnail(index, key) {
    const box = el("div", { class: "thumb loading" });
    request(thumbnailPath(index, key), { cache: "default" }) // the server says how long to keep one
      .then(async (response) => {
        if (!response.ok) throw new Error(`thumbnail: ${response.status}`);
        const url = URL.createObjectURL(await response.blob());
        const img = el("img", { class: "thumb-img", alt: key, src: url });
        img.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
        box.append(img);
      })
      .catch(() => {
        box.classList.add("placeholder");
        box.append(el("span", { class: "placeholder-text", text: "no thumbnail" }));
      })
      .finally(() => box.classList.remove("loading"));
    return box;
  }

  // -- the state in the URL ---------------------------------------------------------------
  function params() {
    return new URLSearchParams(window.location.search);
  }

  function setParams(values, push = true) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(values)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== null && v !== undefined && v !== "") query.append(name, String(v));
      }
    }
    const url = `${window.location.pathname}${query.toString() ? `?${query}` : ""}`;
    if (url !== `${window.location.pathname}${window.location.search}`) {
      (push ? history.pushState : history.replaceState).call(history, null, "", url);
    }
  }

  function linkNav(index) {
    for (const link of document.querySelectorAll("nav a[data-page]")) {
      const page = link.getAttribute("data-page");
      link.setAttribute("href", page === "analyze" || !index ? `/ui/${page}` : `/ui/${page}?index=${encodeURIComponent(index)}`);
      if (window.location.pathname === `/ui/${page}`) link.classList.add("current");
    }
  }

  function count(n, thing) {
    return `${n} ${thing}${n === 1 ? "" : "s"}`;
  }

  function showStatus(node, message, isError = false) {
    node.textContent = message;
    node.classList.toggle("error", isError);
  }

  function describeError(err) {
    return err instanceof ApiError ? err.message : `${err && err.name ? err.name : "Error"}: ${err && err.message}`;
  }

  // A metadata filter typed as `album=pets, year=2023` (values read as JSON when they are:
  // numbers, true/false, null, "quoted"), or a JSON object.
  function parseFilter(text) {
    const trimmed = (text || "").trim();
    if (!trimmed) return null;
    if (trimmed.startsWith("{")) {
      const value = JSON.parse(trimmed);
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("the filter must be a JSON object");
      return value;
    }
    const filter = {};
    for (const part of trimmed.split(",")) {
      const eq = part.indexOf("=");
      if (eq < 1) throw new Error(`"${part.trim()}" is not field=value`);
      const field = part.slice(0, eq).trim();
      const raw = part.slice(eq + 1).trim();
      let value = raw;
      try {
        value = JSON.parse(raw);
      } catch (_) {
        value = raw;
      }
      filter[field] = value;
    }
    return filter;
  }

  function dropZone(zone, input, onFile) {
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) onFile(file);
    });
    input.addEventListener("change", () => {
      if (input.files[0]) onFile(input.files[0]);
    });
  }

  return {
    ApiError, api, clear, count, currentKey, describeError, dropZone, el, fillIndexSelect, forgetKey, getJSON, linkNav,
    params, parseFilter, request, service, setParams, showStatus, thumbnail, thumbnailPath,
  };
})();
