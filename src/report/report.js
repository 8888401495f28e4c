/*
 * report.js - draws the charts of a testbench report with Chart.js (inlined before this
 * script). The data is the JSON in <script id="tb-data">; testbench has already aggregated it
 * (CDFs as quantiles, telemetry in time bins), so nothing here grows with the request count.
 * Every <canvas data-kind> the page holds gets one chart; a chart that cannot be drawn shows
 * why in its caption instead of failing silently.
 */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('tb-data').textContent);
  var palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2',
                 '#17becf', '#7f7f7f', '#bcbd22'];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.size = 11;

  function color(i) { return palette[i % palette.length]; }
  function fmt(x) {
    if (x === null || x === undefined) return '–';
    return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toPrecision(3);
  }
  function axis(title, extra) {
    var a = { type: 'linear', title: { display: true, text: title } };
    for (var k in extra) a[k] = extra[k];
    return a;
  }
  function xy(xs, ys) {
    var out = [];
    for (var i = 0; i < xs.length; i++)
      if (xs[i] !== null && ys[i] !== null && ys[i] !== undefined) out.push({ x: xs[i], y: ys[i] });
    return out;
  }
  function pointLabel(p) {
    var s = [];
    if (p.tenant !== 'default') s.push(p.tenant);
    if (p.context !== null) s.push('ctx ' + p.context);
    if (p.concurrency !== null) s.push(p.concurrency + ' users');
    if (p.rate !== 'inf') s.push(p.rate + ' req/s');
    return s.join(', ') || 'point';
  }
  function sloLine(label, y, xmin, xmax, i) {
    return { label: label, data: [{ x: xmin, y: y }, { x: xmax, y: y }], borderColor: color(i),
             borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, showLine: true, fill: false };
  }
  /* The objectives to draw: one set when every tenant has the same, else one per tenant,
   * named, since each tenant is judged by its own. */
  function sloSets(run) {
    var list = run.slos && run.slos.length ? run.slos : [run.slo];
    function same(a, b) {
      return ['ttft_ms', 'tpot_ms', 'itl_ms', 'e2e_ms', 'percentile'].every(function (k) { return a[k] === b[k]; });
    }
    var differ = list.some(function (s) { return !same(s, list[0]); });
    if (!differ) return [{ name: '', slo: list[0] || {} }];
    return list.map(function (s) { return { name: ' (' + s.tenant + ')', slo: s }; });
  }
  /* Groups points by a key into series. */
  function groupBy(points, key) {
    var m = {}, order = [];
    points.forEach(function (p) {
      var k = key(p);
      if (!(k in m)) { m[k] = []; order.push(k); }
      m[k].push(p);
    });
    return order.map(function (k) { return { key: k, points: m[k] }; });
  }

  /* Shaded windows of the run's points on a timeline (a Chart.js plugin). */
  var windowsPlugin = {
    id: 'tbWindows',
    beforeDatasetsDraw: function (chart, args, opts) {
      if (!opts || !opts.windows) return;
      var ctx = chart.ctx, x = chart.scales.x, area = chart.chartArea;
      ctx.save();
      opts.windows.forEach(function (w, i) {
        var a = Math.max(x.getPixelForValue(w.start), area.left);
        var b = Math.min(x.getPixelForValue(w.end), area.right);
        if (b <= a) return;
        ctx.fillStyle = i % 2 ? 'rgba(31,119,180,0.07)' : 'rgba(255,127,14,0.08)';
        ctx.fillRect(a, area.top, b - a, area.bottom - area.top);
        ctx.fillStyle = '#555';
        ctx.fillText(w.label, a + 2, area.top + 10 + (i % 3) * 11);
      });
      ctx.restore();
    }
  };
  /* Drag across a timeline to zoom into that span; double-click (or the button) to reset. */
  var zoomPlugin = {
    id: 'tbZoom',
    afterDraw: function (chart) {
      var z = chart.$tbZoom;
      if (!z || z.from === null || z.to === null) return;
      var area = chart.chartArea, ctx = chart.ctx;
      ctx.save();
      ctx.fillStyle = 'rgba(0,0,0,0.12)';
      ctx.fillRect(Math.min(z.from, z.to), area.top, Math.abs(z.to - z.from), area.bottom - area.top);
      ctx.restore();
    }
  };
  function enableZoom(chart, button) {
    var canvas = chart.canvas;
    chart.$tbZoom = { from: null, to: null };
    canvas.addEventListener('mousedown', function (e) {
      chart.$tbZoom.from = e.offsetX; chart.$tbZoom.to = e.offsetX;
    });
    canvas.addEventListener('mousemove', function (e) {
      if (chart.$tbZoom.from === null) return;
      chart.$tbZoom.to = e.offsetX; chart.draw();
    });
    canvas.addEventListener('mouseup', function () {
      var z = chart.$tbZoom;
      if (z.from !== null && Math.abs(z.to - z.from) > 5) {
        var a = chart.scales.x.getValueForPixel(Math.min(z.from, z.to));
        var b = chart.scales.x.getValueForPixel(Math.max(z.from, z.to));
        chart.options.scales.x.min = a; chart.options.scales.x.max = b;
      }
      z.from = z.to = null;
      chart.update();
    });
    function reset() {
      delete chart.options.scales.x.min; delete chart.options.scales.x.max; chart.update();
    }
    canvas.addEventListener('dblclick', reset);
    if (button) button.addEventListener('click', reset);
  }

  /* Horizontal bar charts grow with their rows, so every label stays readable. */
  function tall(el, bars) {
    var h = Math.max(300, 60 + bars * 14);
    el.parentNode.style.height = h + 'px';
  }

  function lineOpts(xTitle, yTitle, extra) {
    var o = {
      parsing: true, normalized: true,
      interaction: { mode: 'nearest', intersect: false },
      plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: {} } },
      scales: { x: axis(xTitle), y: axis(yTitle, { beginAtZero: true }) }
    };
    for (var k in extra) o[k] = extra[k];
    return o;
  }

  var builders = {
    /* TTFT p50/p95/p99 and ITL p99 against achieved request rate, one series per context. */
    latency: function (run) {
      var sets = [], n = 0, xmax = 0;
      groupBy(run.points, function (p) { return p.tenant + '|' + p.context; }).forEach(function (g) {
        var pts = g.points.slice().sort(function (a, b) { return a.req_tps - b.req_tps; });
        var name = pointLabel({ tenant: pts[0].tenant, context: pts[0].context, concurrency: null, rate: 'inf' });
        [['ttft_p50', 'TTFT p50', []], ['ttft_p95', 'TTFT p95', []], ['ttft_p99', 'TTFT p99', [2, 2]],
         ['itl_p99', 'ITL p99', [8, 3]]].forEach(function (m) {
          var d = pts.map(function (p) {
            xmax = Math.max(xmax, p.req_tps || 0);
            return { x: p.req_tps, y: p[m[0]], users: p.concurrency };
          }).filter(function (q) { return q.x !== null && q.y !== null; });
          sets.push({ label: m[1] + (name !== 'point' ? ' (' + name + ')' : ''), data: d,
                      borderColor: color(n), backgroundColor: color(n), borderDash: m[2], showLine: true });
          n++;
        });
      });
      sloSets(run).forEach(function (e) {
        if (e.slo.ttft_ms) sets.push(sloLine('SLO TTFT' + e.name + ' ' + e.slo.ttft_ms + ' ms', e.slo.ttft_ms, 0, xmax * 1.05, n++));
        if (e.slo.itl_ms) sets.push(sloLine('SLO ITL' + e.name + ' ' + e.slo.itl_ms + ' ms', e.slo.itl_ms, 0, xmax * 1.05, n++));
      });
      var o = lineOpts('achieved requests/s', 'ms');
      o.plugins.tooltip.callbacks.afterLabel = function (c) {
        return c.raw.users ? c.raw.users + ' users' : '';
      };
      return { type: 'scatter', data: { datasets: sets }, options: o };
    },
    /* Per-user tokens/s and TTFT p95 against context length, one series per user count. */
    context: function (run) {
      var sets = [], n = 0;
      groupBy(run.points, function (p) { return p.tenant + '|' + p.concurrency; }).forEach(function (g) {
        var pts = g.points.filter(function (p) { return p.context !== null; })
                          .sort(function (a, b) { return a.context - b.context; });
        var name = pointLabel({ tenant: pts.length ? pts[0].tenant : 'default', context: null,
                                concurrency: g.points[0].concurrency, rate: 'inf' });
        sets.push({ label: 'tokens/s per user p50 (' + name + ')', yAxisID: 'y',
                    data: pts.map(function (p) { return { x: p.context, y: p.user_tps_p50 }; }),
                    borderColor: color(n), backgroundColor: color(n), showLine: true });
        sets.push({ label: 'TTFT p95 ms (' + name + ')', yAxisID: 'y2', borderDash: [5, 3],
                    data: pts.map(function (p) { return { x: p.context, y: p.ttft_p95 }; }),
                    borderColor: color(n + 1), backgroundColor: color(n + 1), showLine: true });
        n += 2;
      });
      var o = lineOpts('context length (tokens)', 'tokens/s per user');
      o.scales.y2 = axis('TTFT p95 (ms)', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } });
      return { type: 'scatter', data: { datasets: sets }, options: o };
    },
    cdf: function (run, el) {
      var metric = el.getAttribute('data-metric'), sets = [];
      run.points.forEach(function (p, i) {
        var q = p.cdf[metric];
        if (!q || !q.length) return;
        var d = q.map(function (v, k) { return { x: v, y: q.length > 1 ? k / (q.length - 1) : 1 }; });
        sets.push({ label: pointLabel(p), data: d, borderColor: color(i), backgroundColor: color(i),
                    showLine: true, pointRadius: 0, borderWidth: 1.5 });
      });
      var o = lineOpts(metric.toUpperCase() + ' (ms)', 'fraction of ' + (metric === 'itl' ? 'gaps' : 'requests'));
      o.scales.y.max = 1;
      return { type: 'scatter', data: { datasets: sets }, options: o };
    },
    goodput: function (run) {
      var labels = run.points.map(pointLabel);
      return { type: 'bar', data: { labels: labels, datasets: [
        { label: 'goodput (req/s within SLO)', data: run.points.map(function (p) { return p.goodput; }), backgroundColor: color(2) },
        { label: 'achieved req/s', data: run.points.map(function (p) { return p.req_tps; }), backgroundColor: color(0) },
        { label: 'SLO attainment %', data: run.points.map(function (p) { return p.attainment; }), backgroundColor: color(3), yAxisID: 'y2' }
      ] }, options: { plugins: { legend: { position: 'bottom' } },
        scales: { x: { ticks: { autoSkip: false, maxRotation: 60 } }, y: axis('requests/s', { beginAtZero: true }),
                  y2: axis('%', { position: 'right', min: 0, max: 100, grid: { drawOnChartArea: false } }) } } };
    },
    energy: function (run) {
      return { type: 'bar', data: { labels: run.points.map(pointLabel), datasets: [
        { label: 'GPU energy per output token (J)', data: run.points.map(function (p) { return p.energy_j_per_tok; }), backgroundColor: color(4) }
      ] }, options: { plugins: { legend: { position: 'bottom' } }, scales: { x: { ticks: { autoSkip: false, maxRotation: 60 } }, y: axis('J / token', { beginAtZero: true }) } } };
    },
    timeline: function (run, el) {
      var t = run.telemetry, which = el.getAttribute('data-series').split(','), sets = [];
      var names = {
        power_w: ['GPU power (W)', 'y'], temp_c: ['GPU temperature (°C)', 'y2'],
        sm_mhz: ['SM clock (MHz)', 'y3'], throttled: ['throttled (1 = a reason other than idle)', 'y4'],
        vram_gib: ['VRAM used (GiB)', 'y'], kv_pct: ['server KV-cache use (%)', 'y2'],
        running: ['requests running', 'y'], waiting: ['requests waiting', 'y'],
        prefix_hit_pct: ['prefix-cache hit rate (%)', 'y2']
      };
      which.forEach(function (k, i) {
        if (!t[k]) return;
        var d = xy(t.t, t[k]);
        if (!d.length) return;
        sets.push({ label: names[k][0], yAxisID: names[k][1], data: d, borderColor: color(i),
                    backgroundColor: color(i), showLine: true, pointRadius: 0, borderWidth: 1.3,
                    stepped: k === 'throttled' });
      });
      var o = lineOpts(run.setup ? 'seconds, the setup\'s runs one after another'
                                 : 'seconds since the run started', names[which[0]][0]);
      var used = {};
      sets.forEach(function (s) { used[s.yAxisID] = names[which.filter(function (k) { return names[k][1] === s.yAxisID; })[0]][0]; });
      ['y2', 'y3', 'y4'].forEach(function (id) {
        if (used[id]) o.scales[id] = axis(used[id], { position: 'right', beginAtZero: id !== 'y3', grid: { drawOnChartArea: false } });
      });
      if (used.y) o.scales.y.title.text = used.y;
      o.plugins.tbWindows = { windows: run.points.map(function (p) {
        return { start: p.window[0], end: p.window[1], label: pointLabel(p) };
      }).filter(function (w) { return w.start !== null && w.end !== null; }) };
      o.plugins.tooltip.callbacks.afterBody = function (items) {
        var i = items.length ? items[0].dataIndex : -1;
        return i >= 0 && t.throttle && t.throttle[i] ? 'throttle: ' + t.throttle[i] : '';
      };
      return { type: 'scatter', data: { datasets: sets }, options: o, plugins: [windowsPlugin, zoomPlugin], zoom: true };
    },
    tenants: function (run, el) {
      var rows = data.tenants, metric = el.getAttribute('data-metric');
      var tenants = [], runs = [];
      rows.forEach(function (r) {
        if (tenants.indexOf(r.tenant) < 0) tenants.push(r.tenant);
        if (runs.indexOf(r.run) < 0) runs.push(r.run);
      });
      var sets = runs.map(function (name, i) {
        return { label: name, backgroundColor: color(i), data: tenants.map(function (tn) {
          var r = rows.filter(function (x) { return x.run === name && x.tenant === tn; })[0];
          return r ? r[metric] : null;
        }) };
      });
      var title = { ttft_p95: 'TTFT p95 (ms)', tpot_p95: 'TPOT p95 (ms)', attainment: 'SLO attainment (%)' }[metric];
      /* Each tenant's own objective, a mark across its bars. */
      var sloKey = { ttft_p95: 'slo_ttft_ms', tpot_p95: 'slo_tpot_ms' }[metric];
      if (sloKey) {
        var marks = tenants.map(function (tn) {
          var r = rows.filter(function (x) { return x.tenant === tn && x[sloKey] !== null && x[sloKey] !== undefined; })[0];
          return r ? r[sloKey] : null;
        });
        if (marks.some(function (v) { return v !== null; }))
          sets.push({ type: 'line', label: "the tenant's SLO", data: marks, showLine: false,
                      pointStyle: 'line', pointRadius: 22, pointBorderWidth: 3, borderColor: '#d62728',
                      backgroundColor: '#d62728' });
      }
      return { type: 'bar', data: { labels: tenants, datasets: sets },
               options: { plugins: { legend: { position: 'bottom' } }, scales: { y: axis(title, { beginAtZero: true }) } } };
    },
    pvm: function (run, el) {
      var metric = el.getAttribute('data-metric'), rows = data.predicted_vs_measured.filter(function (r) { return r.metric === metric; });
      /* Two-line labels (run or setup; tenant or workload, context, users) stay unclipped. */
      var labels = rows.map(function (r) { return [r.setup, r.workload + ' · ' + r.users + ' users']; });
      tall(el, rows.length * 2.4);
      return { type: 'bar', data: { labels: labels, datasets: [
        { label: 'predicted', data: rows.map(function (r) { return r.predicted; }), backgroundColor: color(8) },
        { label: 'measured', data: rows.map(function (r) { return r.measured; }), backgroundColor: color(0) }
      ] }, options: { indexAxis: 'y', plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: { afterLabel: function (c) {
          var r = rows[c.dataIndex]; return r.error_pct === null ? '' : 'error ' + fmt(r.error_pct) + ' %';
        } } } }, scales: { x: axis(metric, { beginAtZero: true }), y: { ticks: { autoSkip: false } } } } };
    },
    compare: function (run, el) {
      var rows = data.compare.rows;
      tall(el, rows.length);
      return { type: 'bar', data: { labels: rows.map(function (r) { return r.point + ' ' + r.metric; }), datasets: [
        { label: 'change B vs A (%)', data: rows.map(function (r) { return r.change_pct; }),
          backgroundColor: rows.map(function (r) { return r.significant ? (r.change_pct > 0 ? '#d62728' : '#2ca02c') : '#bbbbbb'; }) }
      ] }, options: { indexAxis: 'y', plugins: { legend: { position: 'bottom' } }, scales: { x: axis('% change (coloured: beyond noise)'), y: { ticks: { autoSkip: false } } } } };
    }
  };

  /* A study setup drawn like one run: its runs' points together and their telemetry one
   * after another, in the order they ran (each run's times shifted past the one before). */
  var setupRuns = {};
  function setupRun(idx) {
    if (setupRuns[idx]) return setupRuns[idx];
    var g = data.study_setups[idx], points = [], tl = null, offset = 0;
    var keys = ['power_w', 'temp_c', 'sm_mhz', 'vram_gib', 'kv_pct', 'running', 'waiting',
                'prefix_hit_pct', 'throttled'];
    g.runs.forEach(function (ri) {
      var r = data.runs[ri], end = 0;
      r.points.forEach(function (p) {
        var q = Object.assign({}, p);
        q.window = [p.window[0] === null ? null : p.window[0] + offset,
                    p.window[1] === null ? null : p.window[1] + offset];
        if (p.window[1] !== null) end = Math.max(end, p.window[1]);
        points.push(q);
      });
      var t = r.telemetry;
      if (t && t.t && t.t.length) {
        if (!tl) { tl = { t: [], throttle: [] }; }
        var n0 = tl.t.length;
        t.t.forEach(function (x) { tl.t.push(x + offset); end = Math.max(end, x); });
        keys.forEach(function (k) {
          if (!t[k]) return;
          if (!tl[k]) tl[k] = new Array(n0).fill(null);
        });
        keys.forEach(function (k) {
          if (!tl[k]) return;
          for (var i = 0; i < t.t.length; i++) tl[k].push(t[k] ? t[k][i] : null);
        });
        for (var i = 0; i < t.t.length; i++) tl.throttle.push(t.throttle ? t.throttle[i] : '');
      }
      offset += end + 1;
    });
    var run = { label: g.setup, slo: g.slo || {}, points: points, telemetry: tl, setup: g };
    setupRuns[idx] = run;
    return run;
  }
  /* A setup's measured and predicted curves against users from its study.csv rows (ms). */
  function setupCurves(run, series, sloKeys, yTitle) {
    var g = run.setup, sets = [], n = 0, xmax = 0;
    var rows = g.rows.filter(function (r) { return r.users !== null; });
    var xmin0 = Infinity;
    rows.forEach(function (r) { xmax = Math.max(xmax, r.users); xmin0 = Math.min(xmin0, r.users); });
    function point(r) {
      if (r.run === null) return null;
      var ps = data.runs[r.run].points;
      return ps.filter(function (p) { return p.concurrency === r.users; })[0] || ps[0] || null;
    }
    series.forEach(function (m) {
      var d = [];
      rows.forEach(function (r) {
        var y;
        if (m.col) y = r[m.col];
        else { var p = point(r); y = p ? p[m.key] : null; }
        if (m.col && m.col.indexOf('meas_') === 0 && r.run === null) y = null;
        if (y !== null && y !== undefined)
          d.push({ x: r.users, y: y, err: m.err ? r[m.err] : null });
      });
      if (!d.length) return;
      /* A predicted curve wears its measured counterpart's colour, dotted, with triangles. */
      var c = color(m.predicted ? m.like : n);
      sets.push({ label: m.label, data: d, borderColor: c, backgroundColor: c, showLine: true,
                  borderDash: m.predicted ? [2, 3] : (m.dash || []), pointStyle: m.predicted ? 'triangle' : 'circle',
                  borderWidth: m.predicted ? 2 : 1.5, tbPredicted: !!m.predicted });
      if (!m.predicted) n++;
    });
    sloKeys.forEach(function (k) {
      if (run.slo[k[0]]) sets.push(sloLine('SLO ' + k[1] + ' ' + run.slo[k[0]] + ' ms', run.slo[k[0]], Math.max(0, Math.floor(xmin0 * 0.8)), Math.ceil(xmax * 1.05), n++));
    });
    var o = lineOpts('users (concurrent)', yTitle || 'ms');
    o.scales.x.suggestedMin = Math.max(0, Math.floor(xmin0 * 0.8));
    o.scales.x.suggestedMax = Math.ceil(xmax * 1.05);
    o.scales.x.ticks = { precision: 0 }; /* whole users */
    o.plugins.tooltip.callbacks.afterLabel = function (c) {
      return c.raw.err !== null && c.raw.err !== undefined ? 'plan error ' + fmt(c.raw.err) + ' %' : '';
    };
    return { type: 'scatter', data: { datasets: sets }, options: o };
  }
  builders.setup_ttft = function (run) {
    return setupCurves(run, [
      { label: 'TTFT p50 measured', col: 'meas_ttft_p50_ms', err: 'err_ttft_p50_pct' },
      { label: 'TTFT p95 measured', col: 'meas_ttft_p95_ms', err: 'err_ttft_p95_pct' },
      { label: 'TTFT p99 measured', key: 'ttft_p99', dash: [2, 2] },
      { label: 'TTFT p50 predicted', col: 'pred_ttft_p50_ms', err: 'err_ttft_p50_pct', predicted: true, like: 0 },
      { label: 'TTFT p95 predicted', col: 'pred_ttft_p95_ms', err: 'err_ttft_p95_pct', predicted: true, like: 1 }
    ], [['ttft_ms', 'TTFT']]);
  };
  builders.setup_tpot = function (run) {
    return setupCurves(run, [
      { label: 'TPOT p50 measured', col: 'meas_tpot_p50_ms', err: 'err_tpot_p50_pct' },
      { label: 'TPOT p95 measured', col: 'meas_tpot_p95_ms', err: 'err_tpot_p95_pct' },
      { label: 'ITL p99 measured', key: 'itl_p99', dash: [8, 3] },
      { label: 'TPOT p50 predicted', col: 'pred_tpot_p50_ms', err: 'err_tpot_p50_pct', predicted: true, like: 0 },
      { label: 'TPOT p95 predicted', col: 'pred_tpot_p95_ms', err: 'err_tpot_p95_pct', predicted: true, like: 1 }
    ], [['tpot_ms', 'TPOT'], ['itl_ms', 'ITL']]);
  };

  builders.setup_tps = function (run) {
    var c = setupCurves(run, [
      { label: 'tokens/s per user p50 measured', col: 'meas_user_tps', err: 'err_user_tps_pct' },
      { label: 'tokens/s per user p50 predicted', col: 'pred_user_tps', err: 'err_user_tps_pct', predicted: true, like: 0 }
    ], [], 'tokens/s per user');
    /* The server's total on its own axis: it grows with users while each user's share falls. */
    [['meas_output_tps', 'output tokens/s measured', false], ['pred_output_tps', 'output tokens/s predicted', true]].forEach(function (m) {
      var d = run.setup.rows.filter(function (r) { return r.users !== null && r[m[0]] !== null && (m[2] || r.run !== null); })
        .map(function (r) { return { x: r.users, y: r[m[0]], err: r.err_output_tps_pct }; });
      if (d.length) c.data.datasets.push({ label: m[1], data: d, yAxisID: 'y2', borderColor: color(1), backgroundColor: color(1),
        showLine: true, borderDash: m[2] ? [2, 3] : [], pointStyle: m[2] ? 'triangle' : 'circle', borderWidth: m[2] ? 2 : 1.5 });
    });
    c.options.scales.y2 = axis('output tokens/s (server)', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } });
    return c;
  };

  /* Measured output tokens per request: one histogram per point (bars of equal width). */
  builders.outlen = function (run) {
    var sets = [];
    run.points.forEach(function (p, i) {
      var h = p.workload && p.workload.output_hist;
      if (!h) return;
      var d = h.counts.map(function (c, k) { return { x: h.lo + (k + 0.5) * h.width, y: c }; });
      sets.push({ label: pointLabel(p) + ' (' + p.workload.source + ', asked: ' + p.workload.output_dist + ')',
                  data: d, borderColor: color(i), backgroundColor: color(i), showLine: true,
                  stepped: 'middle', pointRadius: 2, borderWidth: 1.5 });
    });
    return { type: 'scatter', data: { datasets: sets }, options: lineOpts('output tokens', 'requests') };
  };
  /* TTFT and TTFA (time to first answer token) p50 and p95 per point that reasoned. */
  builders.reasoning = function (run) {
    var pts = run.points.filter(function (p) { return p.workload && p.workload.reasoning; });
    function m(ph, q) { return pts.map(function (p) { return p.workload.reasoning[ph][q]; }); }
    return { type: 'bar', data: { labels: pts.map(pointLabel), datasets: [
      { label: 'TTFT p50', data: m('ttft', 'p50'), backgroundColor: color(0) },
      { label: 'TTFA p50', data: m('ttfa', 'p50'), backgroundColor: color(1) },
      { label: 'TTFT p95', data: m('ttft', 'p95'), backgroundColor: '#aec7e8' },
      { label: 'TTFA p95', data: m('ttfa', 'p95'), backgroundColor: '#ff9896' }
    ] }, options: { plugins: { legend: { position: 'bottom' } },
      scales: { x: { ticks: { autoSkip: false } }, y: axis('ms', { beginAtZero: true }) } } };
  };
  /* A session point by turn index: TTFT p50/p95, mean prompt tokens, cached-prompt %. */
  builders.turns = function (run, el) {
    var s = run.points[+el.getAttribute('data-point')].workload.sessions;
    function d(k) { return s.by_turn.map(function (t) { return { x: t.turn, y: t[k] }; })
                                   .filter(function (q) { return q.y !== null; }); }
    var sets = [
      { label: 'TTFT p50 (ms)', data: d('ttft_p50'), yAxisID: 'y' },
      { label: 'TTFT p95 (ms)', data: d('ttft_p95'), yAxisID: 'y', borderDash: [5, 3] },
      { label: 'prompt tokens (mean)', data: d('prompt_tokens_mean'), yAxisID: 'y2' },
      { label: 'cached prompt (%)', data: d('cached_pct'), yAxisID: 'y3', borderDash: [2, 2] }
    ].filter(function (x) { return x.data.length; });
    sets.forEach(function (x, i) {
      x.borderColor = x.backgroundColor = color(i); x.showLine = true;
    });
    var o = lineOpts('turn (0 = first message)', 'TTFT (ms)');
    o.scales.x.ticks = { precision: 0 };
    o.scales.y2 = axis('prompt tokens', { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false } });
    if (sets.some(function (x) { return x.yAxisID === 'y3'; }))
      o.scales.y3 = axis('cached %', { position: 'right', min: 0, max: 100, grid: { drawOnChartArea: false } });
    return { type: 'scatter', data: { datasets: sets }, options: o };
  };

  var charts = [];
  document.querySelectorAll('canvas[data-kind]').forEach(function (el) {
    var kind = el.getAttribute('data-kind');
    var run = el.hasAttribute('data-setup') ? setupRun(+el.getAttribute('data-setup'))
                                            : data.runs[+el.getAttribute('data-run') || 0];
    try {
      var cfg = builders[kind](run, el);
      var chart = new Chart(el, cfg);
      if (cfg.zoom) enableZoom(chart, el.parentNode.parentNode.querySelector('button.reset'));
      charts.push(chart);
    } catch (e) {
      var cap = el.parentNode.parentNode.querySelector('figcaption');
      if (cap) cap.textContent += ' — chart failed: ' + e.message;
      throw e;
    }
  });
  window.tbCharts = charts;
})();
