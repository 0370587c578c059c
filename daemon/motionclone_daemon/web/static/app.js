// The daemon's web page: hash routes (#/, #/job/ID, #/watch, #/health) over the JSON API, live
// progress by server-sent events. Every text from the daemon goes in through textContent (el()),
// never as HTML, so a prompt or a path holding markup shows as text.
"use strict";

const view = document.getElementById("view");
let stream = null; // the current view's EventSource, closed when the view changes

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

async function api(path, options = {}) {
  const answer = await fetch(path, { credentials: "same-origin", ...options });
  const data = await answer.json();
  if (!answer.ok) throw new Error(data.error || answer.statusText);
  return data;
}

function act(path, body = {}) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-MotionClone": "1" },
    body: JSON.stringify(body),
  });
}

function listen(path, kind, handle) {
  if (stream) stream.close();
  stream = new EventSource(path);
  stream.addEventListener(kind, (event) => handle(JSON.parse(event.data)));
}

function seconds(value) {
  if (value < 60) return `${value.toFixed(1)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function timeOf(job) {
  if (job.state === "queued") return job.queue_position ? `queued, #${job.queue_position}` : "queued";
  const end = job.finished_at || Date.now() / 1000;
  return job.started_at ? seconds(end - job.started_at) : "";
}

function bytes(value) {
  return value ? `${(value / 2 ** 20).toFixed(0)} MiB` : "0";
}

function progressBar(job) {
  const bar = el("progress", { max: String(job.total_steps || 1) });
  if (job.total_steps) bar.value = job.step;
  if (job.state === "succeeded") bar.value = bar.max;
  return bar;
}

function energy(value) {
  return value === null || value === undefined ? "" : value.toPrecision(3);
}

// -- the queue ------------------------------------------------------------------------------------

function jobRow(job) {
  return el(
    "tr",
    { id: `job-${job.id}`, "data-state": job.state },
    el("td", { class: `state state-${job.state}`, text: job.state }),
    el("td", { class: "prompt" }, el("a", { href: `#/job/${job.id}`, text: job.prompt })),
    el("td", { text: job.source }),
    el("td", {}, progressBar(job), " ", el("span", { class: "step", text: job.total_steps ? `${job.step}/${job.total_steps}` : job.phase })),
    el("td", { class: "energy", text: energy(job.motion_energy) }),
    el("td", { text: timeOf(job) }),
    el("td", { class: "error", text: job.error }),
  );
}

function showQueue() {
  const body = el("tbody");
  const heads = ["State", "Prompt", "Source", "Progress", "Motion energy", "Time", "Error"];
  view.replaceChildren(
    el("h2", { text: "Queue and history" }),
    el("table", { id: "queue" }, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { text: h })))), body),
  );
  listen("/api/events", "queue", (data) => {
    body.replaceChildren(...data.jobs.map(jobRow));
    if (!data.jobs.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "note", text: "No jobs yet." })));
  });
}

// -- a job --------------------------------------------------------------------------------------------

function figure(caption, media) {
  return el("figure", {}, media, el("figcaption", { text: caption }));
}

function settingsList(settings) {
  const list = el("dl", { class: "settings" });
  for (const [key, value] of Object.entries(settings)) {
    list.append(el("dt", { text: key }), el("dd", { text: typeof value === "string" ? value : JSON.stringify(value) }));
  }
  return list;
}

function actions(job) {
  const seed = el("input", { type: "number", id: "seed", value: String(Math.floor(Math.random() * 2 ** 31)) });
  const message = el("span", { class: "error" });
  const row = el("div", { class: "actions" });
  if (job.state === "queued" || job.state === "running") {
    row.append(el("button", { id: "cancel", text: "Cancel", onclick: () => act(`/api/jobs/${job.id}/cancel`).catch((e) => (message.textContent = e.message)) }));
  }
  const again = () =>
    act(`/api/jobs/${job.id}/again`, { seed: Number(seed.value) })
      .then((made) => (location.hash = `#/job/${made.id}`))
      .catch((e) => (message.textContent = e.message));
  row.append(el("label", { for: "seed", text: "Seed" }), seed, el("button", { id: "again", text: "Run again with this seed", onclick: again }), message);
  return row;
}

function evaluation(job) {
  const scores = job.report.evaluation;
  if (!scores) return [];
  const parts = [el("h3", { text: "Evaluation" })];
  if (scores.error) parts.push(el("p", { class: "error", text: scores.error }));
  if (scores.motion_fidelity !== undefined) parts.push(el("p", { text: `Motion fidelity ${energy(scores.motion_fidelity)}` }));
  if (job.has_sheet) parts.push(el("img", { id: "sheet", src: `/api/jobs/${job.id}/sheet`, alt: "contact sheet" }));
  return parts;
}

function media(job) {
  const box = el("div", { class: "media" });
  if (job.has_result) {
    const result = el("video", { id: "result", src: `/api/jobs/${job.id}/result`, controls: "", loop: "", muted: "", preload: "metadata" });
    box.append(figure("Result", result), figure("Reference", el("video", { id: "reference", src: `/api/jobs/${job.id}/reference`, controls: "", loop: "", muted: "", preload: "metadata" })));
  } else if (job.state === "running" || job.state === "queued") {
    const preview = el("img", { id: "preview", alt: "live preview" });
    if (job.has_preview) preview.src = `/api/jobs/${job.id}/preview?at=${Date.now()}`;
    box.append(figure("Live preview", preview), figure("Reference", el("video", { id: "reference", src: `/api/jobs/${job.id}/reference`, controls: "", loop: "", muted: "", preload: "metadata" })));
  }
  return box;
}

async function showJob(id) {
  const job = await api(`/api/jobs/${encodeURIComponent(id)}`);
  const bar = progressBar(job);
  const step = el("span", { class: "step", text: job.total_steps ? `${job.step}/${job.total_steps}` : job.phase });
  const state = el("span", { id: "state", class: `state state-${job.state}`, text: job.state });
  const download = job.has_result ? [el("a", { id: "download", href: `/api/jobs/${job.id}/result`, download: `${job.id}.mp4`, text: "Download the result" })] : [];
  view.replaceChildren(
    el("h2", { class: "prompt", text: job.prompt }),
    el("p", {}, state, " ", bar, " ", step, " ", el("span", { class: "energy", text: energy(job.motion_energy) ? `motion energy ${energy(job.motion_energy)}` : "" })),
    el("p", { class: "error", text: job.error }),
    actions(job),
    media(job),
    ...download,
    ...evaluation(job),
    el("h3", { text: "Settings" }),
    settingsList({ source: job.source, ...job.settings }),
  );
  if (job.state !== "queued" && job.state !== "running") {
    if (stream) stream.close();
    return;
  }
  listen(`/api/jobs/${job.id}/events`, "progress", (event) => {
    if (["succeeded", "failed", "cancelled"].includes(event.kind)) return showJob(job.id);
    if (event.kind === "started" && state.textContent !== "running") return showJob(job.id);
    if (event.kind === "step") {
      bar.max = event.total_steps;
      bar.value = event.step;
      step.textContent = `${event.step}/${event.total_steps}`;
    }
    const preview = document.getElementById("preview");
    if (event.preview && preview) preview.src = `/api/jobs/${job.id}/preview?step=${event.step}`;
  });
}

// -- watch folders and the daemon -----------------------------------------------------------

async function showWatch() {
  const data = await api("/api/watch");
  const parts = [el("h2", { text: "Watch folders" })];
  if (!data.folders.length) parts.push(el("p", { class: "note", text: "No watch folders (daemon setting watch)." }));
  for (const folder of data.folders) {
    const failed = el("ul", {}, ...folder.failed.map(([name, reason]) => el("li", {}, el("strong", { text: name }), ": ", reason)));
    parts.push(
      el("h3", { text: folder.folder }),
      el("p", { text: `${folder.pending.length} waiting, ${folder.done} done, ${folder.failed.length} failed` }),
      el("ul", {}, ...folder.pending.map((name) => el("li", { text: name }))),
      failed,
      ...folder.problems.map((problem) => el("p", { class: "error", text: problem })),
    );
  }
  view.replaceChildren(...parts);
}

async function showHealth() {
  const data = await api("/api/health");
  const memory = data.memory_total ? `${bytes(data.memory_free)} of ${bytes(data.memory_total)} free` : "system memory";
  const workers = el("table", {}, el("tr", {}, ...["Worker", "State", "Model", "Resident"].map((h) => el("th", { text: h }))));
  for (const worker of data.workers) {
    workers.append(el("tr", {}, el("td", { text: worker.device }), el("td", { text: worker.state }), el("td", { text: worker.loaded ? worker.model : "not loaded" }), el("td", { text: bytes(worker.resident_bytes) })));
  }
  view.replaceChildren(
    el("h2", { text: "The daemon" }),
    el("p", { id: "health", text: data.problems.length ? "Problems:" : "Healthy: no problems." }),
    el("ul", {}, ...data.problems.map((problem) => el("li", { class: "error", text: problem }))),
    el("p", { text: `MotionClone ${data.version}, ${data.device_name} (${memory}); default model ${data.default_model}; ${data.queue_length} job(s) queued.` }),
    workers,
  );
}

// -- routing --------------------------------------------------------------------------------------

function route() {
  if (stream) stream.close();
  stream = null;
  const hash = location.hash.replace(/^#/, "") || "/";
  const job = hash.match(/^\/job\/([A-Za-z0-9_-]+)$/);
  const shown = job ? showJob(job[1]) : hash === "/watch" ? showWatch() : hash === "/health" ? showHealth() : showQueue();
  Promise.resolve(shown).catch((error) => view.replaceChildren(el("p", { class: "error", text: error.message })));
}

window.addEventListener("hashchange", route);
route();
