// The heads-up display page: frames (Arrow IPC over WebSocket, docs/hud.md) drawn with Canvas2D.
// window.hud exposes what was received and drawn, for people debugging and for the browser tests.
"use strict";

(() => {
  const LEVELS = ["PDH", "PDL", "PMH", "PML", "ORH", "ORL"];
  const HALF = 20;
  const WIDTH = 2 * HALF + 1;
  const LADDER = 10;
  const KEEP_ROWS = 3600;
  const ROWS_SHOWN = 30; // price ticks above and below the centre
  const COL_PX = 2; // one second per two pixels
  const AXIS_PX = 70;
  const BANDS = ["at", "near", "mid", "far"];
  const GEX_STRIKES = 21;

  const hud = {
    rows: [], dropped: 0, generation: 0, contract: null, contracts: [], hello: null, state: "connecting",
    messages: 0, frames: 0, snapshots: 0, renders: 0, renderMs: [], heatmapMs: [], receivedAt: [], last: null,
    errors: [],
  };
  window.hud = hud;

  const $ = (id) => document.getElementById(id);
  const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  const setWidth = (el, width) => { if (el.style.width !== width) el.style.width = width; };
  const canvas = $("heatmap");
  const ctx = canvas.getContext("2d");
  const cells = document.createElement("canvas");
  const cellsCtx = cells.getContext("2d");


  // ---------------------------------------------------------------- decoding

  function column(table, name) {
    const child = table.getChild(name);
    return child ? child.toArray() : null;
  }

  function decode(buffer) {
    const table = Arrow.tableFromIPC(new Uint8Array(buffer));
    const kind = table.schema.metadata.get("kind") || "frame";
    const n = table.numRows;
    const num = (name) => column(table, name);
    const txt = (name) => {
      const child = table.getChild(name);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = child.get(i) || "";
      return out;
    };
    const t = num("t_ms"), contract = txt("contract");
    const side = {};
    for (const s of ["bid", "ask"]) {
      for (const k of ["px", "sz", "ct"]) {
        side[`${s}_${k}`] = Array.from({ length: LADDER }, (_, i) => num(`${s}_${k}_${i}`));
      }
    }
    const wall = Array.from({ length: WIDTH }, (_, j) => num(`wall_${String(j).padStart(2, "0")}`));
    const vacuum = Array.from({ length: WIDTH }, (_, j) => num(`vacuum_${String(j).padStart(2, "0")}`));
    const bandNames = table.schema.fields.map((f) => f.name).filter((name) => name.endsWith("_norm"));
    const bands = Object.fromEntries(bandNames.map((name) => [name, num(name)]));
    const levels = Object.fromEntries(LEVELS.map((l) => [l, [num(`level_${l}`), num(`level_${l}_known_ms`)]]));
    const gexStrike = Array.from({ length: GEX_STRIKES }, (_, k) => num(`gex_strike_${String(k).padStart(2, "0")}`));
    const gexBn = Array.from({ length: GEX_STRIKES }, (_, k) => num(`gex_bn_${String(k).padStart(2, "0")}`));
    const scalars = ["book_valid", "best_bid", "best_ask", "mid", "last_trade_px", "last_trade_sz", "volume",
      "tick", "spot", "gex_net_bn", "gex_zero", "gex_call_wall", "gex_put_wall", "episodes_open", "nn_count", "ep_start_ms", "ep_level_price", "ep_p_break",
      "ep_p_reject", "ep_p_chop", "ep_nn_break", "ep_nn_reject", "ep_nn_chop", "ep_resolved_ms"];
    const cols = Object.fromEntries(scalars.map((name) => [name, num(name)]));
    const texts = Object.fromEntries(["ep_episode_id", "ep_level_type", "ep_direction", "ep_outcome",
      "ep_score_status"].map((name) => [name, txt(name)]));
    const rows = new Array(n);
    for (let i = 0; i < n; i++) {
      const row = { t_ms: t[i], contract: contract[i], ladder: {}, levels: {}, bands: {} };
      for (const key of Object.keys(side)) row.ladder[key] = side[key].map((c) => c[i]);
      row.wall = Float64Array.from(wall, (c) => c[i]);
      row.vacuum = Float64Array.from(vacuum, (c) => c[i]);
      row.gex_strike = Float64Array.from(gexStrike, (c) => (c ? c[i] : NaN));
      row.gex_bn = Float64Array.from(gexBn, (c) => (c ? c[i] : NaN));
      for (const name of bandNames) row.bands[name] = bands[name][i];
      for (const l of LEVELS) row.levels[l] = { price: levels[l][0][i], known_ms: levels[l][1][i] };
      for (const name of scalars) row[name] = cols[name][i];
      for (const name of Object.keys(texts)) row[name] = texts[name][i];
      rows[i] = row;
    }
    return { kind, rows, version: table.schema.metadata.get("version") };
  }

  // ---------------------------------------------------------------- drawing helpers

  const fmtPrice = (p, tick) => (Number.isFinite(p) ? p.toFixed(tick && tick < 0.01 ? 4 : 2) : "");
  const fmtSize = (s) => (Number.isFinite(s) && s > 0 ? String(Math.round(s)) : "");
  // one formatter for the page's life: toLocaleTimeString with options builds a new one per call
  const clockFormat = new Intl.DateTimeFormat("en-US", {
    timeZone: "America/New_York", hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const fmtTime = (ms) => clockFormat.format(ms);
  const pct = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : "-");

  // ---------------------------------------------------------------- the heatmap

  const RANGE = 200; // ticks painted above and below the anchor price
  const paint = { gen: -1, upto: 0, anchor: NaN, tick: NaN, nCols: 0, scale: 1, vscale: 1, column: null };

  function extremes(rows) {
    let scale = 1, vscale = 1;
    for (const row of rows) {
      for (let j = 0; j < WIDTH; j++) {
        if (row.wall[j] > scale) scale = row.wall[j];
        if (row.vacuum[j] > vscale) vscale = row.vacuum[j];
      }
    }
    return [scale, vscale];
  }

  function outgrows(rows) { // a new second far above the colour scale: paint everything again
    const [scale, vscale] = extremes(rows);
    return scale > 1.5 * paint.scale || vscale > 1.5 * paint.vscale;
  }

  function repaint(rows, tick, centre, nCols, end) {
    const shown = rows.slice(Math.max(0, rows.length - nCols));
    Object.assign(paint, { gen: hud.generation, tick, anchor: centre, nCols });
    [paint.scale, paint.vscale] = extremes(shown);
    cells.width = nCols; // resizing clears
    cells.height = 2 * RANGE + 1;
    paint.column = cellsCtx.createImageData(1, 2 * RANGE + 1);
    for (let i = 0; i < shown.length; i++) paintColumn(shown[i], end - shown.length + i);
    paint.upto = end;
  }

  function paintColumn(row, at) {
    // resting depth: dark blue -> cyan -> white on a log scale; pulled size blended in red
    const px = paint.column.data;
    px.fill(0);
    if (Number.isFinite(row.spot)) {
      const inv = 1 / Math.log1p(paint.scale), vinv = 1 / paint.vscale;
      const r0 = RANGE - Math.round((row.spot - paint.anchor) / paint.tick) + HALF; // the grid row of j = 0
      for (let j = 0; j < WIDTH; j++) {
        const r = r0 - j;
        const d = row.wall[j], v = row.vacuum[j];
        if (r < 0 || r > 2 * RANGE || (!(d > 0) && !(v > 0))) continue;
        const x = d > 0 ? Math.min(1, Math.log1p(d) * inv) : 0;
        let cr = 10 + (x > 0.6 ? 500 * (x - 0.6) : 0), cg = 20 + 180 * x, cb = 40 + 215 * Math.min(1, x * 1.4);
        if (v > 0) {
          const a = Math.min(1, 0.35 + 0.65 * v * vinv);
          cr = cr * (1 - a) + 255 * a;
          cg = cg * (1 - a) + 70 * a;
          cb = cb * (1 - a) + 70 * a;
        }
        const k = 4 * r;
        px[k] = cr; px[k + 1] = cg; px[k + 2] = cb; px[k + 3] = 255;
      }
    }
    cellsCtx.putImageData(paint.column, at % paint.nCols, 0);
  }

  const axis = { key: "", canvas: document.createElement("canvas") };
  function drawAxis(key, top, tick, nRows, rowH, h) {
    axis.key = key;
    axis.canvas.width = AXIS_PX; // resizing clears
    axis.canvas.height = h;
    const a = axis.canvas.getContext("2d");
    a.font = "11px DejaVu Sans Mono, monospace";
    a.textBaseline = "middle";
    a.fillStyle = "#7c8899";
    for (let r = 0; r < nRows; r++) {
      const price = top - r * tick;
      if (Math.round(price / tick) % 4 === 0) a.fillText(fmtPrice(price, tick), 6, r * rowH + rowH / 2);
    }
  }

  function drawHeatmap() {
    const rows = hud.rows;
    const w = canvas.width, h = canvas.height;
    const plotW = w - AXIS_PX;
    ctx.fillStyle = "#06080b";
    ctx.fillRect(0, 0, w, h);
    const last = rows[rows.length - 1];
    if (!last || !Number.isFinite(last.tick) || last.tick <= 0) return;
    const tick = last.tick;
    const centre = Number.isFinite(last.spot) ? last.spot : Math.round(last.mid / tick) * tick;
    const nRows = 2 * ROWS_SHOWN + 1;
    const rowH = h / nRows;
    const nCols = Math.floor(plotW / COL_PX);
    const shown = rows.slice(Math.max(0, rows.length - nCols));
    const x0 = plotW - shown.length * COL_PX;
    const top = centre + ROWS_SHOWN * tick; // price of the top row
    const yOf = (price) => ((top - price) / tick) * rowH + rowH / 2;

    // cells: one pixel per (second, tick), painted once per second into a ring of columns
    // (offscreen, anchored to a price), then scaled onto the canvas without smoothing
    const n = rows.length, end = hud.dropped + n;
    const fresh = rows.slice(Math.max(0, n - Math.min(nCols, end - paint.upto)));
    if (paint.gen !== hud.generation || paint.tick !== tick || paint.nCols !== nCols
        || Math.abs(centre - paint.anchor) / tick > RANGE - ROWS_SHOWN - 1 || end - paint.upto > nCols
        || outgrows(fresh)) {
      repaint(rows, tick, centre, nCols, end);
    } else {
      for (let a = paint.upto; a < end; a++) paintColumn(rows[a - hud.dropped], a);
      paint.upto = end;
    }
    const count = Math.min(n, nCols), first = end - count;
    const gy = RANGE - Math.round((top - paint.anchor) / tick); // the grid row of the canvas's top price
    const c0 = first % nCols, run = Math.min(count, nCols - c0);
    ctx.imageSmoothingEnabled = false;
    if (run > 0) ctx.drawImage(cells, c0, gy, run, nRows, x0, 0, run * COL_PX, h);
    if (count > run) ctx.drawImage(cells, 0, gy, count - run, nRows, x0 + run * COL_PX, 0, (count - run) * COL_PX, h);

    // price grid and axis: text is the costliest thing to draw, so it is drawn once per price
    // range into an offscreen canvas and copied from there while the range stays
    ctx.fillStyle = "rgba(255,255,255,0.05)";
    for (let r = 0; r < nRows; r++) {
      if (Math.round((top - r * tick) / tick) % 4 === 0) ctx.fillRect(0, Math.round(r * rowH + rowH / 2), plotW, 1);
    }
    const axisKey = `${top}|${tick}|${h}`;
    if (axis.key !== axisKey) drawAxis(axisKey, top, tick, nRows, rowH, h);
    ctx.drawImage(axis.canvas, plotW, 0);
    ctx.font = "11px DejaVu Sans Mono, monospace";
    ctx.textBaseline = "middle";

    // key levels known at the latest second
    ctx.setLineDash([6, 4]);
    for (const name of LEVELS) {
      const level = last.levels[name];
      if (!Number.isFinite(level.price)) continue;
      const y = yOf(level.price);
      if (y < 0 || y > h) continue;
      ctx.strokeStyle = "#f2c14e";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(0, y);
      ctx.lineTo(plotW, y);
      ctx.stroke();
      ctx.fillStyle = "#f2c14e";
      ctx.fillText(name, 4, y - 7);
    }
    ctx.setLineDash([]);

    // the zero-gamma level of the contract's option chain: above it dealers damp moves, below they chase
    if (Number.isFinite(last.gex_zero)) {
      const y = yOf(last.gex_zero);
      if (y >= 0 && y <= h) {
        ctx.strokeStyle = "#b18cff";
        ctx.lineWidth = 1;
        ctx.setLineDash([2, 3]);
        ctx.beginPath();
        ctx.moveTo(0, y);
        ctx.lineTo(plotW, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#b18cff";
        ctx.fillText("0γ", plotW - 24, y - 7);
      }
    }

    // mid
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (let c = 0; c < shown.length; c++) {
      const m = shown[c].mid;
      if (!Number.isFinite(m)) { started = false; continue; }
      const x = x0 + c * COL_PX + COL_PX / 2, y = yOf(m);
      if (started) ctx.lineTo(x, y); else ctx.moveTo(x, y);
      started = true;
    }
    ctx.stroke();

    // trades: a dot where the second traded, sized by its volume (one path, one fill)
    ctx.fillStyle = "rgba(242,193,78,0.85)";
    ctx.beginPath();
    for (let c = 1; c < shown.length; c++) {
      const traded = shown[c].volume - shown[c - 1].volume;
      if (!(traded > 0) || !Number.isFinite(shown[c].last_trade_px)) continue;
      const x = x0 + c * COL_PX + COL_PX / 2, r = Math.min(7, 1.5 + Math.sqrt(traded) / 2);
      ctx.moveTo(x + r, yOf(shown[c].last_trade_px));
      ctx.arc(x, yOf(shown[c].last_trade_px), r, 0, 2 * Math.PI);
    }
    ctx.fill();

    // current price tag
    if (Number.isFinite(last.mid)) {
      const y = yOf(last.mid);
      ctx.fillStyle = "#f2c14e";
      ctx.fillRect(plotW, y - 8, AXIS_PX, 16);
      ctx.fillStyle = "#0b0e13";
      ctx.fillText(fmtPrice(last.mid, tick), plotW + 6, y);
    }
  }

  // ---------------------------------------------------------------- side panels

  const ladderBody = $("ladder").querySelector("tbody");
  const ladderCells = [];
  for (let i = 0; i < 2 * LADDER; i++) {
    const tr = document.createElement("tr");
    if (i === LADDER) tr.className = "spread";
    const tds = ["ct", "bid", "px", "ask", "ct"].map((cls) => {
      const td = document.createElement("td");
      td.className = cls;
      tr.appendChild(td);
      return td;
    });
    ladderBody.appendChild(tr);
    ladderCells.push(tds);
  }

  function drawLadder(row) {
    const L = row.ladder;
    for (let i = 0; i < LADDER; i++) { // asks, highest first, above the bids
      const a = LADDER - 1 - i;
      const tds = ladderCells[i];
      setText(tds[0], ""); setText(tds[1], "");
      setText(tds[2], fmtPrice(L.ask_px[a], row.tick));
      setText(tds[3], fmtSize(L.ask_sz[a]));
      setText(tds[4], fmtSize(L.ask_ct[a]));
    }
    for (let b = 0; b < LADDER; b++) {
      const tds = ladderCells[LADDER + b];
      setText(tds[0], fmtSize(L.bid_ct[b]));
      setText(tds[1], fmtSize(L.bid_sz[b]));
      setText(tds[2], fmtPrice(L.bid_px[b], row.tick));
      setText(tds[3], ""); setText(tds[4], "");
    }
  }

  function setBar(id, a, b, c) {
    const parts = $(id).children;
    const ok = [a, b, c].every(Number.isFinite);
    const total = ok ? a + b + c : 0;
    [a, b, c].forEach((x, k) => setWidth(parts[k], total > 0 ? `${((100 * x) / total).toFixed(1)}%` : "0px"));
  }

  function drawEpisode(row) {
    const has = row.ep_episode_id !== "";
    setText($("ep-title"), has
      ? `${row.ep_level_type} ${fmtPrice(row.ep_level_price, row.tick)} ${row.ep_direction === "UP" ? "from below" : "from above"} ${fmtTime(row.ep_start_ms)}`
      : "no episode yet");
    const outcome = $("ep-outcome");
    setText(outcome, row.ep_outcome);
    if (outcome.className !== `outcome ${row.ep_outcome}`) outcome.className = `outcome ${row.ep_outcome}`;
    setText($("ep-model"), Number.isFinite(row.ep_p_break)
      ? `break ${pct(row.ep_p_break)}  reject ${pct(row.ep_p_reject)}  chop ${pct(row.ep_p_chop)}`
      : (row.ep_score_status || ""));
    setBar("p-bar", row.ep_p_break, row.ep_p_reject, row.ep_p_chop);
    setText($("ep-nn"), row.nn_count > 0
      ? `${row.nn_count}: ${pct(row.ep_nn_break)} / ${pct(row.ep_nn_reject)} / ${pct(row.ep_nn_chop)}` : "");
    setBar("nn-bar", row.ep_nn_break, row.ep_nn_reject, row.ep_nn_chop);
    setText($("ep-open"), `${row.episodes_open} open episode${row.episodes_open === 1 ? "" : "s"}`);
  }

  const bandCells = {};
  const bandBody = $("bands").querySelector("tbody");
  for (const kind of ["wall", "vacuum"]) {
    for (const band of BANDS) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      name.className = "name";
      name.textContent = `${kind} ${band}`;
      tr.appendChild(name);
      for (const side of ["bid", "ask"]) {
        const td = document.createElement("td");
        td.className = "cell";
        td.innerHTML = `<div class="meter ${kind}"><i></i></div>`;
        tr.appendChild(td);
        bandCells[`${kind}_${band}_${side}_norm`] = td.querySelector("i");
      }
      bandBody.appendChild(tr);
    }
  }

  const gexCanvas = $("gex");
  const gexCtx = gexCanvas.getContext("2d");
  const fmtBn = (x) => (Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${x.toFixed(2)}bn` : "-");

  // GEX by strike: one bar per strike (highest on top), right of the axis dealers are long gamma
  // there (they sell rallies, buy dips), left short; the spot and the zero-gamma level as lines
  function drawGex(row) {
    const w = gexCanvas.width, h = gexCanvas.height;
    gexCtx.fillStyle = "#0b0e13";
    gexCtx.fillRect(0, 0, w, h);
    const listed = [];
    for (let k = 0; k < GEX_STRIKES; k++) {
      if (Number.isFinite(row.gex_strike[k])) listed.push(k);
    }
    setText($("gex-net"), Number.isFinite(row.gex_net_bn)
      ? `net ${fmtBn(row.gex_net_bn)}  0γ ${fmtPrice(row.gex_zero, 0.25) || "none"}` : "no option chain");
    setText($("gex-walls"), Number.isFinite(row.gex_net_bn)
      ? `call wall ${fmtPrice(row.gex_call_wall, 0.25) || "-"}  put wall ${fmtPrice(row.gex_put_wall, 0.25) || "-"}`
      : "");
    if (!listed.length) return;
    const hi = row.gex_strike[listed[listed.length - 1]], lo = row.gex_strike[listed[0]];
    const span = Math.max(hi - lo, 1e-9);
    const pad = 8, labelW = 52, mid = labelW + (w - labelW) / 2;
    const yOf = (price) => pad + ((hi - price) / span) * (h - 2 * pad);
    let scale = 0;
    for (const k of listed) if (Number.isFinite(row.gex_bn[k])) scale = Math.max(scale, Math.abs(row.gex_bn[k]));
    const barH = Math.max(2, (h - 2 * pad) / listed.length - 2);
    gexCtx.font = "10px DejaVu Sans Mono, monospace";
    gexCtx.textBaseline = "middle";
    gexCtx.fillStyle = "rgba(255,255,255,0.12)";
    gexCtx.fillRect(mid, pad, 1, h - 2 * pad);
    const every = Math.ceil(12 / ((h - 2 * pad) / listed.length)); // a label every `every` strikes: no overlap
    for (const [n, k] of listed.entries()) {
      const y = yOf(row.gex_strike[k]), v = row.gex_bn[k];
      gexCtx.fillStyle = "#8a93a3";
      if ((listed.length - 1 - n) % every === 0) gexCtx.fillText(fmtPrice(row.gex_strike[k], 0.25), 2, y);
      if (!Number.isFinite(v) || scale <= 0) continue;
      const len = (Math.abs(v) / scale) * ((w - labelW) / 2 - 4);
      gexCtx.fillStyle = v >= 0 ? "#3fb68b" : "#e0555f";
      gexCtx.fillRect(v >= 0 ? mid : mid - len, y - barH / 2, len, barH);
    }
    const line = (price, colour) => {
      if (!Number.isFinite(price) || price > hi + span || price < lo - span) return;
      const y = Math.max(pad, Math.min(h - pad, yOf(price)));
      gexCtx.fillStyle = colour;
      gexCtx.fillRect(labelW, Math.round(y), w - labelW, 1);
    };
    line(row.spot, "#ffffff");
    line(row.gex_zero, "#b18cff");
  }

  function drawBands(row) {
    for (const [name, bar] of Object.entries(bandCells)) {
      const v = row.bands[name];
      setWidth(bar, Number.isFinite(v) ? `${Math.round(100 * Math.max(0, Math.min(1, v)))}%` : "0px");
    }
  }

  // ---------------------------------------------------------------- render loop

  let dirty = false;
  const clockEl = $("clock"), priceEl = $("price");
  function render() {
    dirty = false;
    const row = hud.rows[hud.rows.length - 1];
    const started = performance.now();
    drawHeatmap();
    hud.heatmapMs.push(performance.now() - started);
    if (hud.heatmapMs.length > 5000) hud.heatmapMs.shift();
    if (row) {
      drawLadder(row);
      drawEpisode(row);
      drawBands(row);
      drawGex(row);
      setText(clockEl, fmtTime(row.t_ms));
      setText(priceEl, fmtPrice(row.mid, row.tick));
    }
    const took = performance.now() - started;
    hud.renderMs.push(took);
    if (hud.renderMs.length > 5000) hud.renderMs.shift();
    hud.renders += 1;
    hud.last = row || null;
    document.body.dataset.frames = String(hud.frames);
    document.body.dataset.lastT = row ? String(row.t_ms) : "";
    document.body.dataset.contract = hud.contract || "";
  }

  function schedule() {
    if (!dirty) {
      dirty = true;
      requestAnimationFrame(render);
    }
  }

  // ---------------------------------------------------------------- the connection

  const select = $("contract");
  select.addEventListener("change", () => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ contract: select.value }));
  });

  function setState(s, detail) {
    hud.state = s;
    document.body.dataset.state = s;
    $("state").textContent = detail || s;
  }

  function onText(message) {
    if (message.type === "hello") {
      hud.hello = message;
      hud.contracts = message.contracts.map((c) => c.contract);
      const wanted = hud.contract && hud.contracts.includes(hud.contract) ? hud.contract : message.contract;
      select.replaceChildren(...hud.contracts.map((c) => new Option(c, c, false, c === wanted)));
      $("source").textContent = message.source === "replay"
        ? `replay ${message.session} x${message.speed}` : `live ${message.session || ""}`;
      if (wanted !== message.contract) ws.send(JSON.stringify({ contract: wanted }));
      else hud.contract = wanted;
    } else if (message.type === "contracts") { // live: contracts appear as the flow sees them
      hud.contracts = message.contracts.map((c) => c.contract);
      const keep = hud.contract;
      select.replaceChildren(...hud.contracts.map((c) => new Option(c, c, false, c === keep)));
    } else if (message.type === "contract") {
      hud.contract = message.contract;
      select.value = message.contract;
      hud.rows = [];
      hud.dropped = 0;
      hud.generation += 1;
    } else if (message.type === "error") {
      hud.errors.push(message.message);
    }
  }

  function onFrames(buffer) {
    const received = performance.timeOrigin + performance.now();
    const { kind, rows } = decode(buffer);
    hud.messages += 1;
    if (kind === "snapshot") {
      hud.snapshots += 1;
      hud.rows = rows.filter((r) => r.contract === hud.contract || hud.contract === null);
      hud.dropped = 0;
      hud.generation += 1;
    } else {
      for (const r of rows) {
        if (r.contract !== hud.contract && hud.contract !== null) continue;
        const n = hud.rows.length;
        if (n === 0 || r.t_ms > hud.rows[n - 1].t_ms) {
          hud.rows.push(r);
          continue;
        }
        // a second sent again (a late score, label or level changed it): replace it where it is
        let lo = 0, hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (hud.rows[mid].t_ms < r.t_ms) lo = mid + 1; else hi = mid;
        }
        if (hud.rows[lo].t_ms === r.t_ms) {
          hud.rows[lo] = r;
          hud.generation += 1; // a second drawn already changed: paint again
        }
      }
    }
    if (hud.rows.length > KEEP_ROWS) hud.dropped += hud.rows.splice(0, hud.rows.length - KEEP_ROWS).length;
    hud.frames += rows.length;
    if (kind !== "snapshot") { // when each second arrived (the live bench's measure)
      for (const r of rows) hud.receivedAt.push([r.t_ms, received]);
      if (hud.receivedAt.length > 20000) hud.receivedAt.splice(0, hud.receivedAt.length - 20000);
    }
    schedule();
  }

  let ws = null;
  let attempt = 0;
  let countdown = null;

  function connect() {
    clearInterval(countdown);
    setState(attempt === 0 && hud.messages === 0 ? "connecting" : "reconnecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => { attempt = 0; setState("live"); };
    ws.onmessage = (event) => {
      try {
        if (typeof event.data === "string") onText(JSON.parse(event.data));
        else onFrames(event.data);
      } catch (err) {
        hud.errors.push(String(err));
      }
    };
    ws.onclose = () => {
      const delay = Math.min(10000, 500 * 2 ** attempt) * (0.8 + 0.4 * Math.random());
      attempt += 1;
      const due = Date.now() + delay;
      const tick = () => setState("reconnecting", `reconnecting ${Math.max(0, (due - Date.now()) / 1000).toFixed(0)}s`);
      tick();
      countdown = setInterval(tick, 250);
      setTimeout(connect, delay);
    };
  }

  window.addEventListener("load", () => { render(); connect(); });
})();
