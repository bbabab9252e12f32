/* Hopper web UI.
 *
 * One file of plain JavaScript, no build step, no third-party code. The server inlines it into
 * index.html together with app.css and a `window.templateArgs` object, so the live dashboard and the
 * HTML report are single self-contained pages that work offline.
 *
 *  - templateArgs.is_report === true  -> render a static report (Locust's report args, no network)
 *  - otherwise                         -> the live single-page app that polls the REST API
 *
 * Everything that comes from the server is put into the page with textContent (never innerHTML),
 * so request names, error messages and tracebacks are always shown literally.
 */
(function () {
  'use strict';

  var ARGS = window.templateArgs || {};
  var BASE = String(ARGS.base_path || '').replace(/\/+$/, '');
  var PCT_CHART = Array.isArray(ARGS.percentiles_to_chart) && ARGS.percentiles_to_chart.length
    ? ARGS.percentiles_to_chart : [0.5, 0.95];
  var PCT_STATS = Array.isArray(ARGS.percentiles_to_statistics) && ARGS.percentiles_to_statistics.length
    ? ARGS.percentiles_to_statistics : [0.95, 0.99];

  var STATS_POLL_MS = 2000;
  var AUX_POLL_MS = 5000;

  // ------------------------------------------------------------------------------------------------
  // Small helpers
  // ------------------------------------------------------------------------------------------------

  /** Build an element. attrs: class, text, testid, on<event>, svg (trusted static markup), others as attributes. */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (!Object.prototype.hasOwnProperty.call(attrs, k)) continue;
        var v = attrs[k];
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'testid') el.setAttribute('data-testid', v);
        else if (k === 'svg') el.innerHTML = v; // only ever called with the constant icons below
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) { for (var i = 0; i < c.length; i++) append(el, c[i]); return; }
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }
  function setText(el, text) { text = String(text); if (el.textContent !== text) el.textContent = text; }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function roundTo(v, d) { var f = Math.pow(10, d); return Math.round(v * f) / f; }
  /** Locust-style number: at most `d` decimals, no trailing zeros. */
  function fmtNum(v, d) {
    if (v == null || v === '') return '\u2014';
    var n = Number(v);
    if (!isFinite(n)) return '\u2014';
    var r = roundTo(n, d == null ? 2 : d);
    if (Object.is(r, -0)) r = 0;
    return String(r);
  }
  /** Whole counts with thousands separators. */
  function fmtCount(v) {
    if (v == null || !isFinite(Number(v))) return '\u2014';
    return Math.round(Number(v)).toLocaleString('en-US');
  }
  function fmtPercentRatio(r) {
    if (!isNum(r)) return '0%';
    var p = r * 100;
    if (p > 0 && p < 0.1) return '<0.1%';
    return fmtNum(p, p > 0 && p < 10 ? 1 : 0) + '%';
  }
  function fmtBytes(b) {
    if (!isNum(b)) return '\u2014';
    var units = ['B', 'KB', 'MB', 'GB', 'TB'];
    var i = 0;
    while (Math.abs(b) >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return fmtNum(b, i === 0 ? 0 : 1) + ' ' + units[i];
  }
  function pad2(n) { return n < 10 ? '0' + n : String(n); }
  function fmtClock(ms, withSeconds) {
    var d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + (withSeconds === false ? '' : ':' + pad2(d.getSeconds()));
  }
  function fmtDateTime(ms) {
    if (!isNum(ms)) return '';
    var d = new Date(ms);
    return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate()) + ' ' + fmtClock(ms);
  }
  function fmtEpoch(sec) { return isNum(sec) ? fmtDateTime(sec * 1000) : ''; }
  function pctLabel(p) { return String(Math.round(p * 100 * 1e6) / 1e6); }
  function ordinal(p) { return pctLabel(p) + 'th percentile'; }
  function parseTs(ts) {
    if (isNum(ts)) return ts > 1e12 ? ts : ts * 1000;
    var t = Date.parse(ts);
    return isFinite(t) ? t : NaN;
  }
  function url(path) { return BASE + path; }
  function stableStringify(v) { try { return JSON.stringify(v); } catch (e) { return String(Math.random()); } }

  var ICONS = {
    logo: '<svg viewBox="0 0 32 32" aria-hidden="true">' +
      '<rect width="32" height="32" rx="7" fill="#177245"/><path d="M5 24.5h22" stroke="#ffffff" stroke-opacity=".55" stroke-width="2" stroke-linecap="round"/><path d="M7 22Q16 1 25 22" fill="none" stroke="#c7f284" stroke-width="2.6" stroke-linecap="round" stroke-dasharray="3.2 3.4"/><circle cx="16" cy="11.6" r="3.6" fill="#ffffff"/></svg>',
    moon: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/></svg>',
    sun: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><circle cx="12" cy="12" r="4.5"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/></svg>',
    download: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M12 3v12M7 10l5 5 5-5M4 19h16"/></svg>',
    report: '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M6 3h9l4 4v14H6z"/><path d="M9 13v4M12 10v7M15 14v3"/></svg>'
  };

  // ------------------------------------------------------------------------------------------------
  // Theme (light by default; dark is remembered in localStorage, or ?theme=dark like Locust's report)
  // ------------------------------------------------------------------------------------------------

  var THEME_KEY = 'hopper-theme';
  function storedTheme() {
    try { return window.localStorage.getItem(THEME_KEY); } catch (e) { return null; }
  }
  function currentTheme() { return document.documentElement.getAttribute('data-theme') === 'dark' ? 'dark' : 'light'; }
  var themeListeners = [];
  function applyTheme(theme, remember) {
    document.documentElement.setAttribute('data-theme', theme === 'dark' ? 'dark' : 'light');
    if (remember) { try { window.localStorage.setItem(THEME_KEY, theme); } catch (e) { /* private mode */ } }
    themeListeners.forEach(function (f) { f(theme); });
  }
  (function initTheme() {
    var q = /[?&]theme=(dark|light)\b/.exec(window.location.search);
    var fromArgs = ARGS.theme === 'dark' || ARGS.theme === 'light' ? ARGS.theme : null;
    applyTheme(q ? q[1] : (fromArgs || storedTheme() || 'light'), false);
  })();
  function themeButton() {
    var btn = h('button', { class: 'btn btn-ghost btn-icon', type: 'button', testid: 'btn-theme', title: 'Toggle dark theme', 'aria-label': 'Toggle dark theme' });
    function paint() { btn.innerHTML = currentTheme() === 'dark' ? ICONS.sun : ICONS.moon; }
    btn.addEventListener('click', function () { applyTheme(currentTheme() === 'dark' ? 'light' : 'dark', true); });
    themeListeners.push(paint);
    paint();
    return btn;
  }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // ------------------------------------------------------------------------------------------------
  // DataTable: keyed rows, cells updated in place, sortable headers, optional name filter.
  // Rebuilding nothing that did not change keeps 500+ rows cheap to refresh every 2 s.
  // ------------------------------------------------------------------------------------------------

  /**
   * columns: [{ id, label, get(row) -> raw value, fmt(value,row) -> text, num, cls(value,row) -> class,
   *             render(td, row) (custom content; re-run only when fmt text changes) }]
   */
  function DataTable(opts) {
    this.opts = opts;
    this.columns = opts.columns;
    this.records = new Map();
    this.order = [];
    this.inputOrder = [];
    this.sortCol = -1;
    this.sortDir = 1;
    this.filterText = '';
    this.agg = null;

    var self = this;
    this.thead = h('thead');
    var tr = h('tr');
    this.ths = this.columns.map(function (col, i) {
      var th = h('th', { class: 'c-' + col.id + (col.num ? ' num' : '') + (opts.sortable === false ? '' : ' sortable'), scope: 'col', title: opts.sortable === false ? null : 'Sort by ' + col.label });
      th.appendChild(document.createTextNode(col.label));
      var arrow = h('span', { class: 'arrow' });
      th.appendChild(arrow);
      th._arrow = arrow;
      if (opts.sortable !== false) th.addEventListener('click', function () { self.toggleSort(i); });
      tr.appendChild(th);
      return th;
    });
    this.thead.appendChild(tr);
    this.tbody = h('tbody', { testid: opts.bodyTestid });
    this.tfoot = h('tfoot');
    this.emptyRow = h('tr', { class: 'empty', testid: opts.emptyTestid },
      h('td', { colspan: this.columns.length, text: opts.emptyText || 'Nothing yet' }));
    this.table = h('table', { class: 'data', testid: opts.testid }, this.thead, this.tbody, this.tfoot);
    this.wrap = h('div', { class: 'table-wrap' + (opts.tall ? ' tall' : '') }, this.table);
    this.tbody.appendChild(this.emptyRow);
  }
  DataTable.prototype.toggleSort = function (i) {
    if (this.sortCol !== i) { this.sortCol = i; this.sortDir = this.columns[i].num ? -1 : 1; }
    else if (this.sortDir === (this.columns[i].num ? -1 : 1)) this.sortDir = -this.sortDir;
    else this.sortCol = -1; // third click: back to the server's order
    for (var c = 0; c < this.ths.length; c++) {
      this.ths[c]._arrow.textContent = c === this.sortCol ? (this.sortDir > 0 ? '\u25B2' : '\u25BC') : '';
      this.ths[c].setAttribute('aria-sort', c === this.sortCol ? (this.sortDir > 0 ? 'ascending' : 'descending') : 'none');
    }
    this.reorder();
  };
  DataTable.prototype.makeRecord = function (key, rowTestid) {
    var tr = h('tr', { testid: rowTestid });
    var tds = this.columns.map(function (col) {
      var td = h('td', { class: (col.num ? 'num ' : '') + (col.tdClass || '') });
      tr.appendChild(td);
      return td;
    });
    return { key: key, tr: tr, tds: tds, texts: new Array(this.columns.length), classes: new Array(this.columns.length), row: null, filterKey: '' };
  };
  DataTable.prototype.fillRecord = function (rec, row) {
    rec.row = row;
    for (var i = 0; i < this.columns.length; i++) {
      var col = this.columns[i];
      var raw = col.get(row);
      var text = col.fmt ? col.fmt(raw, row) : (raw == null ? '' : String(raw));
      if (rec.texts[i] !== text) {
        rec.texts[i] = text;
        if (col.render) { clear(rec.tds[i]); col.render(rec.tds[i], row, text); }
        else rec.tds[i].textContent = text;
      }
      if (col.cls) {
        var c = (col.num ? 'num ' : '') + (col.tdClass || '') + ' ' + (col.cls(raw, row) || '');
        if (rec.classes[i] !== c) { rec.classes[i] = c; rec.tds[i].className = c; }
      }
    }
    if (this.opts.filterKey) rec.filterKey = this.opts.filterKey(row).toLowerCase();
  };
  /** rows: array in server order; agg: optional aggregated row shown last (in tfoot). */
  DataTable.prototype.setRows = function (rows, agg) {
    var seen = new Set();
    var inputOrder = [];
    var keyOf = this.opts.keyOf;
    for (var i = 0; i < rows.length; i++) {
      var key = keyOf(rows[i], i);
      if (seen.has(key)) continue;
      seen.add(key);
      var rec = this.records.get(key);
      if (!rec) { rec = this.makeRecord(key, this.opts.rowTestid); this.records.set(key, rec); }
      this.fillRecord(rec, rows[i]);
      inputOrder.push(rec);
    }
    var self = this;
    this.records.forEach(function (rec, key) {
      if (!seen.has(key)) { if (rec.tr.parentNode) rec.tr.parentNode.removeChild(rec.tr); self.records.delete(key); }
    });
    this.inputOrder = inputOrder;
    if (agg) {
      if (!this.agg) { this.agg = this.makeRecord('\u0000agg', this.opts.aggTestid); this.tfoot.appendChild(this.agg.tr); }
      this.fillRecord(this.agg, agg);
    } else if (this.agg) {
      this.tfoot.removeChild(this.agg.tr); this.agg = null;
    }
    this.reorder();
  };
  DataTable.prototype.reorder = function () {
    var list = this.inputOrder.slice();
    if (this.sortCol >= 0) {
      var col = this.columns[this.sortCol], dir = this.sortDir;
      var sortVal = col.sortValue || col.get;
      list.sort(function (a, b) {
        var x = sortVal(a.row), y = sortVal(b.row);
        if (x == null) x = col.num ? -Infinity : '';
        if (y == null) y = col.num ? -Infinity : '';
        if (typeof x === 'number' && typeof y === 'number') return (x - y) * dir;
        return String(x).localeCompare(String(y)) * dir;
      });
    }
    var same = list.length === this.order.length;
    for (var i = 0; same && i < list.length; i++) if (list[i] !== this.order[i]) same = false;
    if (!same || (list.length && this.emptyRow.parentNode)) {
      var frag = document.createDocumentFragment();
      for (var j = 0; j < list.length; j++) frag.appendChild(list[j].tr);
      if (this.emptyRow.parentNode) this.tbody.removeChild(this.emptyRow);
      this.tbody.appendChild(frag);
      this.order = list;
    }
    if (!list.length && !this.emptyRow.parentNode) this.tbody.appendChild(this.emptyRow);
    this.applyFilter();
  };
  DataTable.prototype.setFilter = function (text) { this.filterText = String(text || '').toLowerCase(); this.applyFilter(); };
  DataTable.prototype.applyFilter = function () {
    var f = this.filterText, shown = 0;
    for (var i = 0; i < this.order.length; i++) {
      var rec = this.order[i];
      var hide = !!f && rec.filterKey.indexOf(f) === -1;
      if (rec.tr.hidden !== hide) rec.tr.hidden = hide;
      if (!hide) shown++;
    }
    this.shown = shown;
    if (this.onFilter) this.onFilter(shown, this.order.length);
  };

  // ------------------------------------------------------------------------------------------------
  // LineChart: a small time-series chart on <canvas>, with a hover tooltip and min/max decimation
  // ------------------------------------------------------------------------------------------------

  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
    .map(function (s) { return s * 1000; });

  function niceStep(range, target) {
    var raw = range / Math.max(1, target);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / mag;
    var step = n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10;
    return step * mag;
  }

  /**
   * opts: { title, testid, series: [{ label, color: css var, fmt }], integer, unit }
   */
  function LineChart(opts) {
    this.opts = opts;
    this.xs = [];
    this.ys = opts.series.map(function () { return []; });
    this.hoverIndex = -1;
    this.dirty = true;

    var self = this;
    this.legendValues = [];
    var legend = h('div', { class: 'legend' }, opts.series.map(function (s, i) {
      var val = h('span', { class: 'legend-value', text: '' });
      self.legendValues[i] = val;
      var sw = h('span', { class: 'legend-swatch' });
      s._swatch = sw;
      return h('span', { class: 'legend-item' }, sw, h('span', { text: s.label }), val);
    }));
    this.canvas = h('canvas', { testid: opts.testid, 'data-points': '0', role: 'img', 'aria-label': opts.title });
    this.overlay = h('canvas', { 'aria-hidden': 'true' });
    this.tip = h('div', { class: 'chart-tip', hidden: true });
    this.emptyNote = h('div', { class: 'chart-empty', text: opts.emptyText || 'Waiting for data\u2026' });
    this.box = h('div', { class: 'chart-box' }, this.canvas, this.overlay, this.emptyNote, this.tip);
    this.el = h('section', { class: 'card chart-card', testid: opts.testid + '-card' },
      h('div', { class: 'chart-head' }, h('h3', { class: 'chart-title', text: opts.title }), legend),
      this.box);

    this.overlay.addEventListener('mousemove', function (ev) { self.onHover(ev); });
    this.overlay.addEventListener('mouseleave', function () { self.hoverIndex = -1; self.tip.hidden = true; self.drawOverlay(); });
    if (window.ResizeObserver) {
      new ResizeObserver(function () { self.dirty = true; self.schedule(); }).observe(this.box);
    }
    themeListeners.push(function () { self.dirty = true; self.schedule(); });
  }
  LineChart.prototype.length = function () { return this.xs.length; };
  LineChart.prototype.push = function (t, values) {
    if (!isFinite(t)) return;
    // keep x sorted (history points and client polls can interleave by a second)
    var n = this.xs.length;
    if (n && t < this.xs[n - 1]) t = this.xs[n - 1];
    this.xs.push(t);
    for (var i = 0; i < this.ys.length; i++) {
      var v = values[i];
      this.ys[i].push(v == null || !isFinite(Number(v)) ? NaN : Number(v));
    }
    this.dirty = true;
    this.schedule();
  };
  LineChart.prototype.clear = function () {
    this.xs = [];
    this.ys = this.ys.map(function () { return []; });
    this.hoverIndex = -1;
    this.tip.hidden = true;
    this.dirty = true;
    this.schedule();
  };
  LineChart.prototype.schedule = function () {
    var self = this;
    if (this.pending) return;
    this.pending = true;
    window.requestAnimationFrame(function () { self.pending = false; if (self.dirty) self.draw(); });
  };
  LineChart.prototype.colors = function () {
    return this.opts.series.map(function (s) { return cssVar(s.color) || '#888'; });
  };
  LineChart.prototype.updateLegend = function (colors) {
    var n = this.xs.length;
    for (var i = 0; i < this.opts.series.length; i++) {
      var s = this.opts.series[i];
      s._swatch.style.background = colors[i];
      var v = NaN;
      for (var j = n - 1; j >= 0 && j >= n - 3; j--) { if (isFinite(this.ys[i][j])) { v = this.ys[i][j]; break; } }
      setText(this.legendValues[i], n && isFinite(v) ? (s.fmt || this.fmtY.bind(this))(v) : '');
    }
  };
  LineChart.prototype.fmtY = function (v) { return this.opts.integer ? fmtCount(v) : fmtNum(v, 2); };
  LineChart.prototype.draw = function () {
    var w = this.box.clientWidth, ht = this.box.clientHeight;
    var colors = this.colors();
    this.updateLegend(colors);
    this.canvas.setAttribute('data-points', String(this.xs.length));
    this.emptyNote.hidden = this.xs.length > 0;
    if (!w || !ht) return; // hidden tab: drawn when shown
    this.dirty = false;
    var dpr = window.devicePixelRatio || 1;
    var cw = Math.round(w * dpr), ch = Math.round(ht * dpr);
    [this.canvas, this.overlay].forEach(function (c) { if (c.width !== cw || c.height !== ch) { c.width = cw; c.height = ch; } });
    var ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, ht);

    var xs = this.xs, n = xs.length;
    var gridColor = cssVar('--chart-grid') || '#e5e7eb';
    var axisColor = cssVar('--chart-axis') || '#6b7280';
    ctx.font = '11px ' + (cssVar('--sans') || 'sans-serif');

    // y range
    var ymax = 0;
    for (var s = 0; s < this.ys.length; s++) {
      var ys = this.ys[s];
      for (var i = 0; i < n; i++) if (ys[i] > ymax) ymax = ys[i];
    }
    if (!(ymax > 0)) ymax = this.opts.integer ? 4 : 1;
    var ystep = niceStep(ymax, 4);
    if (this.opts.integer && ystep < 1) ystep = 1;
    var ytop = Math.ceil(ymax / ystep - 1e-9) * ystep;
    if (ytop < ymax * 1.04) ytop += ystep * (ytop - ymax < ystep * 0.05 ? 1 : 0);
    var yticks = [];
    for (var t = 0; t <= ytop + ystep / 2; t += ystep) yticks.push(t);
    var labelW = 0;
    var self = this;
    var ylabels = yticks.map(function (v) { var s = self.fmtY(roundTo(v, 6)); labelW = Math.max(labelW, ctx.measureText(s).width); return s; });

    var L = Math.ceil(labelW) + 14, R = w - 14, T = 10, B = ht - 24;
    var pw = Math.max(10, R - L), ph = Math.max(10, B - T);
    var x0 = n ? xs[0] : Date.now() - 60000, x1 = n ? xs[n - 1] : Date.now();
    if (x1 - x0 < 10000) x1 = x0 + 10000;
    this.geom = { L: L, R: R, T: T, B: B, pw: pw, ph: ph, x0: x0, x1: x1, ytop: ytop };
    function sx(x) { return L + (x - x0) / (x1 - x0) * pw; }
    function sy(y) { return B - y / ytop * ph; }

    // grid + y labels
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (var k = 0; k < yticks.length; k++) {
      var yy = Math.round(sy(yticks[k])) + 0.5;
      ctx.strokeStyle = k === 0 ? axisColor : gridColor;
      ctx.globalAlpha = k === 0 ? 0.6 : 1;
      ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(R, yy); ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = axisColor;
      ctx.fillText(ylabels[k], L - 7, yy);
    }
    // x ticks (aligned on local time)
    var span = x1 - x0, step = TIME_STEPS[TIME_STEPS.length - 1];
    for (var q = 0; q < TIME_STEPS.length; q++) { if (span / TIME_STEPS[q] <= pw / 80) { step = TIME_STEPS[q]; break; } }
    var off = new Date(x0).getTimezoneOffset() * 60000;
    var first = Math.ceil((x0 - off) / step) * step + off;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (var xt = first; xt <= x1; xt += step) {
      var px = Math.round(sx(xt)) + 0.5;
      ctx.strokeStyle = axisColor; ctx.globalAlpha = 0.6;
      ctx.beginPath(); ctx.moveTo(px, B); ctx.lineTo(px, B + 4); ctx.stroke();
      ctx.globalAlpha = 1;
      var label = fmtClock(xt, step < 60000), half = ctx.measureText(label).width / 2;
      if (px - half < 0 || px + half > w) continue; // would be cut at the edge
      ctx.fillStyle = axisColor;
      ctx.fillText(label, px, B + 7);
    }

    // series
    if (n) {
      ctx.save();
      ctx.beginPath(); ctx.rect(L, T - 2, pw + 2, ph + 4); ctx.clip();
      ctx.lineJoin = 'round'; ctx.lineCap = 'round'; ctx.lineWidth = 2;
      var showDots = n <= pw / 12;
      for (var si = 0; si < this.ys.length; si++) {
        ctx.strokeStyle = colors[si]; ctx.fillStyle = colors[si];
        drawSeries(ctx, xs, this.ys[si], sx, sy, pw, L, showDots);
      }
      ctx.restore();
    }
    this.drawOverlay();
  };
  function drawSeries(ctx, xs, ys, sx, sy, pw, L, dots) {
    var n = xs.length, pen = false, i;
    ctx.beginPath();
    if (n <= pw * 2) {
      for (i = 0; i < n; i++) {
        var y = ys[i];
        if (!isFinite(y)) { pen = false; continue; }
        var px = sx(xs[i]), py = sy(y);
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true;
      }
      ctx.stroke();
      if (dots) {
        for (i = 0; i < n; i++) {
          if (!isFinite(ys[i])) continue;
          ctx.beginPath(); ctx.arc(sx(xs[i]), sy(ys[i]), 2.6, 0, Math.PI * 2); ctx.fill();
        }
      }
      return;
    }
    // Decimate: one pixel column keeps its first, min, max and last value.
    var col = -Infinity, fst = 0, mn = 0, mx = 0, lst = 0, has = false;
    function flush() {
      if (!has) return;
      var cx = L + col + 0.5;
      if (pen) ctx.lineTo(cx, sy(fst)); else ctx.moveTo(cx, sy(fst));
      ctx.lineTo(cx, sy(mn)); ctx.lineTo(cx, sy(mx)); ctx.lineTo(cx, sy(lst));
      pen = true;
    }
    for (i = 0; i < n; i++) {
      var v = ys[i];
      if (!isFinite(v)) continue;
      var c = Math.floor(sx(xs[i]) - L);
      if (c !== col) { flush(); col = c; fst = mn = mx = lst = v; has = true; }
      else { if (v < mn) mn = v; if (v > mx) mx = v; lst = v; }
    }
    flush();
    ctx.stroke();
  }
  LineChart.prototype.onHover = function (ev) {
    var g = this.geom, n = this.xs.length;
    if (!g || !n) return;
    var rect = this.overlay.getBoundingClientRect();
    var mx = ev.clientX - rect.left;
    var t = g.x0 + (mx - g.L) / g.pw * (g.x1 - g.x0);
    // binary search for the nearest x
    var lo = 0, hi = n - 1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (this.xs[mid] < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(this.xs[lo - 1] - t) <= Math.abs(this.xs[lo] - t)) lo--;
    this.hoverIndex = lo;
    this.drawOverlay();
    // tooltip
    var colors = this.colors(), self = this;
    clear(this.tip);
    this.tip.appendChild(h('div', { class: 'tip-time', text: fmtDateTime(this.xs[lo]) }));
    this.opts.series.forEach(function (s, i) {
      var v = self.ys[i][lo];
      var dot = h('span', { class: 'dot' }); dot.style.background = colors[i];
      self.tip.appendChild(h('div', { class: 'tip-row' }, dot, h('span', { text: s.label }),
        h('b', { text: isFinite(v) ? (s.fmt || self.fmtY.bind(self))(v) : '\u2014' })));
    });
    this.tip.hidden = false;
    var px = g.L + (this.xs[lo] - g.x0) / (g.x1 - g.x0) * g.pw;
    var tw = this.tip.offsetWidth, bw = this.box.clientWidth;
    var left = px + 14;
    if (left + tw > bw - 4) left = px - tw - 14;
    this.tip.style.left = Math.max(4, left) + 'px';
    this.tip.style.top = Math.max(4, (ev.clientY - rect.top) - 30) + 'px';
  };
  LineChart.prototype.drawOverlay = function () {
    var ctx = this.overlay.getContext('2d');
    var dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width / dpr, this.overlay.height / dpr);
    var g = this.geom, i = this.hoverIndex;
    if (!g || i < 0 || i >= this.xs.length) return;
    var px = Math.round(g.L + (this.xs[i] - g.x0) / (g.x1 - g.x0) * g.pw) + 0.5;
    ctx.strokeStyle = cssVar('--chart-axis') || '#888';
    ctx.globalAlpha = 0.7;
    ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(px, g.T); ctx.lineTo(px, g.B); ctx.stroke();
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
    var colors = this.colors();
    var surface = cssVar('--surface') || '#fff';
    for (var s = 0; s < this.ys.length; s++) {
      var v = this.ys[s][i];
      if (!isFinite(v)) continue;
      var py = g.B - v / g.ytop * g.ph;
      ctx.beginPath(); ctx.arc(px, py, 4.5, 0, Math.PI * 2);
      ctx.fillStyle = surface; ctx.fill();
      ctx.lineWidth = 2; ctx.strokeStyle = colors[s]; ctx.stroke();
    }
  };

  /** The three standard charts; push() takes one history-like sample. */
  function ChartSet(emptyText) {
    var palette = ['--chart-3', '--chart-4', '--chart-5', '--chart-6', '--chart-1', '--chart-2'];
    var msFmt = function (v) { return fmtNum(v, 2) + ' ms'; };
    this.rps = new LineChart({ title: 'Total Requests per Second', testid: 'chart-rps', emptyText: emptyText,
      series: [{ label: 'RPS', color: '--chart-1' }, { label: 'Failures/s', color: '--chart-2' }] });
    this.rt = new LineChart({ title: 'Response Times (ms)', testid: 'chart-response-times', emptyText: emptyText,
      series: PCT_CHART.map(function (p, i) { return { label: ordinal(p), color: palette[i % palette.length], fmt: msFmt }; }) });
    this.users = new LineChart({ title: 'Number of Users', testid: 'chart-users', integer: true, emptyText: emptyText,
      series: [{ label: 'Users', color: '--chart-5' }] });
    this.all = [this.rps, this.rt, this.users];
    this.el = h('div', { class: 'charts' }, this.all.map(function (c) { return c.el; }));
  }
  ChartSet.prototype.push = function (t, rps, fails, pcts, users) {
    this.rps.push(t, [rps, fails]);
    this.rt.push(t, pcts);
    this.users.push(t, [users]);
  };
  ChartSet.prototype.clear = function () { this.all.forEach(function (c) { c.clear(); }); };
  ChartSet.prototype.redraw = function () { this.all.forEach(function (c) { c.dirty = true; c.schedule(); }); };
  /** Seed from Locust's history points (plus Hopper's precise_percentile_* keys). */
  ChartSet.prototype.seed = function (history) {
    if (!Array.isArray(history)) return;
    for (var i = 0; i < history.length; i++) {
      var p = history[i] || {};
      var t = parseTs(p.time != null ? p.time : (p.current_rps && p.current_rps[0]));
      var pv = function (key) { var v = p[key]; return Array.isArray(v) ? v[1] : v; };
      var pcts = PCT_CHART.map(function (q) {
        var precise = pv('precise_percentile_' + q);
        return precise != null ? precise : pv('response_time_percentile_' + q);
      });
      this.push(t, pv('current_rps'), pv('current_fail_per_sec'), pcts, pv('user_count'));
    }
  };

  // ------------------------------------------------------------------------------------------------
  // Shared renderers (live UI and report)
  // ------------------------------------------------------------------------------------------------

  function statsKey(r) { return (r.method || '') + '\u0000' + (r.name || ''); }
  function splitAggregated(rows) {
    rows = Array.isArray(rows) ? rows : [];
    var last = rows[rows.length - 1];
    if (last && last.name === 'Aggregated' && !last.method) return { rows: rows.slice(0, -1), agg: last };
    return { rows: rows, agg: null };
  }
  function failCls(v) { return v > 0 ? 'fail' : ''; }
  function msCol(id, label, key) {
    return { id: id, label: label, num: true, get: function (r) { return r[key]; }, fmt: function (v) { return fmtNum(v, 2); } };
  }

  function liveStatsColumns() {
    var cols = [
      { id: 'method', label: 'Type', tdClass: 'method', get: function (r) { return r.method || ''; } },
      { id: 'name', label: 'Name', tdClass: 'name', get: function (r) { return r.name; } },
      { id: 'reqs', label: '# Requests', num: true, get: function (r) { return r.num_requests; }, fmt: fmtCount },
      { id: 'fails', label: '# Fails', num: true, get: function (r) { return r.num_failures; }, fmt: fmtCount, cls: failCls },
      msCol('median', 'Median (ms)', 'median_response_time')
    ];
    PCT_STATS.forEach(function (p) {
      cols.push(msCol('p' + p, pctLabel(p) + '%ile (ms)', 'response_time_percentile_' + p));
    });
    cols.push(
      msCol('avg', 'Average (ms)', 'avg_response_time'),
      msCol('min', 'Min (ms)', 'min_response_time'),
      msCol('max', 'Max (ms)', 'max_response_time'),
      { id: 'size', label: 'Average size (bytes)', num: true, get: function (r) { return r.avg_content_length; }, fmt: function (v) { return fmtNum(v, 2); } },
      { id: 'rps', label: 'Current RPS', num: true, get: function (r) { return r.current_rps; }, fmt: function (v) { return fmtNum(v, 2); } },
      { id: 'fps', label: 'Current Failures/s', num: true, get: function (r) { return r.current_fail_per_sec; }, fmt: function (v) { return fmtNum(v, 2); }, cls: failCls }
    );
    return cols;
  }
  function reportStatsColumns() {
    return [
      { id: 'method', label: 'Type', tdClass: 'method', get: function (r) { return r.method || ''; } },
      { id: 'name', label: 'Name', tdClass: 'name', get: function (r) { return r.name; } },
      { id: 'reqs', label: '# Requests', num: true, get: function (r) { return r.num_requests; }, fmt: fmtCount },
      { id: 'fails', label: '# Fails', num: true, get: function (r) { return r.num_failures; }, fmt: fmtCount, cls: failCls },
      msCol('median', 'Median (ms)', 'median_response_time'),
      msCol('avg', 'Average (ms)', 'avg_response_time'),
      msCol('min', 'Min (ms)', 'min_response_time'),
      msCol('max', 'Max (ms)', 'max_response_time'),
      { id: 'size', label: 'Average size (bytes)', num: true, get: function (r) { return r.avg_content_length; }, fmt: function (v) { return fmtNum(v, 2); } },
      { id: 'rps', label: 'RPS', num: true, get: function (r) { return r.total_rps; }, fmt: function (v) { return fmtNum(v, 2); } },
      { id: 'fps', label: 'Failures/s', num: true, get: function (r) { return r.total_fail_per_sec; }, fmt: function (v) { return fmtNum(v, 2); }, cls: failCls }
    ];
  }
  function failureColumns() {
    return [
      { id: 'count', label: '# Failures', num: true, get: function (r) { return r.occurrences; }, fmt: fmtCount },
      { id: 'method', label: 'Method', tdClass: 'method', get: function (r) { return r.method || ''; } },
      { id: 'name', label: 'Name', tdClass: 'name', get: function (r) { return r.name; } },
      { id: 'msg', label: 'Message', tdClass: 'msg', get: function (r) { return r.error; } },
      { id: 'first', label: 'First Seen', get: function (r) { return r.first_seen; }, fmt: fmtEpoch, num: false, tdClass: 'muted nowrap' },
      { id: 'last', label: 'Last Seen', get: function (r) { return r.last_seen; }, fmt: fmtEpoch, num: false, tdClass: 'muted nowrap' }
    ];
  }
  function exceptionColumns(withNodes) {
    var cols = [
      { id: 'count', label: '# occurrences', num: true, get: function (r) { return r.count; }, fmt: fmtCount },
      { id: 'msg', label: 'Message', tdClass: 'msg', get: function (r) { return r.msg; } },
      { id: 'tb', label: 'Traceback', tdClass: 'wrap-pre', get: function (r) { return r.traceback; },
        render: function (td, r) { td.appendChild(h('pre', { class: 'tb', text: String(r.traceback || '').replace(/\s+$/, '') })); } }
    ];
    if (withNodes) cols.push({ id: 'nodes', label: 'Nodes', tdClass: 'muted', get: function (r) { return Array.isArray(r.nodes) ? r.nodes.join(', ') : r.nodes; } });
    return cols;
  }
  function failureKey(r) { return (r.method || '') + '\u0000' + (r.name || '') + '\u0000' + (r.error || ''); }
  function exceptionKey(r) { return (r.msg || '') + '\u0000' + (r.traceback || ''); }

  function card(title, sub, body, testid, tools) {
    return h('section', { class: 'card', testid: testid },
      (title || tools) ? h('div', { class: 'card-head' },
        title ? h('h2', { class: 'card-title', text: title }) : null,
        sub ? h('span', { class: 'card-sub', text: sub }) : null,
        h('span', { class: 'spacer' }), tools) : null,
      body);
  }
  function emptyState(title, lines, testid) {
    return h('div', { class: 'empty-state', testid: testid }, h('h3', { text: title }),
      (lines || []).map(function (l) { return h('p', null, l); }));
  }

  /** Nested task-ratio list (from /tasks or the report's `tasks`). */
  function renderRatio(tree) {
    function list(obj, depth) {
      var ul = h('ul', { class: 'ratio' });
      Object.keys(obj || {}).forEach(function (name) {
        var node = obj[name] || {};
        var r = isNum(node.ratio) ? node.ratio : 0;
        var bar = h('span'); bar.style.width = Math.max(0, Math.min(100, r * 100)) + '%';
        var li = h('li', null, h('div', { class: 'ratio-line' + (depth === 0 ? ' cls' : '') },
          h('span', { class: 'ratio-pct', text: (r * 100).toFixed(1) + '%' }),
          h('span', { class: 'ratio-bar' }, bar),
          h('span', { class: 'ratio-name', text: name })));
        if (node.tasks && Object.keys(node.tasks).length) li.appendChild(list(node.tasks, depth + 1));
        ul.appendChild(li);
      });
      return ul;
    }
    return list(tree, 0);
  }
  function ratioCards(tasks, emptyText) {
    var per = tasks && tasks.per_class, total = tasks && tasks.total;
    var has = per && Object.keys(per).length;
    if (!has) return emptyState('No ratio yet', [emptyText], 'ratio-empty');
    return h('div', { class: 'ratio-grid' },
      h('section', { class: 'card ratio-card', testid: 'ratio-per-class' }, h('h3', { text: 'Ratio Per Class' }), renderRatio(per)),
      h('section', { class: 'card ratio-card', testid: 'ratio-total' }, h('h3', { text: 'Total Ratio' }), renderRatio(total || {})));
  }

  // ------------------------------------------------------------------------------------------------
  // Report (static, from templateArgs only)
  // ------------------------------------------------------------------------------------------------

  function renderReport(root) {
    document.title = 'Hopper Test Report' + (ARGS.profile ? ' - ' + ARGS.profile : '');
    var start = parseTs(ARGS.start_time), end = parseTs(ARGS.end_time);
    var during = (isFinite(start) ? fmtDateTime(start) : (ARGS.start_time || '')) + ' \u2013 ' +
      (isFinite(end) ? fmtDateTime(end) : (ARGS.end_time || '')) + (ARGS.duration ? ' (' + ARGS.duration + ')' : '');
    var meta = h('dl', { class: 'report-meta', testid: 'report-meta' },
      h('dt', { text: 'During' }), h('dd', { testid: 'report-during', text: during }),
      h('dt', { text: 'Target Host' }), h('dd', { testid: 'report-host', text: ARGS.host == null ? 'None' : String(ARGS.host) }),
      h('dt', { text: 'Script' }), h('dd', { testid: 'report-locustfile', text: ARGS.locustfile || '' }),
      ARGS.profile ? [h('dt', { text: 'Profile' }), h('dd', { text: String(ARGS.profile) })] : null);
    var tools = h('div', { class: 'report-tools' },
      ARGS.show_download_link ? h('a', { class: 'btn', href: '?download=1' + (currentTheme() === 'dark' ? '&theme=dark' : ''), testid: 'report-download', svg: ICONS.download }) : null,
      themeButton());
    if (ARGS.show_download_link) {
      var dl = tools.querySelector('[data-testid="report-download"]');
      dl.appendChild(document.createTextNode('Download the report'));
    }
    var title = h('h1', { svg: ICONS.logo });
    title.appendChild(document.createTextNode('Hopper Test Report'));
    var head = h('header', { class: 'report-head', testid: 'report-header' }, h('div', { style: 'flex:1;min-width:0' }, title, meta), tools);

    // Request statistics
    var split = splitAggregated(ARGS.requests_statistics);
    var reqTable = new DataTable({ columns: reportStatsColumns(), keyOf: statsKey, testid: 'report-requests-table',
      bodyTestid: 'report-requests-body', aggTestid: 'report-requests-aggregated', emptyText: 'No requests were made' });
    reqTable.setRows(split.rows, split.agg);

    // Response time statistics: one column per key such as "0.5", "0.95", "1.0"
    var rts = Array.isArray(ARGS.response_time_statistics) ? ARGS.response_time_statistics : [];
    var pkeys = [];
    rts.forEach(function (r) { Object.keys(r).forEach(function (k) { if (k !== 'name' && k !== 'method' && isFinite(Number(k)) && pkeys.indexOf(k) < 0) pkeys.push(k); }); });
    pkeys.sort(function (a, b) { return Number(a) - Number(b); });
    var rtCols = [
      { id: 'method', label: 'Method', tdClass: 'method', get: function (r) { return r.method || ''; } },
      { id: 'name', label: 'Name', tdClass: 'name', get: function (r) { return r.name; } }
    ].concat(pkeys.map(function (k) {
      return { id: 'p' + k, label: pctLabel(Number(k)) + '%ile (ms)', num: true, get: function (r) { return r[k]; }, fmt: function (v) { return fmtNum(v, 2); } };
    }));
    var rtSplit = splitAggregated(rts);
    var rtTable = new DataTable({ columns: rtCols, keyOf: statsKey, testid: 'report-response-times-table',
      bodyTestid: 'report-response-times-body', aggTestid: 'report-response-times-aggregated', emptyText: 'No requests were made' });
    rtTable.setRows(rtSplit.rows, rtSplit.agg);

    var failTable = new DataTable({ columns: failureColumns(), keyOf: failureKey, testid: 'report-failures-table',
      bodyTestid: 'report-failures-body', emptyText: 'No failures' });
    failTable.setRows(Array.isArray(ARGS.failures_statistics) ? ARGS.failures_statistics : []);

    var exTable = new DataTable({ columns: exceptionColumns(true), keyOf: exceptionKey, testid: 'report-exceptions-table',
      bodyTestid: 'report-exceptions-body', emptyText: 'No exceptions' });
    exTable.setRows(Array.isArray(ARGS.exceptions_statistics) ? ARGS.exceptions_statistics : []);

    var charts = new ChartSet('No history was recorded');
    charts.seed(ARGS.history);

    var page = h('div', { class: 'report', testid: 'report' },
      head,
      h('h2', { text: 'Request Statistics' }), h('section', { class: 'card', testid: 'report-requests' }, reqTable.wrap),
      h('h2', { text: 'Response Time Statistics' }), h('section', { class: 'card', testid: 'report-response-times' }, rtTable.wrap),
      h('h2', { text: 'Failures Statistics' }), h('section', { class: 'card', testid: 'report-failures' }, failTable.wrap),
      h('h2', { text: 'Exceptions Statistics' }), h('section', { class: 'card', testid: 'report-exceptions' }, exTable.wrap),
      h('h2', { text: 'Charts' }), h('div', { testid: 'report-charts' }, charts.el),
      h('h2', { text: 'Final ratio' }), h('div', { testid: 'report-ratio' }, ratioCards(ARGS.tasks, 'No users were running.')));
    clear(root);
    root.appendChild(page);
    charts.redraw();
    window.hopperUI = { report: true, charts: charts };
  }

  // ------------------------------------------------------------------------------------------------
  // Live UI
  // ------------------------------------------------------------------------------------------------

  var STATE_LABELS = { ready: 'Ready', spawning: 'Spawning', running: 'Running', cleanup: 'Cleaning up',
    stopping: 'Stopping', stopped: 'Stopped', missing: 'No runner' };
  var TABS = [
    { id: 'statistics', label: 'Statistics' },
    { id: 'charts', label: 'Charts' },
    { id: 'failures', label: 'Failures' },
    { id: 'exceptions', label: 'Exceptions' },
    { id: 'ratio', label: 'Current Ratio' },
    { id: 'download', label: 'Download Data' },
    { id: 'logs', label: 'Logs' },
    { id: 'workers', label: 'Workers' }
  ];

  function renderLive(root) {
    var S = {
      state: ARGS.state || 'ready',
      userCount: ARGS.user_count || 0,
      workerCount: ARGS.worker_count || 0,
      host: ARGS.host || '',
      distributed: !!ARGS.is_distributed,
      rps: 0, failRatio: 0,
      lastSwarm: null,
      ignoreReadyUntil: 0,
      tab: 'statistics',
      connected: true,
      loggedOut: false
    };
    var hashTab = (window.location.hash || '').replace(/^#/, '');
    if (TABS.some(function (t) { return t.id === hashTab; })) S.tab = hashTab;

    // ---- header ----
    function metric(label, testid, cls) {
      var v = h('span', { class: 'metric-value', testid: testid });
      var m = h('div', { class: 'metric ' + (cls || '') }, h('span', { class: 'metric-label', text: label }), v);
      return { el: m, v: v };
    }
    var mHost = metric('Host', 'header-host', 'metric-host');
    var mState = metric('Status', 'header-state');
    var stateBadge = h('span', { class: 'state-badge' });
    mState.v.appendChild(stateBadge);
    var mUsers = metric('Users', 'header-users');
    var mWorkers = metric('Workers', 'header-workers');
    var mRps = metric('RPS', 'header-rps');
    var mFail = metric('Failures', 'header-failures');
    mWorkers.el.hidden = !S.distributed;

    var btnEdit = h('button', { class: 'btn', type: 'button', testid: 'btn-edit', text: 'Edit', onclick: openEdit });
    var btnStop = h('button', { class: 'btn btn-danger', type: 'button', testid: 'btn-stop', text: 'Stop', onclick: doStop });
    var btnReset = h('button', { class: 'btn', type: 'button', testid: 'btn-reset', text: 'Reset Stats', onclick: doReset });
    var btnNew = h('button', { class: 'btn btn-primary', type: 'button', testid: 'btn-new-test', text: 'New test', onclick: openNewTest });
    var logout = ARGS.auth_enabled ? h('a', { class: 'link-quiet', href: url('/logout'), testid: 'logout-link', text: 'Log out' }) : null;

    var brand = h('a', { class: 'brand', href: url('/') || '/', title: 'Hopper' + (ARGS.version ? ' ' + ARGS.version : '') },
      h('span', { svg: ICONS.logo }),
      h('span', null, h('div', { class: 'brand-name', text: 'Hopper' }),
        ARGS.version ? h('div', { class: 'brand-version', testid: 'version', text: 'v' + ARGS.version }) : null));
    var topbar = h('header', { class: 'topbar', testid: 'topbar' }, brand,
      h('div', { class: 'metrics' }, mHost.el, mState.el, mUsers.el, mWorkers.el, mRps.el, mFail.el),
      h('div', { class: 'actions' }, btnEdit, btnStop, btnReset, btnNew, themeButton(), logout));
    var banner = h('div', { class: 'banner', testid: 'connection-banner', hidden: true, text: 'Lost connection to the Hopper server \u2014 retrying\u2026' });

    // ---- start form (page when ready; modal for "New test") ----
    var form = buildStartForm();
    var startHolder = h('div', { class: 'start-wrap', testid: 'start-view' }, form.card);

    // ---- tabs ----
    var tabButtons = {}, panels = {}, tabCounts = {};
    var tabBar = h('nav', { class: 'tabs', role: 'tablist', testid: 'tabs' }, TABS.map(function (t) {
      var count = h('span', { class: 'tab-count', hidden: true });
      tabCounts[t.id] = count;
      var b = h('button', { class: 'tab', type: 'button', role: 'tab', id: 'tab-' + t.id, 'aria-controls': 'panel-' + t.id,
        'aria-selected': 'false', testid: 'tab-' + t.id, onclick: function () { selectTab(t.id, true); } }, t.label, count);
      tabButtons[t.id] = b;
      return b;
    }));
    var content = h('main', { class: 'content' });
    TABS.forEach(function (t) {
      panels[t.id] = h('section', { class: 'panel', role: 'tabpanel', id: 'panel-' + t.id, 'aria-labelledby': 'tab-' + t.id, testid: 'panel-' + t.id, hidden: true });
      content.appendChild(panels[t.id]);
    });
    var dashboard = h('div', { testid: 'dashboard', hidden: true }, tabBar, content);

    // Statistics
    var statsTable = new DataTable({ columns: liveStatsColumns(), keyOf: statsKey, testid: 'stats-table',
      bodyTestid: 'stats-body', aggTestid: 'stats-aggregated', rowTestid: 'stats-row', tall: true,
      emptyText: 'No requests yet', filterKey: function (r) { return (r.name || '') + ' ' + (r.method || ''); } });
    var filterInput = h('input', { class: 'filter', type: 'search', placeholder: 'Filter by name', testid: 'stats-filter', 'aria-label': 'Filter requests by name' });
    var filterInfo = h('span', { class: 'card-sub', testid: 'stats-filter-info' });
    filterInput.addEventListener('input', function () { statsTable.setFilter(filterInput.value); });
    statsTable.onFilter = function (shown, total) {
      setText(filterInfo, total ? (shown === total ? total + (total === 1 ? ' name' : ' names') : shown + ' of ' + total + ' names') : '');
    };
    panels.statistics.appendChild(card(null, null, statsTable.wrap, 'stats-card', h('div', { style: 'display:flex;gap:12px;align-items:center;width:100%' }, filterInput, filterInfo)));

    // Charts
    var charts = new ChartSet('Waiting for data\u2026 (a point is added every 2 seconds while a test runs)');
    panels.charts.appendChild(charts.el);
    if (S.state !== 'ready') charts.seed(ARGS.history);

    // Failures
    var failTable = new DataTable({ columns: failureColumns(), keyOf: failureKey, testid: 'failures-table', bodyTestid: 'failures-body',
      rowTestid: 'failure-row', emptyText: 'No failures', tall: true });
    panels.failures.appendChild(card(null, null, failTable.wrap, 'failures-card'));

    // Exceptions
    var exTable = new DataTable({ columns: exceptionColumns(S.distributed), keyOf: exceptionKey, testid: 'exceptions-table',
      bodyTestid: 'exceptions-body', rowTestid: 'exception-row', emptyText: 'No exceptions', tall: true });
    panels.exceptions.appendChild(card(null, null, exTable.wrap, 'exceptions-card'));

    // Ratio
    var ratioHolder = h('div', { testid: 'ratio' }, ratioCards(null, 'The ratio appears once users are running.'));
    panels.ratio.appendChild(ratioHolder);
    var lastRatioJson = '';

    // Download data
    function dlItem(testid, href, label, desc, icon, newTab) {
      return h('li', null, h('span', { class: 'dl-icon', svg: icon || ICONS.download }),
        h('div', null, h('a', { href: href, testid: testid, text: label, target: newTab ? '_blank' : null, rel: newTab ? 'noopener' : null }),
          h('div', { class: 'dl-desc', text: desc })));
    }
    var reportLink = dlItem('download-report', url('/stats/report'), 'Open the test report', 'The HTML report of the current run, in a new tab', ICONS.report, true);
    var reportDl = dlItem('download-report-file', url('/stats/report?download=1'), 'Download the test report', 'A single self-contained HTML file that works offline', ICONS.report);
    panels.download.appendChild(card('Download Data', null, h('ul', { class: 'downloads', testid: 'downloads' },
      dlItem('download-requests-csv', url('/stats/requests/csv'), 'Download requests CSV', 'Request statistics per name, with percentiles'),
      ARGS.stats_history_enabled ? dlItem('download-history-csv', url('/stats/requests_full_history/csv'), 'Download full request statistics history CSV', 'One row per name and second (needs --csv and --csv-full-history)') : null,
      dlItem('download-failures-csv', url('/stats/failures/csv'), 'Download failures CSV', 'Every distinct failure with its count'),
      dlItem('download-exceptions-csv', url('/exceptions/csv'), 'Download exceptions CSV', 'Errors raised by tasks, with tracebacks'),
      reportLink, reportDl), 'download-card'));
    themeListeners.push(function (theme) {
      var a1 = reportLink.querySelector('a'), a2 = reportDl.querySelector('a');
      a1.href = url('/stats/report') + (theme === 'dark' ? '?theme=dark' : '');
      a2.href = url('/stats/report?download=1') + (theme === 'dark' ? '&theme=dark' : '');
    });
    if (currentTheme() === 'dark') themeListeners[themeListeners.length - 1]('dark');

    // Logs
    var masterLog = h('pre', { class: 'log', testid: 'logs-master' });
    var workerLogs = h('div', { testid: 'logs-workers' });
    panels.logs.appendChild(card('Logs', 'The last 500 lines', h('div', null, masterLog, workerLogs), 'logs-card'));
    var lastLogsJson = '';

    // Workers
    var workersTable = new DataTable({
      columns: [
        { id: 'id', label: 'Worker', tdClass: 'name mono', get: function (r) { return r.id; } },
        { id: 'state', label: 'State', get: function (r) { return r.state; }, cls: function (v) { return v === 'missing' ? 'fail' : ''; } },
        { id: 'users', label: '# users', num: true, get: function (r) { return r.user_count; }, fmt: fmtCount },
        { id: 'cpu', label: 'CPU usage', num: true, get: function (r) { return r.cpu_usage; }, fmt: function (v) { return isNum(v) ? fmtNum(v, 1) + '%' : '\u2014'; }, cls: function (v) { return v >= 90 ? 'fail' : ''; } },
        { id: 'mem', label: 'Memory usage', num: true, get: function (r) { return r.memory_usage; }, fmt: fmtBytes }
      ],
      keyOf: function (r) { return String(r.id); }, testid: 'workers-table', bodyTestid: 'workers-body', rowTestid: 'worker-row',
      emptyText: 'No workers connected yet'
    });
    if (S.distributed) panels.workers.appendChild(card('Workers', null, workersTable.wrap, 'workers-card'));
    else panels.workers.appendChild(card(null, null, emptyState('Master/worker mode is not active', [
      h('span', null, 'This Hopper process runs every user itself. To spread the load over several processes or machines, start it with ',
        h('code', { text: '--master' }), ' and connect workers started with ', h('code', { text: '--worker --master-host <host>' }), '.')
    ], 'workers-empty'), 'workers-card'));

    var toasts = h('div', { class: 'toasts', testid: 'toasts' });
    clear(root);
    root.appendChild(h('div', null, topbar, banner, startHolder, dashboard, toasts));

    // ---- behaviour ----
    function toast(msg, bad) {
      var t = h('div', { class: 'toast' + (bad ? ' bad' : ''), role: 'status', text: msg });
      toasts.appendChild(t);
      setTimeout(function () { if (t.parentNode) t.parentNode.removeChild(t); }, bad ? 6000 : 2500);
    }

    function selectTab(id, pushHash) {
      S.tab = id;
      TABS.forEach(function (t) {
        var on = t.id === id;
        tabButtons[t.id].setAttribute('aria-selected', on ? 'true' : 'false');
        tabButtons[t.id].tabIndex = on ? 0 : -1;
        panels[t.id].hidden = !on;
      });
      if (pushHash) { try { window.history.replaceState(null, '', '#' + id); } catch (e) { /* file:// */ } }
      if (id === 'charts') charts.redraw();
      if (id === 'logs') masterLog.scrollTop = masterLog.scrollHeight;
    }
    tabBar.addEventListener('keydown', function (ev) {
      if (ev.key !== 'ArrowRight' && ev.key !== 'ArrowLeft') return;
      var i = TABS.findIndex(function (t) { return t.id === S.tab; });
      i = (i + (ev.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length;
      selectTab(TABS[i].id, true);
      tabButtons[TABS[i].id].focus();
    });

    function isActive(st) { return st === 'spawning' || st === 'running'; }
    function render() {
      setText(mHost.v, S.host || '\u2014');
      mHost.v.title = S.host || 'No host set';
      stateBadge.className = 'state-badge s-' + S.state;
      setText(stateBadge, STATE_LABELS[S.state] || S.state);
      setText(mUsers.v, fmtCount(S.userCount));
      setText(mWorkers.v, fmtCount(S.workerCount));
      mWorkers.el.hidden = !S.distributed;
      setText(mRps.v, fmtNum(S.rps, 2));
      setText(mFail.v, fmtPercentRatio(S.failRatio));
      mFail.v.classList.toggle('bad', S.failRatio > 0);
      var ready = S.state === 'ready';
      btnEdit.hidden = !isActive(S.state);
      btnStop.hidden = !isActive(S.state);
      btnReset.hidden = ready;
      btnNew.hidden = S.state !== 'stopped';
      startHolder.hidden = !ready;
      dashboard.hidden = ready;
      if (ready && form.card.parentNode !== startHolder) { closeModal(); startHolder.appendChild(form.card); }
      document.title = 'Hopper' + (S.state && !ready ? ' \u2014 ' + (STATE_LABELS[S.state] || S.state) : '');
    }

    // ---- modal ----
    var modal = null;
    function openModal(title, body, testid, onClose) {
      closeModal();
      var box = h('div', { class: 'card modal', role: 'dialog', 'aria-modal': 'true', 'aria-label': title, testid: testid }, h('h2', { text: title }), body);
      var backdrop = h('div', { class: 'modal-backdrop' }, box);
      backdrop.addEventListener('mousedown', function (ev) { if (ev.target === backdrop) closeModal(); });
      modal = { el: backdrop, onClose: onClose };
      document.body.appendChild(backdrop);
      var f = box.querySelector('input');
      if (f) { f.focus(); f.select && f.select(); }
    }
    function closeModal() {
      if (!modal) return;
      var m = modal; modal = null;
      if (m.el.parentNode) m.el.parentNode.removeChild(m.el);
      if (m.onClose) m.onClose();
    }
    document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') closeModal(); });

    // ---- start form ----
    function buildStartForm() {
      var err = h('div', { class: 'form-error', role: 'alert', testid: 'start-error', hidden: true });
      var users = h('input', { class: 'input', name: 'user_count', id: 'start-user-count', testid: 'start-user-count', inputmode: 'numeric', autocomplete: 'off', required: true,
        value: ARGS.num_users != null ? String(ARGS.num_users) : '1' });
      var rate = h('input', { class: 'input', name: 'spawn_rate', id: 'start-spawn-rate', testid: 'start-spawn-rate', inputmode: 'decimal', autocomplete: 'off', required: true,
        value: ARGS.spawn_rate != null ? fmtNum(ARGS.spawn_rate, 6) : '1' });
      var host = h('input', { class: 'input', name: 'host', id: 'start-host', testid: 'start-host', autocomplete: 'url', placeholder: 'http://127.0.0.1:8080', value: ARGS.host || '' });
      var runTime = h('input', { class: 'input', name: 'run_time', id: 'start-run-time', testid: 'start-run-time', autocomplete: 'off', placeholder: 'unlimited',
        value: ARGS.run_time != null && ARGS.run_time !== '' ? String(ARGS.run_time) : '' });
      var profile = Object.prototype.hasOwnProperty.call(ARGS, 'profile')
        ? h('input', { class: 'input', name: 'profile', id: 'start-profile', testid: 'start-profile', autocomplete: 'off', value: ARGS.profile || '' }) : null;
      var picker = null;
      if (ARGS.show_userclass_picker && Array.isArray(ARGS.available_user_classes)) {
        picker = h('div', { class: 'field' }, h('span', { class: 'field-label', text: 'User classes' }),
          h('div', { class: 'checks', testid: 'start-user-classes' }, ARGS.available_user_classes.map(function (c) {
            return h('label', null, h('input', { type: 'checkbox', name: 'user_classes', value: c, checked: true }), h('span', { text: c }));
          })));
      }
      var submit = h('button', { class: 'btn btn-primary btn-block', type: 'submit', testid: 'start-button', text: 'Start' });
      var adv = h('details', { class: 'advanced', testid: 'start-advanced' }, h('summary', { text: 'Advanced options' }),
        h('div', { class: 'adv-body' },
          h('label', { class: 'field', for: 'start-run-time' }, h('span', { class: 'field-label', text: 'Run time (e.g. 20, 20s, 3m, 2h, 1h20m, 3h30m10s, etc.)' }), runTime,
            h('span', { class: 'field-hint', text: 'Leave empty to run until stopped.' })),
          profile ? h('label', { class: 'field', for: 'start-profile' }, h('span', { class: 'field-label', text: 'Profile' }), profile) : null));
      if (runTime.value) adv.open = true;
      var f = h('form', { testid: 'start-form', novalidate: true },
        err,
        h('div', { class: 'row2' },
          h('label', { class: 'field', for: 'start-user-count' }, h('span', { class: 'field-label', text: 'Number of users (peak concurrency)' }), users),
          h('label', { class: 'field', for: 'start-spawn-rate' }, h('span', { class: 'field-label', text: 'Ramp up (users started/second)' }), rate)),
        h('label', { class: 'field', for: 'start-host' }, h('span', { class: 'field-label', text: 'Host' }), host),
        picker, adv, submit);
      var c = h('div', { class: 'card start-card' },
        h('h1', { text: 'Start new load test' }),
        h('p', { class: 'lead', text: ARGS.locustfile ? 'Load test: ' + ARGS.locustfile : 'Choose how many users to run and how fast to start them.' }),
        f);
      f.addEventListener('submit', function (ev) {
        ev.preventDefault();
        err.hidden = true;
        var body = new URLSearchParams();
        body.append('user_count', users.value.trim());
        body.append('spawn_rate', rate.value.trim());
        body.append('host', host.value.trim());
        if (runTime.value.trim()) body.append('run_time', runTime.value.trim());
        if (profile && profile.value.trim()) body.append('profile', profile.value.trim());
        if (picker) picker.querySelectorAll('input:checked').forEach(function (cb) { body.append('user_classes', cb.value); });
        submit.disabled = true;
        var wasState = S.state;
        postSwarm(body).then(function (res) {
          submit.disabled = false;
          if (!res.success) { setText(err, res.message || 'The server refused to start the test'); err.hidden = false; return; }
          S.lastSwarm = { user_count: Number(users.value), spawn_rate: Number(rate.value) };
          if (res.host != null) S.host = String(res.host); else if (host.value.trim()) S.host = host.value.trim();
          charts.clear();
          S.ignoreReadyUntil = Date.now() + 5000;
          S.state = 'spawning';
          S.sawStoppedSinceStart = false;
          if (wasState !== 'ready') { statsTable.setRows([], null); failTable.setRows([]); }
          closeModal();
          render();
          selectTab(S.tab, false);
          pollStatsNow();
          pollAuxNow();
        });
      });
      return { card: c, form: f, users: users, rate: rate, host: host, runTime: runTime, err: err };
    }

    function postSwarm(body) {
      return fetch(url('/swarm'), { method: 'POST', credentials: 'same-origin', body: body,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })
        .then(function (r) {
          if (r.status === 401) { goLogin(); return { success: false, message: 'Please log in again' }; }
          return r.text().then(function (t) {
            try { return JSON.parse(t); } catch (e) { return { success: false, message: (t || ('HTTP ' + r.status)).slice(0, 500) }; }
          });
        })
        .catch(function (e) { return { success: false, message: 'Could not reach the server: ' + e.message }; });
    }

    function openNewTest() {
      form.err.hidden = true;
      if (S.host) form.host.value = S.host;
      openModal('Start new load test', form.card, 'new-test-modal', function () { if (form.card.parentNode !== startHolder) startHolder.appendChild(form.card); });
    }

    function openEdit() {
      var target = S.state === 'running' ? S.userCount
        : (S.lastSwarm ? S.lastSwarm.user_count : (ARGS.num_users != null ? ARGS.num_users : S.userCount));
      var rateVal = S.lastSwarm ? S.lastSwarm.spawn_rate : (ARGS.spawn_rate != null ? ARGS.spawn_rate : 1);
      var err = h('div', { class: 'form-error', role: 'alert', testid: 'edit-error', hidden: true });
      var users = h('input', { class: 'input', name: 'user_count', id: 'edit-user-count', testid: 'edit-user-count', inputmode: 'numeric', autocomplete: 'off', value: String(target) });
      var rate = h('input', { class: 'input', name: 'spawn_rate', id: 'edit-spawn-rate', testid: 'edit-spawn-rate', inputmode: 'decimal', autocomplete: 'off', value: fmtNum(rateVal, 6) });
      var submit = h('button', { class: 'btn btn-primary', type: 'submit', testid: 'edit-submit', text: 'Update' });
      var cancel = h('button', { class: 'btn', type: 'button', testid: 'edit-cancel', text: 'Cancel', onclick: closeModal });
      var f = h('form', { testid: 'edit-form', novalidate: true }, err,
        h('label', { class: 'field', for: 'edit-user-count' }, h('span', { class: 'field-label', text: 'Number of users (peak concurrency)' }), users),
        h('label', { class: 'field', for: 'edit-spawn-rate' }, h('span', { class: 'field-label', text: 'Ramp up (users started/second)' }), rate),
        h('div', { class: 'modal-actions' }, cancel, submit));
      f.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var body = new URLSearchParams();
        body.append('user_count', users.value.trim());
        body.append('spawn_rate', rate.value.trim());
        submit.disabled = true;
        postSwarm(body).then(function (res) {
          submit.disabled = false;
          if (!res.success) { setText(err, res.message || 'The server refused the change'); err.hidden = false; return; }
          S.lastSwarm = { user_count: Number(users.value), spawn_rate: Number(rate.value) };
          closeModal();
          toast('Ramping to ' + users.value.trim() + ' users');
          pollStatsNow();
        });
      });
      openModal('Edit running load test', f, 'edit-modal');
    }

    function doStop() {
      btnStop.disabled = true;
      apiFetch('/stop', { method: 'POST' }).then(function () { toast('Test stopped'); })
        .catch(function (e) { toast('Stop failed: ' + e.message, true); })
        .then(function () { btnStop.disabled = false; pollStatsNow(); });
    }
    function doReset() {
      btnReset.disabled = true;
      apiFetch('/stats/reset', { method: 'POST' }).then(function () { toast('Statistics reset'); })
        .catch(function (e) { toast('Reset failed: ' + e.message, true); })
        .then(function () { btnReset.disabled = false; pollStatsNow(); pollAuxNow(); });
    }

    // ---- network ----
    function goLogin() {
      if (S.loggedOut) return;
      S.loggedOut = true;
      window.location.href = url('/login');
    }
    function apiFetch(path, init) {
      init = init || {};
      init.credentials = 'same-origin';
      init.cache = 'no-store';
      return fetch(url(path), init).then(function (r) {
        if (r.status === 401) { goLogin(); throw new Error('not logged in'); }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r;
      });
    }
    function apiJson(path) { return apiFetch(path).then(function (r) { return r.json(); }); }
    function setConnected(ok) {
      if (S.connected === ok) return;
      S.connected = ok;
      banner.hidden = ok;
    }

    function applyStats(d) {
      var st = d.state || S.state;
      if (st === 'ready' && Date.now() < S.ignoreReadyUntil) st = S.state; // a cached reply from before /swarm
      if (isActive(st) && S.state === 'stopped') charts.clear(); // a new run started elsewhere (API, another tab)
      S.state = st;
      S.userCount = isNum(d.user_count) ? d.user_count : S.userCount;
      if (isNum(d.worker_count)) S.workerCount = d.worker_count;
      S.rps = isNum(d.current_rps) ? d.current_rps : 0;
      S.failRatio = isNum(d.fail_ratio) ? d.fail_ratio : 0;
      var split = splitAggregated(d.stats);
      statsTable.setRows(split.rows, split.agg);
      var errors = Array.isArray(d.errors) ? d.errors : [];
      failTable.setRows(errors);
      setCount('failures', errors.length, true);
      if (S.distributed) workersTable.setRows(Array.isArray(d.workers) ? d.workers : []);
      if (S.distributed) setCount('workers', S.workerCount, false);
      if (isActive(st)) {
        var cur = d.current_response_time_percentiles || {};
        var precise = d.precise_current_response_time_percentiles || {};
        var pcts = PCT_CHART.map(function (p) {
          var k = 'response_time_percentile_' + p;
          return precise[k] != null ? precise[k] : cur[k];
        });
        charts.push(Date.now(), d.current_rps, d.current_fail_per_sec, pcts, d.user_count);
      }
      render();
    }
    function setCount(tab, n, bad) {
      var el = tabCounts[tab];
      el.hidden = !n;
      setText(el, n > 999 ? '999+' : String(n));
      el.classList.toggle('bad', !!bad && n > 0);
    }

    var statsTimer = null, statsInFlight = false;
    function pollStats() {
      if (statsInFlight) return;
      statsInFlight = true;
      clearTimeout(statsTimer);
      apiJson('/stats/requests').then(function (d) { setConnected(true); applyStats(d); })
        .catch(function () { if (!S.loggedOut) setConnected(false); })
        .then(function () { statsInFlight = false; statsTimer = setTimeout(pollStats, STATS_POLL_MS); });
    }
    function pollStatsNow() {
      if (statsInFlight) { setTimeout(pollStatsNow, 150); return; }
      pollStats();
    }

    var auxTimer = null;
    function pollAux() {
      clearTimeout(auxTimer);
      Promise.all([
        apiJson('/tasks').then(function (t) {
          var j = stableStringify(t);
          if (j === lastRatioJson) return;
          lastRatioJson = j;
          clear(ratioHolder);
          ratioHolder.appendChild(ratioCards(t, 'The ratio appears once users are running.'));
        }).catch(function () {}),
        apiJson('/exceptions').then(function (e) {
          var list = (e && Array.isArray(e.exceptions)) ? e.exceptions : [];
          exTable.setRows(list);
          setCount('exceptions', list.length, true);
        }).catch(function () {}),
        apiJson('/logs').then(renderLogs).catch(function () {})
      ]).then(function () { auxTimer = setTimeout(pollAux, AUX_POLL_MS); });
    }
    function pollAuxNow() { pollAux(); }

    function logLine(text) {
      var m = /^\[[^\]]*\] [^/\s]*\/(DEBUG|INFO|WARNING|ERROR|CRITICAL)\//.exec(text);
      return h('div', { class: m ? 'l-' + m[1] : null, text: text });
    }
    function renderLogs(d) {
      var j = stableStringify(d);
      if (j === lastLogsJson) return;
      lastLogsJson = j;
      var atBottom = masterLog.scrollHeight - masterLog.scrollTop - masterLog.clientHeight < 30;
      var lines = (d && Array.isArray(d.master)) ? d.master : [];
      var frag = document.createDocumentFragment();
      lines.forEach(function (l) { frag.appendChild(logLine(String(l))); });
      if (!lines.length) frag.appendChild(h('div', { class: 'muted', text: 'No log lines yet.' }));
      clear(masterLog);
      masterLog.appendChild(frag);
      if (atBottom) masterLog.scrollTop = masterLog.scrollHeight;
      var openIds = {};
      workerLogs.querySelectorAll('details[open]').forEach(function (el) { openIds[el.getAttribute('data-worker')] = true; });
      clear(workerLogs);
      var workers = (d && d.workers && typeof d.workers === 'object') ? d.workers : {};
      Object.keys(workers).forEach(function (id) {
        var wl = Array.isArray(workers[id]) ? workers[id] : [];
        var pre = h('pre', { class: 'log' }, wl.map(function (l) { return logLine(String(l)); }));
        workerLogs.appendChild(h('details', { class: 'worker-log', 'data-worker': id, testid: 'logs-worker', open: openIds[id] ? true : null },
          h('summary', { text: 'Worker ' + id + ' (' + wl.length + ' lines)' }), pre));
      });
    }

    // ---- start ----
    selectTab(S.tab, false);
    render();
    pollStats();
    pollAux();
    window.hopperUI = {
      charts: charts,
      state: function () { return S.state; },
      statsTable: statsTable,
      selectTab: selectTab
    };
  }

  // ------------------------------------------------------------------------------------------------

  function boot() {
    var root = document.getElementById('app') || document.body;
    if (ARGS.is_report) renderReport(root);
    else renderLive(root);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
