"use strict";
// The analyze page: /ui/analyze?tasks=face,person,caption. Only the tasks this server can
// run are offered (GET /available_operations/ lists those of the served models).
(() => {
  const $ = (id) => document.getElementById(id);
  const { el, clear } = UI;
  let file = null;
  let offered = [];

  // The tasks the page knows how to show, each from one operation of the server.
  function tasksFrom(operations) {
    const tasks = [];
    const box = operations.detect_bounding_box;
    if (box && box.allowed_targets.includes("prominent_person")) {
      tasks.push({ id: "person", label: "Person box", task: { type: "detect_bounding_box", params: { target: "prominent_person" } } });
    }
    if (box && box.allowed_targets.includes("prominent_face")) {
      tasks.push({
        id: "face",
        label: "Face box",
        task: { type: "detect_bounding_box", params: { target: "prominent_face", face_context: "whole_image" } },
      });
    }
    if (operations.describe_image) tasks.push({ id: "caption", label: "Caption", task: { type: "describe_image", params: {} } });
    if (operations.classify) tasks.push({ id: "classify", label: "Classifier", task: { type: "classify", params: {} }, collection: true });
    for (const type of Object.keys(operations).filter((t) => t.startsWith("embed_")).sort()) {
      tasks.push({ id: type, label: `Embedding (${type.slice(6)})`, task: { type, params: {} } });
    }
    return tasks;
  }

  async function setUp() {
    const chosen = new Set((UI.params().get("tasks") || "face,person,caption").split(",").filter(Boolean));
    const fieldset = $("tasks");
    try {
      const { operations } = await UI.getJSON("/available_operations/");
      offered = tasksFrom(operations);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
      return;
    }
    if (!offered.length) fieldset.append(el("p", { text: "This server runs no analysis tasks." }));
    for (const t of offered) {
      const input = el("input", { type: "checkbox", id: `task-${t.id}`, value: t.id, checked: chosen.has(t.id) });
      input.addEventListener("change", remember);
      const label = el("label", { class: "task" }, input, ` ${t.label}`);
      if (t.collection) {
        label.append(" ", el("input", { id: "collection", placeholder: "collection id", value: UI.params().get("collection") || "" }));
      }
      fieldset.append(label);
    }
    UI.linkNav("");
  }

  function checkedTasks() {
    return offered.filter((t) => $(`task-${t.id}`).checked);
  }

  function remember() {
    const collection = $("collection") ? $("collection").value.trim() : "";
    UI.setParams({ tasks: checkedTasks().map((t) => t.id).join(","), collection }, false);
  }

  function showImage(chosen) {
    file = chosen;
    const picture = $("picture");
    if (picture.src) URL.revokeObjectURL(picture.src);
    picture.src = URL.createObjectURL(file);
    $("canvas").hidden = false;
    clear($("overlay"));
    clear($("outputs"));
    $("go").disabled = false;
    UI.showStatus($("status"), `${file.name}: choose the tasks and analyze it.`);
  }

  async function analyze() {
    const tasks = checkedTasks();
    if (!file || !tasks.length) {
      UI.showStatus($("status"), "Choose an image and at least one task.", true);
      return;
    }
    remember();
    const form = new FormData();
    form.append("image", file, file.name);
    const collection = $("collection") ? $("collection").value.trim() : "";
    const sent = tasks.map((t) => {
      const params = { ...t.task.params };
      if (t.collection) params.collection_id = collection;
      return { operation_id: t.id, type: t.task.type, params };
    });
    form.append("tasks", JSON.stringify(sent));
    UI.showStatus($("status"), `Analyzing ${file.name}…`);
    $("go").disabled = true;
    try {
      const answer = await UI.api("analyze", form);
      await showResults(tasks, answer.results);
      UI.showStatus($("status"), `${file.name}: ${UI.count(tasks.length, "task")} done`);
    } catch (err) {
      UI.showStatus($("status"), UI.describeError(err), true);
    } finally {
      $("go").disabled = false;
    }
  }

  async function showResults(tasks, results) {
    const picture = $("picture");
    if (!picture.complete || !picture.naturalWidth) await new Promise((resolve) => picture.addEventListener("load", resolve, { once: true }));
    const overlay = clear($("overlay"));
    overlay.setAttribute("viewBox", `0 0 ${picture.naturalWidth} ${picture.naturalHeight}`);
    const outputs = clear($("outputs"));
    for (const t of tasks) {
      const result = results[t.id];
      if (!result) continue;
      const section = el("section", { class: `output ${result.status}`, id: `output-${t.id}` }, el("h3", { text: t.label }));
      if (result.status !== "success") {
        section.append(el("p", { class: "message", text: `${result.status}: ${result.error_message || ""}` }));
      } else if (t.task.type === "detect_bounding_box") {
        if (!Array.isArray(result.data)) {
          section.append(el("p", { class: "message", text: `no ${t.id} found` }));
        } else {
          drawBox(overlay, t.id, result.data, Math.max(2, picture.naturalWidth / 200));
          section.append(el("p", { class: "bbox", text: `[${result.data.join(", ")}]` }), crop(picture, result.data, t.label));
        }
      } else if (t.task.type === "describe_image") {
        section.append(el("p", { class: "caption", text: result.data }));
      } else if (t.task.type === "classify") {
        const data = result.data || {};
        section.append(
          el("p", { class: "classified", text: `${data.is_in_collection ? "in" : "not in"} the collection (probability ${Number(data.probability).toFixed(3)})` }),
        );
      } else if (Array.isArray(result.data)) {
        const head = result.data.slice(0, 4).map((v) => Number(v).toFixed(4)).join(", ");
        section.append(el("p", { class: "embedding", text: `${result.data.length} values: [${head}, …]` }));
      }
      if (result.cropped_image_base64) {
        section.append(el("img", { class: "crop", alt: `${t.label} crop`, src: `data:image/png;base64,${result.cropped_image_base64}` }));
      }
      outputs.append(section);
    }
  }

  // The box's region of the picture, cut out in the page (the detector answers only the box).
  function crop(picture, bbox, label) {
    const [x0, y0, x1, y1] = bbox.map(Number);
    const canvas = el("canvas", { class: "crop", width: Math.max(1, x1 - x0), height: Math.max(1, y1 - y0), "aria-label": `${label} crop` });
    canvas.getContext("2d").drawImage(picture, x0, y0, x1 - x0, y1 - y0, 0, 0, x1 - x0, y1 - y0);
    return canvas;
  }

  function drawBox(overlay, id, bbox, stroke) {
    if (!Array.isArray(bbox) || bbox.length !== 4) return;
    const [x0, y0, x1, y1] = bbox.map(Number);
    overlay.append(
      el(
        "g",
        { class: `mark ${id}` },
        el("rect", { class: `box ${id}`, x: x0, y: y0, width: x1 - x0, height: y1 - y0, "stroke-width": stroke }),
        el("text", { x: x0 + stroke, y: Math.max(y0 - stroke, 12 * stroke), "font-size": 8 * stroke, text: id }),
      ),
    );
  }

  UI.dropZone($("drop"), $("image"), showImage);
  $("go").addEventListener("click", analyze);
  setUp();
})();
