// The drawing page: strokes on a canvas (Pointer Events: mouse, touch, pen), read by POST /api/read.
// Plain JavaScript, no libraries, nothing loaded from elsewhere: the page works offline.
//
// Strokes are kept in CSS pixels and painted onto a canvas whose backing store has devicePixelRatio
// times as many pixels, so lines stay sharp on HiDPI screens. What is sent is that backing store as a
// PNG (canvas.toBlob: the canvas's own pixels, never a screen grab); the boxes that come back are in
// those pixels and are divided by the same scale to sit over the drawing.
//
// Corrections (server started with --learn): click a digit, then type the right digit or click it in the
// probability list. The page shows it at once and sends POST /api/corrections with the image it read and the
// text with that digit set and the others '?'; the server stores it and adapts in the background, and the
// page polls GET /api/profile for the status line. When a drawing is cleared, its last reading's digit count
// goes to POST /api/profile/readings (counts only): with the corrections, the error rate in use.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d"), board = $("board"), overlay = $("overlay"), photo = $("photo");
const LIVE_DELAY_MS = 350;   // a reading starts this long after the last stroke ends

const state = {
  strokes: [],          // [{width, points: [[x, y], ...]}] in CSS pixels
  drawing: null,        // the stroke under the pointer
  pointerId: null,
  version: 0,           // bumped on every change of what is shown; stale answers are dropped
  timer: null,
  mode: "draw",         // "draw" or "photo" (an uploaded image)
  file: null,           // the uploaded file (kept to re-read it with another model)
  sentScale: 1,         // CSS pixels per pixel of the image that was sent
  readings: null,       // {model: reading} of the last answer
  shown: null,          // the model whose reading is shown
  selected: 0,          // index of the digit whose probabilities are shown
  models: null,
  sentBlob: null,       // the image of the last reading (a correction sends it again)
  corrections: {},      // {digit index: right digit} of the reading shown
  countable: null,      // {digits, adapted} of the finished drawing's last reading, counted when it is cleared
  learn: false,         // the server takes corrections (serve.py --learn)
  learnHint: "",
  profile: null,        // the last GET /api/profile
  poll: null,
};

// ------------------------------------------------------------------------------------ canvas
function resizeCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(pad.clientWidth * dpr)), h = Math.max(1, Math.round(pad.clientHeight * dpr));
  if (pad.width !== w || pad.height !== h) {
    pad.width = w;
    pad.height = h;
    redraw();
    if (state.mode === "draw" && state.strokes.length) scheduleRead(0);
  }
  if (state.mode === "photo") placePhoto();
}

function redraw() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#ffffff";                 // an opaque white sheet: the PNG has no transparency to guess
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.setTransform(pad.width / pad.clientWidth, 0, 0, pad.height / pad.clientHeight, 0, 0);
  for (const s of state.strokes) paintStroke(s, 0);
}

function paintStroke(s, from) {
  ctx.strokeStyle = ctx.fillStyle = "#111111";
  ctx.lineWidth = s.width;
  ctx.lineCap = ctx.lineJoin = "round";
  const p = s.points;
  if (p.length === 1) {                     // a dot
    ctx.beginPath();
    ctx.arc(p[0][0], p[0][1], s.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  const start = Math.max(0, from - 1);
  ctx.moveTo(p[start][0], p[start][1]);
  for (let i = start + 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
  ctx.stroke();
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

pad.addEventListener("pointerdown", (e) => {
  if (state.drawing || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  if (state.mode === "photo") leavePhoto();
  clearTimeout(state.timer);
  pad.setPointerCapture(e.pointerId);
  state.pointerId = e.pointerId;
  state.drawing = { width: Number($("brush").value), points: [point(e)] };
  state.strokes.push(state.drawing);
  changed();
  paintStroke(state.drawing, 0);
});

pad.addEventListener("pointermove", (e) => {
  if (!state.drawing || e.pointerId !== state.pointerId) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  const from = state.drawing.points.length;
  for (const ev of (events.length ? events : [e])) state.drawing.points.push(point(ev));
  paintStroke(state.drawing, from);
});

function endStroke(e) {
  if (!state.drawing || e.pointerId !== state.pointerId) return;
  if (e.type === "pointerup") state.drawing.points.push(point(e));
  state.drawing = null;
  state.pointerId = null;
  redraw();
  scheduleRead(LIVE_DELAY_MS);
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

// ------------------------------------------------------------------------------------ actions
function changed() {
  state.version++;
  showReadings(null);
  $("hint").hidden = state.strokes.length > 0 || state.mode === "photo";
}

function undo() {
  if (state.mode === "photo") { leavePhoto(); scheduleRead(0); return; }
  if (state.drawing || !state.strokes.length) return;
  state.strokes.pop();
  if (!state.strokes.length) state.countable = null;
  redraw();
  changed();
  if (state.strokes.length) scheduleRead(0); else setStatus("Nothing drawn.");
}

function clearAll() {
  if (state.drawing) return;
  countFinished();
  state.strokes = [];
  if (state.mode === "photo") leavePhoto();
  redraw();
  changed();
  setStatus("Cleared.");
}

function scheduleRead(delay) {
  clearTimeout(state.timer);
  state.timer = setTimeout(readNow, delay);
}

async function readNow() {
  clearTimeout(state.timer);
  if (state.drawing) return;
  let blob, scale;
  if (state.mode === "photo") {
    blob = state.file;
    scale = photo.clientWidth / (photo.naturalWidth || 1);
  } else {
    if (!state.strokes.length) { showReadings(null); setStatus("Nothing drawn."); return; }
    blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    scale = pad.clientWidth / pad.width;
  }
  const version = state.version, model = $("model").value;
  const all = model === "all";
  const form = new FormData();
  form.append("image", blob, state.mode === "photo" ? (state.file.name || "upload") : "drawing.png");
  const url = all ? "/api/compare" : "/api/read?probabilities=1" + (model ? "&model=" + encodeURIComponent(model) : "");
  setStatus("Reading…");
  let answer, ok;
  try {
    const r = await fetch(url, { method: "POST", body: form });
    ok = r.ok;
    answer = await r.json().catch(() => ({ error: `server answered ${r.status} without JSON` }));
  } catch (err) {
    ok = false;
    answer = { error: "cannot reach the server (" + err.message + ")" };
  }
  if (version !== state.version) return;    // the drawing changed meanwhile: a newer reading will come
  if (!ok) { showReadings(null); setStatus(answer.error || "error", true); return; }
  state.sentScale = scale;
  state.sentBlob = blob;
  const readings = all ? answer.readings : { [answer.model]: answer };
  const shown = all ? (state.models && readings[state.models.default] ? state.models.default : Object.keys(readings)[0])
                    : answer.model;
  showReadings(readings, shown);
  const r = readings[shown];
  state.countable = r && r.digits.length ? { digits: r.digits.length, adapted: !!r.adapted } : null;
  setStatus(r ? `${r.digits.length} digit${r.digits.length === 1 ? "" : "s"} read by ${shown}` : "no model available");
  document.body.dataset.reads = String(Number(document.body.dataset.reads) + 1);
}

// ------------------------------------------------------------------------------------ results
function showReadings(readings, shown) {
  state.readings = readings;
  state.shown = readings ? shown : null;
  state.selected = 0;
  state.corrections = {};
  render();
}

function current() {
  return state.readings && state.readings[state.shown];
}

// what a digit shows: the user's correction, else the digit read ('?' when uncertain)
function shownLabel(d, i) {
  if (i in state.corrections) return String(state.corrections[i]);
  return d.uncertain ? "?" : String(d.digit);
}

function shownText(r) {
  const lines = {};
  r.digits.forEach((d, i) => { (lines[d.line] = lines[d.line] || []).push(shownLabel(d, i)); });
  return Object.keys(lines).sort((a, b) => a - b).map((k) => lines[k].join("")).join("\n");
}

function render() {
  const r = state.readings && state.readings[state.shown];
  const num = $("number");
  const text = r ? (Object.keys(state.corrections).length ? shownText(r) : r.text) : "";
  num.textContent = text || "—";
  num.dataset.text = text;
  num.dataset.read = r ? r.text : "";
  num.classList.toggle("empty", !(r && r.text));
  $("meta").textContent = r ? `${r.model} · ${r.ms.toFixed(1)} ms` + (r.adapted ? " · your handwriting" : "") : "";
  renderBoxes(r);
  renderChips(r);
  renderBars(r);
  renderCompare();
}

function renderBoxes(r) {
  overlay.replaceChildren();
  if (!r) return;
  const s = state.sentScale;
  const ox = state.mode === "photo" ? photo.offsetLeft : 0, oy = state.mode === "photo" ? photo.offsetTop : 0;
  r.digits.forEach((d, i) => {
    const [x, y, w, h] = d.box;
    const box = document.createElement("div");
    const fixed = i in state.corrections;
    box.className = "box" + (d.uncertain && !fixed ? " uncertain" : "") + (fixed ? " corrected" : "") +
                    (i === state.selected ? " selected" : "");
    box.style.left = `${ox + x * s}px`;
    box.style.top = `${oy + y * s}px`;
    box.style.width = `${w * s}px`;
    box.style.height = `${h * s}px`;
    if (oy + y * s < 22) box.classList.add("low");   // no room above: label below the box
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = fixed ? `${shownLabel(d, i)} ✓` : `${shownLabel(d, i)} ${(100 * d.confidence).toFixed(0)}%`;
    tag.title = fixed ? `you corrected this ${d.digit} to ${state.corrections[i]}`
                      : "show the probabilities of this digit" + (state.learn ? ", then type the right digit" : "");
    tag.addEventListener("click", () => select(i));
    box.appendChild(tag);
    overlay.appendChild(box);
  });
}

function renderChips(r) {
  const chips = $("chips");
  chips.replaceChildren();
  if (!r) return;
  r.digits.forEach((d, i) => {
    const b = document.createElement("button");
    b.type = "button";
    const fixed = i in state.corrections;
    b.className = "chip" + (d.uncertain && !fixed ? " uncertain" : "") + (fixed ? " corrected" : "") +
                  (i === state.selected ? " selected" : "");
    b.textContent = shownLabel(d, i);
    const small = document.createElement("small");
    small.textContent = fixed ? "✓ corrected" : `${(100 * d.confidence).toFixed(1)}%`;
    b.appendChild(small);
    b.title = `digit ${i + 1}: top 3 ` + d.top3.map(([k, p]) => `${k} ${(100 * p).toFixed(1)}%`).join(", ");
    b.addEventListener("click", () => select(i));
    chips.appendChild(b);
  });
}

function renderBars(r) {
  const d = r && r.digits[state.selected];
  $("bars").hidden = !d;
  if (!d) return;
  $("bars-title").textContent = `Digit ${state.selected + 1} of ${r.digits.length}: probabilities (${r.model})`;
  $("bars").classList.toggle("learn", state.learn);
  const chosen = state.corrections[state.selected];
  const rows = $("bars-rows");
  rows.replaceChildren();
  const probs = d.probabilities || (() => {           // answers without probabilities carry the top 3
    const p = new Array(10).fill(0);
    d.top3.forEach(([k, v]) => { p[k] = v; });
    return p;
  })();
  probs.forEach((p, k) => {
    const row = document.createElement("div");
    row.className = "bar-row" + (k === d.digit ? " top" : "") + (k === chosen ? " chosen" : "");
    row.dataset.digit = String(k);
    row.title = state.learn ? `it is a ${k}: correct this digit` : state.learnHint;
    row.addEventListener("click", () => correct(state.selected, k));
    const label = document.createElement("span");
    label.textContent = String(k);
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * p).toFixed(2)}%`;
    bar.appendChild(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(label, bar, pct);
    rows.appendChild(row);
  });
}

function renderCompare() {
  const table = $("compare"), body = table.tBodies[0];
  const names = state.readings ? Object.keys(state.readings) : [];
  table.hidden = names.length < 2;
  body.replaceChildren();
  for (const n of names) {
    const r = state.readings[n];
    const tr = document.createElement("tr");
    tr.dataset.model = n;
    if (n === state.shown) tr.className = "shown";
    const mean = r.digits.length ? r.digits.reduce((a, d) => a + d.confidence, 0) / r.digits.length : 0;
    for (const [cls, text] of [["", n], ["reads", r.text || "—"],
                               ["", r.digits.length ? `${(100 * mean).toFixed(1)}%` : ""], ["", r.ms.toFixed(1)]]) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => { state.shown = n; render(); });
    body.appendChild(tr);
  }
}

function select(i) {
  state.selected = i;
  render();
}

// ------------------------------------------------------------------------------------ corrections
async function correct(i, k) {
  const r = current();
  if (!r || !r.digits[i] || !state.sentBlob) return;
  if (!state.learn) { setStatus(state.learnHint || "corrections are off", true); return; }
  if (state.corrections[i] === k) return;
  const version = state.version;
  state.corrections[i] = k;
  state.selected = i;
  render();
  const form = new FormData();
  form.append("image", state.sentBlob, state.mode === "photo" ? (state.file.name || "upload") : "drawing.png");
  form.append("text", r.digits.map((_, j) => (j === i ? String(k) : "?")).join(""));
  form.append("model", r.model);
  setStatus(`Storing: digit ${i + 1} is a ${k}…`);
  let answer, ok;
  try {
    const resp = await fetch("/api/corrections", { method: "POST", body: form });
    ok = resp.ok;
    answer = await resp.json().catch(() => ({ error: `server answered ${resp.status} without JSON` }));
  } catch (err) {
    ok = false;
    answer = { error: "cannot reach the server (" + err.message + ")" };
  }
  if (!ok) {
    if (version === state.version && state.corrections[i] === k) { delete state.corrections[i]; render(); }
    setStatus("Correction not stored: " + (answer.error || "error"), true);
    return;
  }
  document.body.dataset.corrections = String(Number(document.body.dataset.corrections) + answer.stored.length);
  setStatus(`Stored: digit ${i + 1} is a ${k}. Learning from your corrections…`);
  pollProfile();
}

function pollProfile() {
  clearTimeout(state.poll);
  let tries = 0;
  const tick = async () => {
    const info = await loadProfile();
    tries++;
    if (info && !info.adapting) { setStatus(info.status); return; }
    if (tries < 90) state.poll = setTimeout(tick, 700);
  };
  state.poll = setTimeout(tick, 400);
}

function countFinished() {
  const c = state.countable;
  state.countable = null;
  if (!c || !state.learn) return;
  fetch("/api/profile/readings", { method: "POST", headers: { "Content-Type": "application/json" },
                                   body: JSON.stringify(c), keepalive: true }).catch(() => {});
}

async function loadProfile() {
  let info;
  try {
    const r = await fetch("/api/profile" + (state.shown ? "?model=" + encodeURIComponent(state.shown) : ""));
    info = await r.json();
    if (!r.ok) info = { profile: null, learn: false, status: info.error || `server answered ${r.status}` };
  } catch (err) {
    return null;
  }
  state.profile = info;
  state.learn = !!info.learn;
  state.learnHint = info.learn ? "" : (info.profile === null
    ? "Corrections are off: " + info.status
    : "Corrections are off: start the server with --learn (python serve.py --learn) to teach it your handwriting.");
  renderProfile(info);
  return info;
}

function renderProfile(info) {
  $("learn-hint").hidden = state.learn;
  $("learn-hint").textContent = state.learnHint;
  $("profile-status").textContent = info.status || "";
  $("forget").disabled = !state.learn;
  $("forget").title = state.learn ? "Delete the corrections it learned from (a copy is exported first)" : state.learnHint;
  const body = $("profile-figures").tBodies[0];
  body.replaceChildren();
  const pct = (x) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}%`);
  const rows = info.profile === null ? [] : [
    ["corrections", `${info.corrections} (${info.corrected_digits} misread)`],
    ["error rate before", `${pct(info.before_adaptation.error_rate)} of ${info.before_adaptation.digits} digits`],
    ["with adaptation", `${pct(info.with_adaptation.error_rate)} of ${info.with_adaptation.digits} digits`],
  ];
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = k;
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(th, td);
    body.appendChild(tr);
  }
  body.parentElement.dataset.corrections = info.profile === null ? "" : String(info.corrections);
  const conf = info.confusions || [];
  $("profile-confusions").textContent = conf.length
    ? "Most often misread: " + conf.map((c) => `your ${c.label} read as ${c.read} (${c.count}×)`).join(", ") : "";
}

async function forget() {
  if (!state.learn) { setStatus(state.learnHint, true); return; }
  if (!window.confirm("Forget my handwriting?\n\nThe corrections it learned from are deleted (a copy is exported " +
                      "beside the profile first) and it reads with the shipped models again.")) return;
  try {
    const r = await fetch("/api/profile", { method: "DELETE" });
    const a = await r.json();
    if (!r.ok) { setStatus("Not reset: " + a.error, true); return; }
    setStatus(`Forgot ${a.forgotten} correction${a.forgotten === 1 ? "" : "s"}` +
              (a.export ? `; a copy is in ${a.export}` : "."));
  } catch (err) {
    setStatus("cannot reach the server (" + err.message + ")", true);
  }
  await loadProfile();
}

function setStatus(text, error = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

// ------------------------------------------------------------------------------------ upload
function enterPhoto(file) {
  countFinished();
  state.mode = "photo";
  state.file = file;
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.onload = () => { placePhoto(); changed(); scheduleRead(0); };
  photo.onerror = () => { changed(); scheduleRead(0); };   // the browser cannot show it: the server says why
  photo.src = URL.createObjectURL(file);
  photo.hidden = false;
  pad.hidden = true;
}

function placePhoto() {
  const bw = board.clientWidth, bh = board.clientHeight;
  const s = Math.min(bw / (photo.naturalWidth || 1), bh / (photo.naturalHeight || 1));
  photo.style.width = `${photo.naturalWidth * s}px`;
  photo.style.height = `${photo.naturalHeight * s}px`;
  photo.style.left = `${(bw - photo.naturalWidth * s) / 2}px`;
  photo.style.top = `${(bh - photo.naturalHeight * s) / 2}px`;
  if (state.readings) { state.sentScale = s; render(); }
}

function leavePhoto() {
  state.mode = "draw";
  state.file = null;
  photo.hidden = true;
  pad.hidden = false;
  if (photo.src) { URL.revokeObjectURL(photo.src); photo.removeAttribute("src"); }
  resizeCanvas();
  redraw();
  changed();
}

// ------------------------------------------------------------------------------------ models
async function loadModels() {
  try {
    const r = await fetch("/api/models");
    const info = await r.json();
    state.models = info;
    const sel = $("model");
    sel.replaceChildren();
    const add = (value, text, disabled, title) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = text;
      o.disabled = disabled;
      if (title) o.title = title;
      sel.appendChild(o);
    };
    add("", info.default ? `default (${info.default})` : "default (none)", !info.default);
    for (const m of info.models) {
      const acc = m.test_accuracy ? ` · ${(100 * m.test_accuracy).toFixed(2)}%` : "";
      add(m.name, m.status === "ok" ? m.name + acc : `${m.name} (${m.status})`, m.status !== "ok", m.hint);
    }
    add("all", "all side by side", !info.models.some((m) => m.status === "ok"));
    if (!info.default) {
      const missing = info.models.find((m) => m.hint);
      setStatus("No trained model: " + (missing ? missing.hint : "see the server log"), true);
    } else {
      setStatus("Ready: draw a number.");
    }
  } catch (err) {
    setStatus("cannot reach the server (" + err.message + ")", true);
  }
}

// ------------------------------------------------------------------------------------ wiring
$("read").addEventListener("click", readNow);
$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
$("upload").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => {
  const f = e.target.files && e.target.files[0];
  if (f) enterPhoto(f);
  e.target.value = "";                        // the same file can be chosen again
});
$("model").addEventListener("change", () => {
  $("model").blur();                          // Enter and Escape go back to the page
  if (state.mode === "photo" || state.strokes.length) { changed(); scheduleRead(0); }
});
$("brush").addEventListener("input", () => { $("brush-out").textContent = $("brush").value; });
$("forget").addEventListener("click", forget);
$("profile").addEventListener("toggle", () => { if ($("profile").open) loadProfile(); });
window.addEventListener("pagehide", countFinished);
document.addEventListener("keydown", (e) => {
  const tag = e.target && e.target.tagName;
  const r = current();
  if (e.key === "Escape") { e.preventDefault(); clearAll(); }
  else if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey && r && r.digits.length &&
           tag !== "INPUT" && tag !== "SELECT") { e.preventDefault(); correct(state.selected, Number(e.key)); }
  else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && r && r.digits.length && tag !== "INPUT" &&
           tag !== "SELECT") {
    e.preventDefault();
    select((state.selected + (e.key === "ArrowLeft" ? r.digits.length - 1 : 1)) % r.digits.length);
  }
  else if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  else if (e.key === "Enter" && tag !== "BUTTON" && tag !== "SELECT" && tag !== "INPUT") { e.preventDefault(); readNow(); }
});
new ResizeObserver(resizeCanvas).observe(board);
resizeCanvas();
loadModels();
loadProfile();
