// The drawing page: strokes on a canvas (Pointer Events: mouse, touch, pen), read by POST /api/read.
// Plain JavaScript, no libraries, nothing loaded from elsewhere: the page works offline.
//
// Strokes are kept in CSS pixels and painted onto a canvas whose backing store has devicePixelRatio
// times as many pixels, so lines stay sharp on HiDPI screens. What is sent is that backing store as a
// PNG (canvas.toBlob: the canvas's own pixels, never a screen grab); the boxes that come back are in
// those pixels and are divided by the same scale to sit over the drawing.
//
// Corrections (server started with --learn): no digit is chosen until the user chooses one (click or tap it,
// or move to it with the arrow keys); a key then corrects that digit and the choice moves to the next, so
// typing a whole number corrects it in order (the digit it read: a confirmation). A pick in the probability
// list corrects the chosen digit too. The page shows it at once and sends POST /api/corrections with the image
// it read, the text with that digit set and the others '?', and the reading's name: the same digit corrected
// again replaces its correction on the server (one record per digit of a reading). The server adapts in the
// background and the page polls GET /api/profile for the status line; My handwriting lists the corrections
// (GET /api/corrections) and removes one (DELETE /api/corrections/{id}). When a drawing is cleared, its last
// reading's digit count goes to POST /api/profile/readings (counts only): with the corrections, the error rate.
//
// Photos: "Upload image" (and "Take photo" on touch screens: the camera) take any image the browser can open;
// one larger than the recognizer reads (its long side over /api/models' limits.read_side) or in a format the
// server does not take is scaled on a canvas and sent as JPEG, so a phone's 12-megapixel photo is read quickly.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d"), board = $("board"), overlay = $("overlay"), photo = $("photo");
const LIVE_DELAY_MS = 350;   // a reading starts this long after the last stroke ends
const RATE_MIN_DIGITS = 100; // an error rate is shown only over this many digits read (fewer: counts alone)
const TOUCH = window.matchMedia("(hover: none) and (pointer: coarse)").matches;   // a phone or tablet
const SENT_TYPES = ["image/png", "image/jpeg", "image/bmp", "image/webp"];          // what the server reads

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
  selected: null,       // index of the digit the user chose (probabilities shown, keys correct it), or null
  models: null,
  sentBlob: null,       // the image of the last reading (a correction sends it again)
  readingKey: "",       // the name of the reading shown: a digit corrected again replaces its correction
  keyVersion: -1,       // the version the key belongs to (a re-read of the same drawing keeps it)
  corrections: {},      // {digit index: right digit} of the reading shown
  correctionIds: {},    // {digit index: id of its stored correction}
  countable: null,      // {digits, adapted} of the finished drawing's last reading, counted when it is cleared
  learn: false,         // the server takes corrections (serve.py --learn)
  learnHint: "",
  profile: null,        // the last GET /api/profile
  sending: Promise.resolve(),   // the corrections being stored, one after the other
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
    if (!state.file) return;                 // still being prepared: enterPhoto reads when it is ready
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
  form.append("image", blob, sentName());
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
  const same = version === state.keyVersion;   // the same drawing read again: its corrections stay
  if (!same) {
    state.keyVersion = version;
    state.readingKey = newKey();
  }
  showReadings(readings, shown, same);
  const r = readings[shown];
  state.countable = r && r.digits.length ? { digits: r.digits.length, adapted: !!r.adapted } : null;
  setStatus(r ? `${plural(r.digits.length, "digit")} read by ${shown}.` +
              (state.learn && r.digits.length ? " " + chooseHint(r.digits.length) : "") : "No model available.");
  document.body.dataset.reads = String(Number(document.body.dataset.reads) + 1);
}

// ------------------------------------------------------------------------------------ results
function showReadings(readings, shown, keep = false) {
  state.readings = readings;
  state.shown = readings ? shown : null;
  if (!keep) {
    state.selected = null;
    state.corrections = {};
    state.correctionIds = {};
  }
  render();
}

function newKey() {
  const a = new Uint8Array(12);
  window.crypto.getRandomValues(a);
  return "p" + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// "the 2nd digit" (or "the digit" when there is one)
function whichDigit(i, n) {
  if (n === 1) return "the digit";
  const k = i + 1, tens = k % 100, last = k % 10;
  const suffix = tens >= 11 && tens <= 13 ? "th" : last === 1 ? "st" : last === 2 ? "nd" : last === 3 ? "rd" : "th";
  return `the ${k}${suffix} digit`;
}

function chooseHint(n) {
  if (TOUCH) return "Tap a digit to correct it.";
  return n === 1 ? "Click the digit to correct it." : "Click a digit (or press →) to correct it; typing moves on.";
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
  $("meta").title = r && r.adapted ? "read with what it learned of your handwriting" : "";
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
    const fixed = i in state.corrections, confirmed = fixed && state.corrections[i] === d.digit;
    box.className = "box" + (d.uncertain && !fixed ? " uncertain" : "") + (fixed ? " corrected" : "") +
                    (i === state.selected ? " selected" : "");
    box.style.left = `${ox + x * s}px`;
    box.style.top = `${oy + y * s}px`;
    box.style.width = `${w * s}px`;
    box.style.height = `${h * s}px`;
    if (oy + y * s < 22) box.classList.add("low");   // no room above: label below the box
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = fixed ? `${shownLabel(d, i)} ${confirmed ? "✓" : "✎"}`
                            : `${shownLabel(d, i)} ${(100 * d.confidence).toFixed(0)}%`;
    tag.dataset.short = shownLabel(d, i);
    tag.title = fixed ? (confirmed ? `you confirmed this ${d.digit}` : `you corrected this ${d.digit} to ${state.corrections[i]}`)
                      : "show the probabilities of this digit" + (state.learn ? ", then type the right digit" : "");
    tag.addEventListener("click", () => select(i));
    box.appendChild(tag);
    overlay.appendChild(box);
  });
  untangleTags();
}

// Labels of close digits would overlap: a label that meets an earlier one goes below its box, and one that
// still meets another shows its digit alone.
function untangleTags() {
  const placed = [];
  const meets = (a) => placed.some((b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom);
  for (const box of overlay.children) {
    const tag = box.querySelector(".tag");
    let rect = tag.getBoundingClientRect();
    if (meets(rect)) {
      box.classList.toggle("low");
      rect = tag.getBoundingClientRect();
      if (meets(rect)) {
        box.classList.toggle("low");
        tag.textContent = tag.dataset.short;
        tag.classList.add("short");
        rect = tag.getBoundingClientRect();
      }
    }
    placed.push(rect);
  }
}

function renderChips(r) {
  const chips = $("chips");
  chips.replaceChildren();
  if (!r) return;
  r.digits.forEach((d, i) => {
    const b = document.createElement("button");
    b.type = "button";
    const fixed = i in state.corrections, confirmed = fixed && state.corrections[i] === d.digit;
    b.className = "chip" + (d.uncertain && !fixed ? " uncertain" : "") + (fixed ? " corrected" : "") +
                  (confirmed ? " confirmed" : "") + (i === state.selected ? " selected" : "");
    b.textContent = shownLabel(d, i);
    const small = document.createElement("small");
    small.textContent = !fixed ? `${(100 * d.confidence).toFixed(1)}%` : confirmed ? "✓ confirmed" : `✎ was ${d.digit}`;
    b.appendChild(small);
    b.setAttribute("aria-pressed", String(i === state.selected));
    b.title = `${whichDigit(i, r.digits.length)}: top 3 ` +
              d.top3.map(([k, p]) => `${k} ${(100 * p).toFixed(1)}%`).join(", ");
    b.addEventListener("click", () => select(i));
    chips.appendChild(b);
  });
}

function renderBars(r) {
  const d = r && r.digits[state.selected];
  $("bars").hidden = !d;
  if (!d) return;
  $("bars-title").textContent = `Digit ${state.selected + 1} of ${r.digits.length}: probabilities (${r.model})` +
                                 (state.learn ? (TOUCH ? " · tap the right one" : " · type or click the right one") : "");
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
    row.title = state.learn ? (k === d.digit ? `it is a ${k}: confirm this digit` : `it is a ${k}: correct this digit`)
                            : state.learnHint;
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
  if (TOUCH && i !== null && !$("bars").hidden) $("bars").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// ------------------------------------------------------------------------------------ corrections
// Correct digit i to k (k its own reading: a confirmation). `advance`: the choice moves to the next digit (a
// key), so typing a whole number corrects it in order; after the last digit nothing is chosen.
async function correct(i, k, advance = false) {
  const r = current();
  if (!r || i === null || !r.digits[i] || !state.sentBlob) return;
  if (!state.learn) { setStatus(state.learnHint || "Corrections are off.", true); return; }
  const d = r.digits[i], n = r.digits.length, which = whichDigit(i, n);
  if (advance) state.selected = i + 1 < n ? i + 1 : null;
  if (state.corrections[i] === k) {          // said already: nothing new to store
    render();
    setStatus(`${k === d.digit ? "Already confirmed" : "Already corrected"}: ${which} is a ${k}.`);
    return;
  }
  const version = state.version, before = state.corrections[i];
  state.corrections[i] = k;
  render();
  const form = new FormData();
  form.append("image", state.sentBlob, sentName());
  form.append("text", r.digits.map((_, j) => (j === i ? String(k) : "?")).join(""));
  form.append("model", r.model);
  form.append("reading", state.readingKey);
  setStatus(`Storing: ${which} is a ${k}…`);
  // one at a time, in the order typed: a number typed fast is stored digit by digit, and a digit corrected
  // twice in quick succession keeps the second
  const sending = state.sending.then(() => post(form));
  state.sending = sending.catch(() => {});
  const [ok, answer] = await sending;
  if (!ok) {
    if (version === state.version && state.corrections[i] === k) {
      if (before === undefined) delete state.corrections[i]; else state.corrections[i] = before;
      render();
    }
    setStatus("Correction not stored: " + (answer.error || "error"), true);
    return;
  }
  if (version === state.version && answer.stored.length) state.correctionIds[i] = answer.stored[0];
  document.body.dataset.corrections = String(Number(document.body.dataset.corrections) + answer.stored.length);
  const said = k === d.digit ? `Confirmed: ${which} is a ${k}.` : `Corrected: ${which} is a ${k}, not a ${d.digit}.`;
  const next = state.selected !== null && version === state.version ? ` Next: ${whichDigit(state.selected, n)}.` : "";
  setStatus(said + next);
  if ($("profile").open) loadCorrections();
  pollProfile(said);
}

async function post(form) {
  try {
    const resp = await fetch("/api/corrections", { method: "POST", body: form });
    return [resp.ok, await resp.json().catch(() => ({ error: `server answered ${resp.status} without JSON` }))];
  } catch (err) {
    return [false, { error: "cannot reach the server (" + err.message + ")" }];
  }
}

// Follow the adaptation a change started; the status line says what the profile does then (after `said`).
function pollProfile(said = "") {
  clearTimeout(state.poll);
  let tries = 0;
  const tick = async () => {
    const info = await loadProfile();
    tries++;
    if (info && !info.adapting) { setStatus((said ? said + " " : "") + info.status); return; }
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
  const hint = $("learn-hint");
  hint.hidden = false;
  hint.classList.toggle("on", state.learn);
  hint.textContent = state.learn
    ? (TOUCH ? "Learning is on: tap a wrong digit, then tap the right one in the list; it learns your handwriting."
             : "Learning is on: click a wrong digit (or press →), then type the right one; it learns your handwriting.")
    : state.learnHint;
  $("learn-badge").hidden = !state.learn;
  $("profile-status").textContent = info.status || "";
  $("profile-detail").textContent = info.status_detail || "";
  const count = info.profile === null ? 0 : info.corrections;
  $("forget").disabled = !state.learn || !count;
  $("forget").title = !state.learn ? state.learnHint : !count ? "Nothing to forget: no corrections stored"
    : "Delete the corrections it learned from (a copy is exported first)";
  const body = $("profile-figures").tBodies[0];
  body.replaceChildren();
  const rows = info.profile === null ? [] : [
    ["Stored", `${plural(info.corrected_digits, "misread digit")} corrected, ${info.confirmed_digits} confirmed`],
    ["Before learning", misreads(info.before_adaptation)],
  ];
  if (info.profile !== null && info.with_adaptation.digits) rows.push(["With your handwriting", misreads(info.with_adaptation)]);
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

// "3 of 34 digits read were misread": counts first; the rate only over enough digits to mean something
function misreads(part) {
  if (!part.digits) return part.corrected ? `${plural(part.corrected, "misread digit")} corrected; no readings counted yet`
                                          : "no readings counted yet";
  const rate = part.digits >= RATE_MIN_DIGITS ? ` (${(100 * part.corrected / part.digits).toFixed(1)}%)` : "";
  return `${part.corrected} of ${plural(part.digits, "digit")} read ${part.corrected === 1 ? "was" : "were"} misread${rate}`;
}

async function loadCorrections() {
  let body;
  try {
    const r = await fetch("/api/corrections?limit=60");
    body = await r.json();
    if (!r.ok) return;
  } catch (err) {
    return;
  }
  const list = $("corrections-list");
  list.replaceChildren();
  $("corrections-title").hidden = !body.total;
  $("corrections-title").textContent = body.total > body.corrections.length
    ? `Your corrections: the newest ${body.corrections.length} of ${body.total}` : `Your corrections (${body.total})`;
  for (const c of body.corrections) {
    const li = document.createElement("li");
    li.dataset.id = String(c.id);
    li.className = c.kind;
    if (c.crop) {
      const img = document.createElement("img");
      img.src = c.crop;
      img.alt = `your ${c.label}`;
      li.appendChild(img);
    }
    const text = document.createElement("span");
    text.textContent = c.kind === "confirmation" ? `${c.label} ✓ confirmed` : `${c.label} ✎ was read as ${c.read}`;
    const when = document.createElement("small");
    when.textContent = `${c.model} · ${c.created.replace("T", " ")}`;
    text.appendChild(when);
    li.appendChild(text);
    const rm = document.createElement("button");
    rm.type = "button";
    rm.className = "remove";
    rm.textContent = "Remove";
    rm.title = "Remove this correction: it no longer teaches the model";
    rm.disabled = !state.learn;
    rm.addEventListener("click", () => removeCorrection(c.id));
    li.appendChild(rm);
    list.appendChild(li);
  }
}

async function removeCorrection(id) {
  if (!state.learn) { setStatus(state.learnHint, true); return; }
  let r, a;
  try {
    r = await fetch(`/api/corrections/${id}` + (state.shown && state.shown !== "all" ? "?model=" + encodeURIComponent(state.shown) : ""),
                    { method: "DELETE" });
    a = await r.json();
  } catch (err) {
    setStatus("cannot reach the server (" + err.message + ")", true);
    return;
  }
  if (!r.ok) { setStatus("Not removed: " + a.error, true); await loadProfile(); return; }
  for (const [i, cid] of Object.entries(state.correctionIds)) {   // a correction of the reading shown: unmarked
    if (cid === id) { delete state.correctionIds[i]; delete state.corrections[i]; render(); }
  }
  const said = `Removed a correction; ${plural(a.corrections, "correction")} left.`;
  setStatus(said);
  await Promise.all([loadProfile(), loadCorrections()]);
  pollProfile(said);
}

async function forget() {
  if (!state.learn) { setStatus(state.learnHint, true); return; }
  if (!window.confirm("Forget my handwriting?\n\nThe corrections it learned from are deleted (a copy is exported " +
                      "beside the profile first) and it reads with the shipped models again.")) return;
  clearTimeout(state.poll);  // an earlier correction's adaptation must not speak over what is said here
  let said;
  try {
    const r = await fetch("/api/profile", { method: "DELETE" });
    const a = await r.json();
    if (!r.ok) { setStatus("Not reset: " + a.error, true); return; }
    said = `Forgot ${plural(a.forgotten, "correction")}` + (a.export ? `; a copy is in ${a.export}` : ".");
  } catch (err) {
    setStatus("cannot reach the server (" + err.message + ")", true);
    return;
  }
  // what is shown was read with the forgotten adaptation and carries its marks: read it again, as shipped, and
  // say what was forgotten (and where its copy is) last, so that the reading's own status does not hide it
  state.corrections = {};
  state.correctionIds = {};
  state.selected = null;
  if (state.readings) { state.version++; render(); await readNow(); }
  await Promise.all([loadProfile(), loadCorrections()]);
  setStatus(said);
}

function setStatus(text, error = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

// ------------------------------------------------------------------------------------ upload
async function enterPhoto(file) {
  countFinished();
  state.mode = "photo";
  state.file = null;
  pad.hidden = true;
  changed();
  setStatus("Opening the image…");
  const version = state.version;
  const sent = await photoToSend(file);
  if (version !== state.version) return;     // something else was chosen meanwhile
  state.file = sent;
  state.fileName = file.name || "upload";
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.onload = () => { placePhoto(); changed(); scheduleRead(0); };
  photo.onerror = () => { changed(); scheduleRead(0); };   // the browser cannot show it: the server says why
  photo.src = URL.createObjectURL(sent);
  photo.hidden = false;
}

// The image to send: the file itself, unless it is larger than the recognizer reads (it would scale it down
// anyway) or in a format the server does not take (HEIC from a phone...): then the browser's decoding (with its
// EXIF rotation) drawn to that size, as JPEG.
async function photoToSend(file) {
  const side = (state.models && state.models.limits && state.models.limits.read_side) || 1600;
  const maxBody = (state.models && state.models.limits && state.models.limits.max_body_bytes) || 10 * 2 ** 20;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (err) {
    return file;                                // the server reads it, or says why it cannot
  }
  const long = Math.max(bitmap.width, bitmap.height);
  if (long <= side && SENT_TYPES.includes(file.type) && file.size <= maxBody) { bitmap.close(); return file; }
  const s = Math.min(1, side / long);
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(bitmap.width * s));
  c.height = Math.max(1, Math.round(bitmap.height * s));
  const g = c.getContext("2d");
  g.fillStyle = "#ffffff";                       // transparency reads as white paper
  g.fillRect(0, 0, c.width, c.height);
  g.imageSmoothingQuality = "high";
  g.drawImage(bitmap, 0, 0, c.width, c.height);
  bitmap.close();
  const blob = await new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
  photo.dataset.scaled = `${file.size} bytes ${long}px -> ${c.width}x${c.height}`;
  return blob || file;
}

function sentName() {
  if (state.mode !== "photo") return "drawing.png";
  return state.file && state.file.type === "image/jpeg" && !/\.jpe?g$/i.test(state.fileName) ? "photo.jpg" : state.fileName;
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
  delete photo.dataset.scaled;
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
$("take-photo").addEventListener("click", () => $("camera").click());
for (const input of [$("file"), $("camera")]) {
  input.addEventListener("change", (e) => {
    const f = e.target.files && e.target.files[0];
    if (f) enterPhoto(f);
    e.target.value = "";                      // the same file can be chosen again
  });
}
$("model").addEventListener("change", () => {
  $("model").blur();                          // Enter and Escape go back to the page
  if (state.mode === "photo" || state.strokes.length) { changed(); scheduleRead(0); }
});
$("brush").addEventListener("input", () => { $("brush-out").textContent = $("brush").value; });
$("forget").addEventListener("click", forget);
$("profile").addEventListener("toggle", () => { if ($("profile").open) { loadProfile(); loadCorrections(); } });
document.body.classList.toggle("touch", TOUCH);
window.addEventListener("pagehide", countFinished);
document.addEventListener("keydown", (e) => {
  const tag = e.target && e.target.tagName;
  const r = current();
  if (e.key === "Escape") { e.preventDefault(); clearAll(); }
  else if (/^[0-9]$/.test(e.key) && !e.ctrlKey && !e.metaKey && !e.altKey && r && r.digits.length &&
           tag !== "INPUT" && tag !== "SELECT") {
    e.preventDefault();
    if (state.selected === null) {            // a bare key: no digit was chosen, nothing is stored
      setStatus(`Nothing stored: choose a digit first. ${chooseHint(r.digits.length)}`);
      return;
    }
    correct(state.selected, Number(e.key), true);
  }
  else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && r && r.digits.length && tag !== "INPUT" &&
           tag !== "SELECT") {
    e.preventDefault();
    const n = r.digits.length, back = e.key === "ArrowLeft";
    select(state.selected === null ? (back ? n - 1 : 0) : (state.selected + (back ? n - 1 : 1)) % n);
  }
  else if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  else if (e.key === "Enter" && tag !== "BUTTON" && tag !== "SELECT" && tag !== "INPUT") { e.preventDefault(); readNow(); }
});
new ResizeObserver(resizeCanvas).observe(board);
resizeCanvas();
loadModels();
loadProfile();
