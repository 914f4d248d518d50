// imagezarr viewer: plain JS, reads the JSON and PNG endpoints of /_view/ on the same server.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search || location.hash.slice(1));
const TOKEN = params.get("token");
const state = { group: null, doc: null, rows: null, cols: null, sel: {}, full: null };

function url(path, query = {}) {
  const q = new URLSearchParams(query);
  if (TOKEN) q.set("token", TOKEN);
  const s = q.toString();
  return path + (s ? "?" + s : "");
}

async function getJSON(path) {
  const r = await fetch(url(path));
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

function status(text) { $("status").textContent = text; }

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  select.append(o);
}

function groupPath(path) {
  return path ? path.split("/").map(encodeURIComponent).join("/") + "/" : "";
}

function flatIndex(index, shape) {
  let k = 0;
  for (let d = 0; d < shape.length; d++) k = k * shape[d] + index[d];
  return k;
}

function slotPath(kind, index) {
  return `${kind}/${groupPath(state.doc.path)}${index.join("/")}`.replace(/\/$/, "");
}

async function start() {
  try {
    const groups = await getJSON("groups");
    for (const g of groups) {
      option($("group"), g.path, `${g.path || "/"}  (${g.dims.map((d, i) => `${d}=${g.shape[i]}`).join(", ")})`);
    }
    const wanted = params.get("group");
    if (wanted !== null) $("group").value = wanted;
    $("group").onchange = () => loadGroup($("group").value);
    $("rowdim").onchange = () => { state.rows = $("rowdim").value || null; fixDims(); render(); };
    $("coldim").onchange = () => { state.cols = $("coldim").value || null; fixDims(); render(); };
    $("size").oninput = () => document.documentElement.style.setProperty("--size", $("size").value + "px");
    $("size").oninput();
    await loadGroup($("group").value);
  } catch (e) {
    status(String(e.message || e));
  }
}

async function loadGroup(path) {
  status("loading…");
  const doc = await getJSON(`group/${groupPath(path)}`);
  state.group = path;
  state.doc = doc;
  const dims = doc.dims;
  state.rows = dims.length > 1 ? dims[0] : null;
  state.cols = dims.length > 1 ? dims[1] : dims.length ? dims[0] : null;
  state.sel = {};
  for (const d of dims) state.sel[d] = 0;
  fixDims();
  render();
}

function fixDims() {
  // rows and columns: two different dims (or none); selectors for every other dim
  if (state.rows && state.rows === state.cols) state.rows = null;
  for (const [id, chosen] of [["rowdim", state.rows], ["coldim", state.cols]]) {
    const s = $(id);
    s.replaceChildren();
    option(s, "", "(none)");
    for (const d of state.doc.dims) option(s, d, d);
    s.value = chosen || "";
  }
  const others = $("others");
  others.replaceChildren();
  for (const d of state.doc.dims) {
    if (d === state.rows || d === state.cols) continue;
    const label = document.createElement("label");
    label.textContent = d + " ";
    const s = document.createElement("select");
    s.dataset.dim = d;
    state.doc.labels[d].forEach((text, i) => option(s, i, text));
    s.value = state.sel[d];
    s.onchange = () => { state.sel[d] = Number(s.value); render(); };
    label.append(s);
    others.append(label);
  }
}

function render() {
  const doc = state.doc;
  const grid = $("grid");
  grid.replaceChildren();
  const rowLabels = state.rows ? doc.labels[state.rows] : [""];
  const colLabels = state.cols ? doc.labels[state.cols] : [""];
  const head = grid.createTHead().insertRow();
  const corner = document.createElement("th");
  corner.textContent = state.rows && state.cols ? `${state.rows} \\ ${state.cols}` : "";
  head.append(corner);
  for (const text of colLabels) {
    const th = document.createElement("th");
    th.className = "col";
    th.textContent = text;
    head.append(th);
  }
  const body = grid.createTBody();
  let shown = 0;
  let holes = 0;
  rowLabels.forEach((rowText, r) => {
    const tr = body.insertRow();
    const th = document.createElement("th");
    th.className = "row";
    th.textContent = rowText;
    tr.append(th);
    colLabels.forEach((colText, c) => {
      const index = doc.dims.map((d) => (d === state.rows ? r : d === state.cols ? c : state.sel[d]));
      const k = flatIndex(index, doc.shape);
      const td = tr.insertCell();
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.index = index.join(",");
      const where = [rowText, colText].filter((t) => t !== "").join(", ");
      if (!doc.present[k]) {
        cell.classList.add("hole");
        cell.title = `${where}: no file (a hole)`;
        holes++;
      } else {
        const img = document.createElement("img");
        img.loading = "lazy";
        img.alt = where;
        img.src = url(slotPath("thumb", index), { size: 256 });
        img.onerror = () => { cell.classList.add("failed"); cell.title = `${doc.paths[k]}: could not be read`; };
        cell.title = `${where}\n${doc.paths[k]}`;
        cell.append(img);
        cell.onclick = () => openFull(index);
        shown++;
      }
      td.append(cell);
    });
  });
  grid.dataset.ready = "1";
  status(`${shown} image(s), ${holes} hole(s)`);
}

// -- the full-resolution view -----------------------------------------------------------------

const view = { bitmap: null, scale: 1, x: 0, y: 0, drag: null };

function coordinates(index) {
  const doc = state.doc;
  const rows = doc.dims.map((d, i) => [d, doc.labels[d][index[i]]]);
  for (const [name, c] of Object.entries(doc.coords)) {
    if (!c.dims.every((d) => doc.dims.includes(d))) continue;
    const sub = c.dims.map((d) => index[doc.dims.indexOf(d)]);
    const value = c.values[flatIndex(sub, c.dims.map((d) => doc.shape[doc.dims.indexOf(d)]))];
    rows.push([name, value]);
  }
  return rows;
}

function openFull(index) {
  const doc = state.doc;
  const k = flatIndex(index, doc.shape);
  state.full = { index, auto: true, lo: null, hi: null };
  $("path").textContent = doc.paths[k];
  const table = $("coords");
  table.replaceChildren();
  for (const [name, value] of coordinates(index)) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = name;
    tr.append(th);
    tr.insertCell().textContent = value;
  }
  $("auto").checked = true;
  $("full").hidden = false;
  view.bitmap = null;
  loadFull(true);
}

function closeFull() {
  $("full").hidden = true;
  state.full = null;
}

let pending = 0;
async function loadFull(fit) {
  const full = state.full;
  const ticket = ++pending;
  const query = full.auto ? {} : { min: full.lo, max: full.hi };
  const r = await fetch(url(slotPath("image", full.index), query));
  if (ticket !== pending || state.full !== full) return;
  if (!r.ok) {
    $("range").textContent = `${r.status}: ${(await r.text()).trim()}`;
    return;
  }
  const h = (name) => r.headers.get("X-Imagezarr-" + name);
  const bitmap = await createImageBitmap(await r.blob());
  if (ticket !== pending) return;
  view.bitmap = bitmap;
  const dtype = h("Dtype");
  const dmin = Number(h("Data-Min"));
  const dmax = Number(h("Data-Max"));
  const stretched = h("Min") !== null;
  $("contrast").hidden = !stretched;
  if (stretched) {
    // the sliders span the image's values (from 0 for non-negative ones)
    const lo = Math.min(dmin, 0);
    const hi = dtype === "uint8" ? 255 : dmax > lo ? dmax : lo + 1;
    const step = dtype.startsWith("float") ? (hi - lo) / 1000 : 1;
    for (const id of ["min", "max"]) Object.assign($(id), { min: lo, max: hi, step });
    full.lo = Number(h("Min"));
    full.hi = Number(h("Max"));
    $("min").value = full.lo;
    $("max").value = full.hi;
    $("minv").textContent = fmt(full.lo);
    $("maxv").textContent = fmt(full.hi);
    $("range").textContent = `${dtype}, values ${fmt(dmin)} … ${fmt(dmax)}`;
  }
  if (fit) fitView();
  draw();
}

function fmt(v) { return Number.isInteger(v) ? String(v) : v.toPrecision(4); }

let timer = null;
function contrastChanged() {
  const full = state.full;
  if (!full) return;
  full.auto = $("auto").checked;
  full.lo = Number($("min").value);
  full.hi = Number($("max").value);
  $("minv").textContent = fmt(full.lo);
  $("maxv").textContent = fmt(full.hi);
  clearTimeout(timer);
  timer = setTimeout(() => loadFull(false), 120);
}
$("min").oninput = () => { $("auto").checked = false; contrastChanged(); };
$("max").oninput = () => { $("auto").checked = false; contrastChanged(); };
$("auto").onchange = contrastChanged;

function fitView() {
  const c = $("canvas");
  const w = c.clientWidth;
  const h = c.clientHeight;
  const b = view.bitmap;
  if (!b) return;
  view.scale = Math.min(w / b.width, h / b.height);
  view.x = (w - b.width * view.scale) / 2;
  view.y = (h - b.height * view.scale) / 2;
}

function draw() {
  const c = $("canvas");
  const ratio = window.devicePixelRatio || 1;
  c.width = Math.round(c.clientWidth * ratio);
  c.height = Math.round(c.clientHeight * ratio);
  const g = c.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.fillStyle = "#111";
  g.fillRect(0, 0, c.clientWidth, c.clientHeight);
  if (!view.bitmap) return;
  g.imageSmoothingEnabled = view.scale < 1;
  g.drawImage(view.bitmap, view.x, view.y, view.bitmap.width * view.scale, view.bitmap.height * view.scale);
}

const stage = $("stage");
stage.addEventListener("wheel", (e) => {
  e.preventDefault();
  const rect = stage.getBoundingClientRect();
  const px = e.clientX - rect.left;
  const py = e.clientY - rect.top;
  const factor = Math.exp(-e.deltaY * 0.0015);
  const scale = Math.min(Math.max(view.scale * factor, 0.01), 100);
  view.x = px - ((px - view.x) * scale) / view.scale;
  view.y = py - ((py - view.y) * scale) / view.scale;
  view.scale = scale;
  draw();
}, { passive: false });
stage.addEventListener("pointerdown", (e) => {
  view.drag = { x: e.clientX - view.x, y: e.clientY - view.y };
  stage.setPointerCapture(e.pointerId);
  stage.classList.add("dragging");
});
stage.addEventListener("pointermove", (e) => {
  if (!view.drag) return;
  view.x = e.clientX - view.drag.x;
  view.y = e.clientY - view.drag.y;
  draw();
});
stage.addEventListener("pointerup", () => { view.drag = null; stage.classList.remove("dragging"); });
stage.addEventListener("dblclick", () => { fitView(); draw(); });
window.addEventListener("resize", () => { if (state.full) draw(); });
$("close").onclick = closeFull;
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && state.full) closeFull(); });

start();
