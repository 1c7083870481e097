// emovox web page: record with WebAudio (raw PCM, encoded as WAV here) or drop a file,
// POST it to /v1/predict, show the emotion, a bar per class and a timeline of segments.
// No external scripts: everything the page needs is in this file.
"use strict";

const $ = (id) => document.getElementById(id);
// the server sends each label's colour (emovox.colours, the same as the PNG timeline); these
// are only for a server too old to send them
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#17becf", "#bcbd22"];
let labelsOrder = [];

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// -- WAV encoding -----------------------------------------------------------------------------
function encodeWav(chunks, sampleRate) {
  let n = 0;
  for (const c of chunks) n += c.length;
  const buf = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE");
  str(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true); v.setUint32(28, 2 * sampleRate, true);
  v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  str(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, o += 2) {
      const s = Math.max(-1, Math.min(1, c[i]));
      v.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([buf], { type: "audio/wav" });
}

// -- recording --------------------------------------------------------------------------------
const rec = { ctx: null, stream: null, node: null, source: null, chunks: [], t0: 0, timer: null };

async function startRecording() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser cannot record here (a microphone needs https or localhost).", true);
    return;
  }
  try {
    rec.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setStatus("No microphone: " + err.message, true);
    return;
  }
  rec.ctx = new (window.AudioContext || window.webkitAudioContext)();
  rec.source = rec.ctx.createMediaStreamSource(rec.stream);
  rec.node = rec.ctx.createScriptProcessor(4096, 1, 1);
  rec.chunks = [];
  rec.node.onaudioprocess = (e) => rec.chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  rec.source.connect(rec.node);
  rec.node.connect(rec.ctx.destination);
  rec.t0 = performance.now();
  rec.timer = setInterval(() => {
    $("rec-time").textContent = ((performance.now() - rec.t0) / 1000).toFixed(1) + " s";
  }, 100);
  $("record").disabled = true;
  $("stop").disabled = false;
  setStatus("Recording… press Stop when done.");
}

async function stopRecording() {
  clearInterval(rec.timer);
  $("record").disabled = false;
  $("stop").disabled = true;
  if (!rec.ctx) return;
  rec.node.disconnect();
  rec.source.disconnect();
  rec.stream.getTracks().forEach((t) => t.stop());
  const sr = rec.ctx.sampleRate;
  await rec.ctx.close();
  rec.ctx = null;
  const blob = encodeWav(rec.chunks, sr);
  rec.chunks = [];
  await predict(blob, "recording.wav");
}

// -- prediction -------------------------------------------------------------------------------
async function predict(blob, name) {
  setStatus("Predicting " + name + "…");
  $("player").src = URL.createObjectURL(blob);
  const form = new FormData();
  form.append("audio", blob, name);
  let res, body;
  try {
    res = await fetch("/v1/predict", { method: "POST", body: form });
    body = await res.json();
  } catch (err) {
    setStatus("The server did not answer: " + err.message, true);
    return;
  }
  if (!res.ok) {
    setStatus("Error " + res.status + ": " + (body.detail && body.detail.toString()), true);
    return;
  }
  show(body);
  setStatus("Done: " + name + ".");
}

function show(r) {
  $("result").hidden = false;
  $("label").textContent = r.label;
  $("meta").textContent = r.duration.toFixed(1) + " s of audio · " + r.time_ms.toFixed(0) +
    " ms on the server · model: " + r.model;
  const bars = $("bars");
  bars.replaceChildren();
  const order = r.labels.slice().sort((a, b) => r.probabilities[b] - r.probabilities[a]);
  for (const c of order) {
    const p = r.probabilities[c];
    const row = barRow(c, "track", p.toFixed(2), { width: (100 * p).toFixed(1) + "%" });
    row.className = "row" + (c === r.label ? " top" : "");
    row.dataset.label = c;
    bars.appendChild(row);
  }
  showDimensions(r);
  showTimeline(r);
}

// One row of bars: the name, a track with its fill (placed by `fillStyle`), the value.
function barRow(label, trackClass, valueText, fillStyle) {
  const row = document.createElement("div");
  const name = document.createElement("span");
  name.textContent = label;
  const track = document.createElement("div");
  track.className = trackClass;
  const fill = document.createElement("div");
  fill.className = "fill";
  Object.assign(fill.style, fillStyle);
  track.appendChild(fill);
  const pv = document.createElement("span");
  pv.className = "p";
  pv.textContent = valueText;
  row.append(name, track, pv);
  return row;
}

// Arousal and valence (models trained with them): a bar from the middle of a -1..1 scale.
const DIMENSION_WORDS = {
  arousal: ["calm, low energy", "aroused, high energy"],
  valence: ["unpleasant", "pleasant"],
};

function showDimensions(r) {
  const box = $("dims");
  box.replaceChildren();
  const names = Object.keys(DIMENSION_WORDS).filter((d) => typeof r[d] === "number");
  box.hidden = names.length === 0;
  for (const d of names) {
    const v = r[d];
    const row = barRow(d, "track centred", (v >= 0 ? "+" : "") + v.toFixed(2), {
      left: (50 + 50 * Math.min(v, 0)).toFixed(1) + "%",
      width: (50 * Math.abs(v)).toFixed(1) + "%",
    });
    row.className = "row dim";
    row.dataset.dimension = d;
    row.lastChild.title = DIMENSION_WORDS[d][v >= 0 ? 1 : 0];
    box.appendChild(row);
  }
}

function showTimeline(r) {
  const card = $("timeline-card");
  const segs = r.segments || [];
  card.hidden = segs.length === 0;
  if (!segs.length) return;
  const tl = $("timeline");
  tl.replaceChildren();
  const total = Math.max(r.duration, segs[segs.length - 1].end);
  const colour = (c) => (r.colours && r.colours[c]) ||
    COLOURS[Math.max(0, r.labels.indexOf(c)) % COLOURS.length];
  for (const s of segs) {
    const d = document.createElement("div");
    d.className = "seg";
    d.style.left = (100 * s.start / total) + "%";
    d.style.width = (100 * (s.end - s.start) / total) + "%";
    d.style.background = colour(s.label);
    d.title = s.start.toFixed(1) + "–" + s.end.toFixed(1) + " s: " + s.label +
      (typeof s.arousal === "number" ? ", arousal " + s.arousal.toFixed(2) : "") +
      (typeof s.valence === "number" ? ", valence " + s.valence.toFixed(2) : "");
    tl.appendChild(d);
  }
  const ticks = $("timeline-ticks");
  ticks.replaceChildren();
  const step = tickStep(total);
  for (let t = 0; t <= total + 1e-9; t += step) {
    const tick = document.createElement("span");
    tick.className = "tick";
    tick.style.left = (100 * t / total) + "%";
    tick.textContent = formatTime(t, total);
    ticks.appendChild(tick);
  }
  const legend = $("legend");
  legend.replaceChildren();
  const span = document.createElement("span");
  span.textContent = "0–" + total.toFixed(1) + " s, " + segs.length + " segments:";
  legend.appendChild(span);
  for (const c of r.labels) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colour(c);
    item.append(swatch, c);
    legend.appendChild(item);
  }
}

// A round step between time ticks: about eight ticks over the recording.
function tickStep(total) {
  const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((s) => total / s <= 8) || 7200;
}

function formatTime(t, total) {
  if (total < 60) return t.toFixed(t % 1 ? 1 : 0) + " s";
  const m = Math.floor(t / 60), s = Math.round(t % 60);
  return m + ":" + String(s).padStart(2, "0");
}

// -- file drop --------------------------------------------------------------------------------
function setupDrop() {
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault();
    drop.classList.remove("over");
  }));
  drop.addEventListener("drop", (e) => {
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) predict(f, f.name);
  });
  $("file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (f) predict(f, f.name);
  });
}

async function loadModelInfo() {
  try {
    const r = await fetch("/v1/models");
    const m = (await r.json()).models[0];
    labelsOrder = m.labels;
    $("model-info").textContent = "Model: " + m.name + " (" + m.labels.join(", ") + ")";
  } catch (err) {
    $("model-info").textContent = "";
  }
}

$("record").addEventListener("click", startRecording);
$("stop").addEventListener("click", stopRecording);
setupDrop();
loadModelInfo();
