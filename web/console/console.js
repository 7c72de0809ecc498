// The qmtl web console (docs/console.md): worlds, a world's strategies,
// timeline, latest evaluation, policies and audit, a strategy's equity. It
// calls the same HTTP API as the CLI, signed in by an HttpOnly session cookie
// (never a token in the page's storage or address), and listens to the world's
// event stream to stay current without a reload. #status tells tests what was
// drawn: data-page, data-ready, data-charts, data-series, data-errors.
(function () {
  "use strict";
  var app = document.getElementById("app");
  var crumbs = document.getElementById("crumbs");
  var who = document.getElementById("who");
  var status = document.getElementById("status");
  var me = null;
  var stream = null;
  var refreshTimer = null;
  var charts = [];
  var rank = { viewer: 0, operator: 1, admin: 2 };
  var errors = 0;

  window.addEventListener("error", function (e) { fail(e.message); });
  window.addEventListener("unhandledrejection", function (e) { fail(e.reason && e.reason.message || e.reason); });
  function fail(message) {
    errors += 1;
    status.dataset.errors = String(errors);
    status.textContent = "error: " + message;
  }

  // An element with attributes, event handlers (on*) and children (text is escaped).
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.indexOf("on") === 0) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    [].concat(children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return el;
  }
  function svg(tag, attrs, children) {
    var el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    [].concat(children || []).forEach(function (c) {
      if (c !== null && c !== undefined) el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return el;
  }
  function link(path, text) { return h("a", { href: path, "data-nav": "1", text: text }); }
  function stateTag(s) { return h("span", { "class": "state state-" + s, text: s }); }
  function num(v, digits) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(0) : Number(v.toPrecision(digits || 4)).toString();
  }
  function when(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "-"; }
  function age(iso) { return iso ? span((Date.now() - Date.parse(iso)) / 1000) : "-"; }
  function until(iso) { return iso ? span((Date.parse(iso) - Date.now()) / 1000) : "-"; }
  function span(seconds) {
    var s = Math.max(0, seconds);
    if (s < 120) return Math.round(s) + "s";
    if (s < 7200) return Math.round(s / 60) + "m";
    if (s < 172800) return Math.round(s / 3600) + "h";
    return Math.round(s / 86400) + "d";
  }
  function may(role) { return me !== null && rank[me.role] >= rank[role]; }
  function enc(s) { return encodeURIComponent(s); }

  function api(path, method, body) {
    var opts = { method: method || "GET", credentials: "same-origin",
                 headers: { "X-QMTL-Console": "1", "Accept": "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 204) return null;
      return r.json().catch(function () { return null; }).then(function (b) {
        if (!r.ok) {
          var e = new Error(b && b.detail ? b.detail : "HTTP " + r.status);
          e.status = r.status;
          throw e;
        }
        return b;
      });
    });
  }

  // A table whose columns sort when their heading is clicked.
  function sortable(columns, rows, initial) {
    var by = initial || 0, asc = true;
    var body = h("tbody");
    var heads = columns.map(function (c, i) {
      return h("th", { "class": "sortable", text: c.title, onclick: function () {
        asc = by === i ? !asc : true;
        by = i;
        fill();
      } });
    });
    function fill() {
      heads.forEach(function (th, i) { th.className = "sortable" + (i === by ? " sorted" + (asc ? " asc" : "") : ""); });
      var key = columns[by].key;
      var sorted = rows.slice().sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
      body.textContent = "";
      sorted.forEach(function (r) {
        body.appendChild(h("tr", {}, columns.map(function (c) { return h("td", {}, [c.cell(r)]); })));
      });
    }
    fill();
    return h("table", {}, [h("thead", {}, [h("tr", {}, heads)]), body]);
  }

  function card(title, children) { return h("section", { "class": "card" }, [h("h2", { text: title })].concat(children)); }

  // ---- charts --------------------------------------------------------------
  var shade = { validation: "rgba(120,144,156,0.14)", dryrun: "rgba(241,194,50,0.16)", live: "rgba(56,161,105,0.16)" };
  function shades(periods) {
    return { hooks: { drawClear: [function (u) {
      periods.forEach(function (p) {
        var from = Math.max(p.from, u.scales.x.min), to = Math.min(p.to === null ? u.scales.x.max : p.to, u.scales.x.max);
        if (!(to > from)) return;
        var x0 = u.valToPos(from, "x", true), x1 = u.valToPos(to, "x", true);
        u.ctx.fillStyle = shade[p.kind] || "rgba(0,0,0,0.05)";
        u.ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      });
    }] } };
  }
  // Promotions (to Live) and demotions (from Live) as flags on the chart; each
  // draw says how many it showed in the chart's data-markers.
  function markers(transitions) {
    var moves = transitions.filter(function (t) { return t.to === "Live" || t.from === "Live"; }).map(function (t) {
      return { at: seconds(t.at), up: t.to === "Live", text: (t.to === "Live" ? "\u25B2 " : "\u25BC ") + t.to };
    });
    return { hooks: { draw: [function (u) {
      var ctx = u.ctx, shown = 0;
      ctx.save();
      ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
      moves.forEach(function (m) {
        if (m.at < u.scales.x.min || m.at > u.scales.x.max) return;
        var x = Math.round(u.valToPos(m.at, "x", true)), colour = m.up ? "#2f855a" : "#c53030";
        ctx.strokeStyle = colour;
        ctx.fillStyle = colour;
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        ctx.lineWidth = devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.fillText(m.text, x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
        shown += 1;
      });
      ctx.restore();
      u.root.dataset.markers = String(shown);
    }] } };
  }
  function chart(el, height, series, data, plugins, axes) {
    var u = new uPlot({ width: Math.max(360, el.clientWidth || 900), height: height,
                        series: [{}].concat(series), scales: { x: { time: true } },
                        plugins: plugins || [], axes: axes || [{}, { size: 80 }] }, data, el);
    charts.push(u);
    status.dataset.charts = String(charts.length);
    status.dataset.series = String(charts.reduce(function (n, c) { return n + c.series.length - 1; }, 0));
    return u;
  }
  function seconds(iso) { return Date.parse(iso) / 1000; }

  // ---- pages ---------------------------------------------------------------
  function setCrumbs(parts) {
    crumbs.textContent = "";
    parts.forEach(function (p, i) {
      if (i) crumbs.appendChild(document.createTextNode(" / "));
      crumbs.appendChild(p.path ? link(p.path, p.text) : document.createTextNode(p.text));
    });
  }

  function overview() {
    setCrumbs([{ text: "worlds" }]);
    return Promise.all([api("/worlds"), api("/strategies")]).then(function (r) {
      var worlds = r[0].worlds, strategies = r[1].strategies;
      return Promise.all(worlds.map(function (w) { return api("/worlds/" + enc(w.id) + "/schedule"); })).then(function (schedules) {
        var counts = {};
        strategies.forEach(function (s) {
          var c = counts[s.world] = counts[s.world] || {};
          c[s.state] = (c[s.state] || 0) + 1;
        });
        var rows = worlds.map(function (w, i) { return { w: w, c: counts[w.id] || {}, s: schedules[i] }; });
        return [h("h1", { text: "Worlds" }), card(worlds.length + " worlds", [sortable([
          { title: "WORLD", key: function (r) { return r.w.id; }, cell: function (r) { return link("/ui/worlds/" + enc(r.w.id), r.w.id); } },
          { title: "NAME", key: function (r) { return r.w.name; }, cell: function (r) { return r.w.name; } },
          { title: "STATE", key: function (r) { return r.w.state; }, cell: function (r) { return stateTag(r.w.state); } },
          { title: "POLICY", key: function (r) { return r.w.policy_version; }, cell: function (r) { return r.w.policy_version === null ? "-" : "v" + r.w.policy_version; } },
          { title: "LIVE", key: function (r) { return r.c.Live || 0; }, cell: function (r) { return String(r.c.Live || 0); } },
          { title: "DRY RUN", key: function (r) { return r.c.DryRun || 0; }, cell: function (r) { return String(r.c.DryRun || 0); } },
          { title: "OTHER", key: function (r) { return total(r.c) - (r.c.Live || 0) - (r.c.DryRun || 0); }, cell: function (r) { return String(total(r.c) - (r.c.Live || 0) - (r.c.DryRun || 0)); } },
          { title: "LAST EVALUATION", key: function (r) { return r.w.last_evaluation ? r.w.last_evaluation.finished_at : null; },
            cell: function (r) { var e = r.w.last_evaluation; return e ? link("/ui/worlds/" + enc(r.w.id) + "/runs/" + enc(e.run), e.run + ", " + age(e.finished_at) + " ago") : "-"; } },
          { title: "NEXT EVALUATION", key: function (r) { return nextRun(r.w, r.s) || "~"; }, cell: function (r) { return nextCell(r.w, r.s); } }
        ], rows)])];
      });
    });
  }
  function total(c) { return Object.keys(c).reduce(function (n, k) { return n + c[k]; }, 0); }
  // When the scheduler evaluates the world next (null when it will not).
  function nextRun(w, s) { return w.state === "Active" || w.state === "EvalOnly" ? (s.scheduled ? s.next_run : null) : null; }
  function nextCell(w, s) {
    var spec = s.scheduled ? s.spec : w.policy && w.policy.schedule;
    if (w.state === "Retired") return "never (retired)";
    if (w.state === "Paused") return "paused" + (spec ? " (" + spec + ")" : "");
    if (!s.scheduled) return h("span", { "class": "muted", title: "the scheduler has not seen this world (no policy, or the server runs without it)", text: "not scheduled" });
    return h("span", { "data-next": s.next_run }, [
      "in " + until(s.next_run) + ", " + when(s.next_run) + " (" + s.spec + ")",
      s.last_error ? h("div", { "class": "fail", text: "last scheduled run failed: " + s.last_error }) : null]);
  }

  // The promotion timeline: a lane per strategy, a band per state.
  var stateColour = { Submitted: "#c8c8c8", Validating: "#9cc3e6", Rejected: "#e06666", DryRun: "#f1c232",
                      Live: "#38a169", Inactive: "#e2e2e2", Archived: "#8a8a8a" };
  function timeline(transitions) {
    var lanes = [], at = {};
    transitions.forEach(function (t) {
      if (!(t.strategy in at)) { at[t.strategy] = lanes.length; lanes.push({ id: t.strategy, states: [] }); }
      lanes[at[t.strategy]].states.push({ at: Date.parse(t.at), to: t.to, event: t.event, run: t.run_id });
    });
    if (!lanes.length) return h("p", { "class": "muted", text: "No state changes yet." });
    var lo = Infinity, hi = Date.now();
    lanes.forEach(function (l) { l.states.forEach(function (s) { lo = Math.min(lo, s.at); hi = Math.max(hi, s.at); }); });
    if (hi <= lo) hi = lo + 3600e3;
    var label = 150, width = 900, lane = 22;
    var x = function (t) { return label + (t - lo) / (hi - lo) * width; };
    var g = svg("svg", { "class": "timeline", viewBox: "0 0 " + (label + width + 10) + " " + (lanes.length * lane + 24), width: "100%" });
    lanes.forEach(function (l, i) {
      g.appendChild(svg("text", { x: 4, y: i * lane + 15 }, [l.id]));
      l.states.forEach(function (s, k) {
        var end = k + 1 < l.states.length ? l.states[k + 1].at : hi;
        g.appendChild(svg("rect", { x: x(s.at).toFixed(1), y: i * lane + 3, width: Math.max(1, x(end) - x(s.at)).toFixed(1),
                                    height: lane - 6, fill: stateColour[s.to] || "#ccc", "data-state": s.to, "data-strategy": l.id },
                          [svg("title", {}, [s.to + " from " + new Date(s.at).toISOString() + " (" + s.event + (s.run ? ", " + s.run : "") + ")"])]));
      });
    });
    g.appendChild(svg("text", { x: label, y: lanes.length * lane + 18 }, [new Date(lo).toISOString().slice(0, 16) + "Z"]));
    g.appendChild(svg("text", { x: label + width, y: lanes.length * lane + 18, "text-anchor": "end" }, ["now"]));
    var legend = h("p", { "class": "legend" }, Object.keys(stateColour).map(function (s) {
      var i = h("i");
      i.style.background = stateColour[s];
      return h("span", {}, [i, s]);
    }));
    return h("div", {}, [g, legend]);
  }

  // A line diff of two policy documents (longest common subsequence).
  function diff(a, b) {
    var x = a.split("\n"), y = b.split("\n"), n = x.length, m = y.length;
    var L = [];
    for (var i = 0; i <= n; i++) { L.push(new Array(m + 1).fill(0)); }
    for (i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    var out = h("pre", { "class": "diff" });
    i = 0; j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && x[i] === y[j]) { out.appendChild(h("span", { text: "  " + x[i] + "\n" })); i++; j++; }
      else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.appendChild(h("span", { "class": "add", text: "+ " + y[j] })); j++; }
      else { out.appendChild(h("span", { "class": "del", text: "- " + x[i] })); i++; }
    }
    return out;
  }

  function act(text, path, method, body) {
    return h("button", { text: text, "data-action": text, onclick: function () {
      if (!window.confirm(text + "?")) return;
      api(path, method, body).then(refresh, function (e) { window.alert(e.message); });
    } });
  }

  function world(id) {
    setCrumbs([{ text: "worlds", path: "/ui/" }, { text: id }]);
    listen(id, "");
    return Promise.all([api("/worlds/" + enc(id)), api("/strategies?world=" + enc(id)), api("/worlds/" + enc(id) + "/timeline"),
                        api("/worlds/" + enc(id) + "/policies"), api("/worlds/" + enc(id) + "/audit?limit=10000")]).then(function (r) {
      var w = r[0], list = r[1].strategies, tl = r[2].transitions, policies = r[3], audit = r[4].records;
      var since = {};
      list.forEach(function (s) { since[s.id] = s.state_since; });
      var out = [h("h1", {}, [id + " ", stateTag(w.state)]),
                 h("p", { "class": "muted" }, [(w.name || id) + "; policy " + (w.policy_version === null ? "none" : "v" + w.policy_version) + "; " + list.length + " strategies; ",
                                                link("/ui/worlds/" + enc(id) + "/replay", "replay a policy over its history")])];
      if (may("operator")) {
        var state = h("select", { "aria-label": "world state" }, ["Active", "EvalOnly", "Paused"].concat(may("admin") ? ["Retired"] : []).map(function (s) {
          return h("option", { value: s, selected: s === w.state, text: s });
        }));
        out.push(h("div", { "class": "actions", "data-role": "write" }, [
          act("Evaluate (dry run)", "/worlds/" + enc(id) + "/evaluate", "POST", { apply: false }),
          w.last_evaluation ? act("Apply " + w.last_evaluation.run, "/worlds/" + enc(id) + "/apply", "POST", { run_id: w.last_evaluation.run }) : null,
          state,
          h("button", { text: "Set state", "data-action": "Set state", onclick: function () {
            if (!window.confirm("Set the world to " + state.value + "?")) return;
            api("/worlds/" + enc(id) + "/state", "POST", { state: state.value, reason: "set from the console" }).then(refresh, function (e) { window.alert(e.message); });
          } })
        ]));
      }
      var columns = [
        { title: "STRATEGY", key: function (s) { return s.id; }, cell: function (s) { return link("/ui/strategies/" + enc(s.id), s.id); } },
        { title: "STATE", key: function (s) { return s.state; }, cell: function (s) { return stateTag(s.state); } },
        { title: "IN STATE", key: function (s) { return -Date.parse(s.state_since); }, cell: function (s) { return age(s.state_since); } },
        { title: "SCORE", key: function (s) { return s.evaluation ? s.evaluation.score : null; }, cell: function (s) { return num(s.evaluation && s.evaluation.score); } },
        { title: "RANK", key: function (s) { return s.evaluation ? s.evaluation.rank : null; }, cell: function (s) { return num(s.evaluation && s.evaluation.rank); } },
        { title: "DECISION", key: function (s) { return s.evaluation ? s.evaluation.decision : null; },
          cell: function (s) { var d = s.evaluation && s.evaluation.decision; return d ? h("span", { "class": "decision-" + d, text: d }) : "-"; } }
      ];
      if (may("operator")) {
        columns.push({ title: "", key: function () { return 0; }, cell: function (s) {
          if (s.state === "Inactive") return act("Activate " + s.id, "/strategies/" + enc(s.id) + "/activate", "POST", { reason: "from the console" });
          if (s.state === "DryRun" || s.state === "Live") return act("Deactivate " + s.id, "/strategies/" + enc(s.id) + "/deactivate", "POST", { reason: "from the console" });
          return "";
        } });
      }
      out.push(card("Strategies", [sortable(columns, list, 1)]));
      out.push(card("Promotion timeline", [timeline(tl)]));
      var evalCard = card("Latest evaluation", [h("p", { "class": "muted", text: "No evaluation yet." })]);
      out.push(evalCard);
      if (w.last_evaluation) {
        api("/worlds/" + enc(id) + "/evaluations/" + enc(w.last_evaluation.run)).then(function (run) {
          evalCard.replaceChildren(h("h2", {}, ["Latest evaluation: ", link("/ui/worlds/" + enc(id) + "/runs/" + enc(run.id), run.id), " (" + when(run.finished_at) + ")"]), runTable(run));
        });
      }
      out.push(h("div", { "class": "grid" }, [policiesCard(id, policies), auditCard(audit)]));
      return out;
    });
  }

  // A gate's clauses, each green when its result favours the strategy: a true
  // promote clause, a false demote or reject clause. A missing value is grey.
  function clauseList(gate, clauses) {
    var against = gate === "demote" || gate === "reject";
    return h("div", { "class": "clauses", "data-gate": gate || "" }, [gate ? h("div", { "class": "muted", text: gate + " gate:" }) : null].concat(clauses.map(function (c) {
      var cls = c.pass === null ? "muted" : c.pass !== against ? "pass" : "fail";
      return h("div", { "class": cls, "data-clause": c.expr, text: c.expr + " = " + num(c.value) + (c.pass === null ? " (no value)" : c.pass ? " (true)" : " (false)") });
    })));
  }
  function runTable(run) {
    var rows = Object.keys(run.strategies || {}).map(function (k) { var r = run.strategies[k]; r.id = k; return r; });
    return sortable([
      { title: "STRATEGY", key: function (r) { return r.id; }, cell: function (r) { return link("/ui/strategies/" + enc(r.id), r.id); } },
      { title: "DECISION", key: function (r) { return r.decision; }, cell: function (r) { return h("span", { "class": "decision-" + r.decision, text: r.decision }); } },
      { title: "RANK", key: function (r) { return r.rank; }, cell: function (r) { return num(r.rank); } },
      { title: "SCORE", key: function (r) { return r.score; }, cell: function (r) { return num(r.score); } },
      { title: "GROUP", key: function (r) { return r.group; }, cell: function (r) { return r.group === null || r.group === undefined ? "-" : String(r.group); } },
      { title: "CLAUSES", key: function (r) { return (r.clauses || []).length; }, cell: function (r) {
        return clauseList(r.gate, r.clauses || []);
      } },
      { title: "WHY", key: function (r) { return (r.reasons || []).join("; "); }, cell: function (r) { return (r.reasons || []).join("; "); } }
    ], rows, 2);
  }

  function policiesCard(id, policies) {
    var versions = policies.versions.map(function (v) { return v.version; });
    var a = h("select", { "aria-label": "from version" }, versions.map(function (v) { return h("option", { value: v, text: "v" + v }); }));
    var b = h("select", { "aria-label": "to version" }, versions.map(function (v) { return h("option", { value: v, text: "v" + v, selected: v === policies.current }); }));
    var shown = h("div");
    function show() {
      Promise.all([api("/worlds/" + enc(id) + "/policies/" + a.value), api("/worlds/" + enc(id) + "/policies/" + b.value)]).then(function (r) {
        shown.replaceChildren(diff(r[0].document, r[1].document));
      });
    }
    a.addEventListener("change", show);
    b.addEventListener("change", show);
    if (versions.length) show();
    return card("Policy versions (" + versions.length + ", current " + (policies.current === null ? "none" : "v" + policies.current) + ")",
                versions.length ? [h("div", { "class": "actions" }, ["diff ", a, " → ", b]), shown] : [h("p", { "class": "muted", text: "No policy yet." })]);
  }

  function auditCard(records) {
    var last = records.slice(-50).reverse();
    return card("Audit log (newest " + last.length + " of " + records.length + ")", [h("table", {}, [h("tbody", {}, last.map(function (a) {
      return h("tr", {}, [h("td", { text: when(a.at) }), h("td", { text: a.actor }), h("td", { text: a.event }),
                          h("td", { text: a.entity_id }), h("td", { text: a.reason || "" })]);
    }))])]);
  }

  function runPage(wid, rid) {
    setCrumbs([{ text: "worlds", path: "/ui/" }, { text: wid, path: "/ui/worlds/" + enc(wid) }, { text: rid }]);
    listen(wid, "");
    return api("/worlds/" + enc(wid) + "/evaluations/" + enc(rid)).then(function (run) {
      return [h("h1", { text: "Evaluation " + run.id }),
              h("p", { "class": "muted", text: "policy v" + run.policy_version + ", " + when(run.started_at) + " to " + when(run.finished_at) + "; live after: " + (run.live || []).join(", ") }),
              card("Decisions", [runTable(run)])];
    });
  }

  function strategy(id) {
    return api("/strategies/" + enc(id)).then(function (s) {
      setCrumbs([{ text: "worlds", path: "/ui/" }, { text: s.world, path: "/ui/worlds/" + enc(s.world) }, { text: id }]);
      listen(s.world, id);
      return Promise.all([api("/strategies/" + enc(id) + "/performance?max_points=2000"),
                          api("/strategies/" + enc(id) + "/performance?kind=validation&max_points=2000"),
                          api("/strategies?world=" + enc(s.world)),
                          api("/worlds/" + enc(s.world) + "/timeline?strategy=" + enc(id)),
                          api("/strategies/" + enc(id) + "/validation").catch(function (e) { if (e.status === 404) return null; throw e; })]).then(function (r) {
        var runs = r[0], val = r[1], mine = r[2].strategies.filter(function (x) { return x.id === id; })[0] || {}, tl = r[3].transitions;
        var equityEl = h("div", { id: "equity" }), ddEl = h("div", { id: "drawdown" });
        var out = [h("h1", {}, [id + " ", stateTag(s.state)]),
                   h("p", { "class": "muted", text: "in " + s.world + ", " + s.state + " for " + age(s.state_since) + "; " + runs.total_points + " run records, " + val.total_points + " validation records" }),
                   card("Equity (shaded: validation, dry run, live; flags: promotions and demotions)", [equityEl, h("h2", { text: "Drawdown" }), ddEl])];
        var m = mine.evaluation && mine.evaluation.metrics;
        out.push(h("div", { "class": "grid" }, [
          card("KPIs in the last evaluation", [m ? h("table", {}, [h("tbody", {}, Object.keys(m).map(function (k) { return h("tr", {}, [h("td", { text: k }), h("td", { text: num(m[k]) })]); }))]) : h("p", { "class": "muted", text: "Not evaluated yet." })]),
          card("State changes", [h("table", {}, [h("tbody", {}, tl.slice().reverse().map(function (t) {
            return h("tr", {}, [h("td", { text: when(t.at) }), h("td", {}, [stateTag(t.to)]), h("td", { text: t.event }), h("td", { text: t.run_id || "" }), h("td", { text: t.reason })]);
          }))])])]));
        out.push(validationCard(r[4], s));
        out.push(card("Fills (newest " + runs.fills.length + " of " + runs.total_fills + ")", [h("table", {}, [h("tbody", {}, runs.fills.slice().reverse().slice(0, 200).map(function (f) {
          return h("tr", {}, [h("td", { text: when(f.ts) }), h("td", { text: f.side }), h("td", { text: f.symbol }), h("td", { text: num(f.qty) }), h("td", { text: num(f.price, 6) })]);
        }))])]));
        // Drawn once the elements are in the page (uPlot measures them).
        out.draw = function () {
          var series = [], tables = [];
          [["validation", val], ["runs", runs]].forEach(function (p) {
            if (!p[1].points.length) return;
            series.push({ label: p[0], stroke: p[0] === "runs" ? "#2b6cb0" : "#718096", width: 1.5 });
            tables.push([p[1].points.map(function (q) { return seconds(q.ts); }), p[1].points.map(function (q) { return q.equity; })]);
          });
          if (!tables.length) { equityEl.appendChild(h("p", { "class": "muted", text: "No records yet." })); return; }
          var periods = val.periods.map(function (p) {
            return { kind: p.kind, from: seconds(p.from), to: p.to === null ? null : seconds(p.to) };
          });
          var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
          chart(equityEl, 280, series, data, [shades(periods), markers(tl)]);
          // Each series' drawdown from its own running peak, on the equity chart's times.
          var ddSeries = series.map(function (x) {
            var runs = x.label === "runs";
            return { label: "drawdown " + x.label, stroke: runs ? "#c53030" : "#a0aec0", fill: runs ? "rgba(197,48,48,0.15)" : "rgba(160,174,192,0.15)" };
          });
          var dd = [data[0]].concat(data.slice(1).map(function (col) {
            var peak = 0;
            return col.map(function (v) {
              if (v === null || v === undefined) return v;
              peak = Math.max(peak, v);
              return peak > 0 ? v / peak - 1 : 0;
            });
          }));
          chart(ddEl, 130, ddSeries, dd, [shades(periods), markers(tl)],
                [{}, { size: 80, values: function (u, v) { return v.map(function (x) { return (100 * x).toFixed(1) + "%"; }); } }]);
        };
        return out;
      });
    });
  }

  // The server's validation backtest: its outcome, why, what it ran on, and the
  // reject gate's clauses with the values they were judged on.
  function validationCard(v, s) {
    if (!v) return card("Validation", [h("p", { "class": "muted", text: "No validation by the server (" + s.id + " is " + s.state + ")." })]);
    var d = v.detail || {}, rows = [
      ["outcome", h("span", { "class": v.outcome === "passed" ? "pass" : "fail", "data-outcome": v.outcome, text: v.outcome })],
      ["reason", v.reason],
      ["ran", when(v.started_at) + " to " + when(v.finished_at)]];
    if (d.from) rows.push(["history", when(d.from) + " to " + when(d.to)]);
    if (d.bars !== undefined) rows.push(["bars, points, fills", [d.bars, d.points, d.fills].map(function (x) { return num(x); }).join(", ")]);
    if (d.policy_version !== undefined) rows.push(["judged by", "policy v" + d.policy_version]);
    var body = [h("table", {}, [h("tbody", {}, rows.map(function (r) { return h("tr", {}, [h("td", { text: r[0] }), h("td", {}, [r[1]])]); }))])];
    if (d.clauses && d.clauses.length) {
      body.push(clauseList("reject", d.clauses));
    }
    if (d.metrics && Object.keys(d.metrics).length) {
      body.push(h("h2", { text: "Backtest metrics" }));
      body.push(h("table", {}, [h("tbody", {}, Object.keys(d.metrics).map(function (k) { return h("tr", {}, [h("td", { text: k }), h("td", { text: num(d.metrics[k]) })]); }))]));
    }
    return card("Validation", body);
  }

  // What a policy would have done over the world's own recorded runs
  // (POST /worlds/{id}/replay; a read, so viewers may run it too).
  function replayPage(id) {
    setCrumbs([{ text: "worlds", path: "/ui/" }, { text: id, path: "/ui/worlds/" + enc(id) }, { text: "replay" }]);
    return api("/worlds/" + enc(id) + "/policy").catch(function (e) { if (e.status === 404) return null; throw e; }).then(function (pol) {
      var text = h("textarea", { rows: 12, cols: 90, spellcheck: "false", "aria-label": "candidate policy" });
      text.value = pol && pol.document ? pol.document : "";
      var since = h("input", { "aria-label": "since", placeholder: "all runs, or e.g. 90d" });
      var result = h("div", { id: "replay-result" });
      var mine = [];
      function start(candidate) {
        var body = { max_points: 2000 };
        if (candidate) body.policy = text.value;
        if (since.value.trim()) body.since = since.value.trim();
        result.replaceChildren(h("p", { "class": "muted", text: "Replaying..." }));
        api("/worlds/" + enc(id) + "/replay", "POST", body).then(function (r) {
          mine.forEach(function (c) { c.destroy(); charts.splice(charts.indexOf(c), 1); });
          mine = showReplay(result, r);
        }, function (e) { result.replaceChildren(h("p", { "class": "error", "data-replay-error": "1", text: e.message })); });
      }
      return [h("h1", { text: "Replay " + id }),
              h("p", { "class": "muted", text: "Each recorded evaluation of the world, run again at its time on the records stored by then: by the policy below, or by the versions the runs recorded (which must match every decision). Nothing changes." }),
              card("Candidate policy (YAML or JSON)", [text, h("div", { "class": "actions" }, [
                since,
                h("button", { "class": "primary", "data-replay": "candidate", text: "Replay this policy", onclick: function () { start(true); } }),
                h("button", { "data-replay": "recorded", text: "Replay the recorded versions", onclick: function () { start(false); } })])]),
              result];
    });
  }
  // The answer: the two books' equity, their KPIs side by side, the decisions that differ.
  function showReplay(el, r) {
    if (!r.runs) { el.replaceChildren(h("p", { "data-differences": "0", text: "No evaluation run in that span: nothing to replay." })); return []; }
    var eq = h("div", { id: "replay-equity" });
    var kpis = ["return", "sharpe", "sortino", "max_drawdown", "calmar", "volatility"];
    var rows = [["promotions", r.recorded.promotions, r.candidate.promotions], ["demotions", r.recorded.demotions, r.candidate.demotions]].concat(
      kpis.filter(function (k) { return k in r.recorded.kpis || k in r.candidate.kpis; }).map(function (k) { return [k, r.recorded.kpis[k], r.candidate.kpis[k]]; }));
    function lastLive(b) { return b.live.length ? (b.live[b.live.length - 1].live.join(", ") || "none") : "none"; }
    rows.push(["live at the end", lastLive(r.recorded), lastLive(r.candidate)]);
    var diffs = r.differences.map(function (d) {
      return h("tr", { "data-strategy": d.strategy }, [h("td", {}, [link("/ui/worlds/" + enc(r.world) + "/runs/" + enc(d.run), d.run)]), h("td", { text: when(d.at) }),
        h("td", {}, [link("/ui/strategies/" + enc(d.strategy), d.strategy)]), h("td", { text: d.recorded || "-" }), h("td", { text: d.replayed }), h("td", { text: d.why })]);
    });
    el.replaceChildren(
      h("p", { "data-differences": String(r.total_differences), text: r.runs + " runs from " + when(r.from) + " to " + when(r.until) + "; " + r.decisions + " decisions, " + r.matching + " as recorded, " + r.total_differences + " differ (" + r.policy + " policy)" }),
      card("Live book equity (equal weights; grey: recorded, blue: replayed)", [eq]),
      h("div", { "class": "grid" }, [
        card("Books", [h("table", {}, [h("thead", {}, [h("tr", {}, [h("th", { text: "" }), h("th", { text: "RECORDED" }), h("th", { text: "REPLAYED" })])]),
          h("tbody", {}, rows.map(function (x) { return h("tr", {}, [h("td", { text: x[0] }), h("td", { text: num(x[1]) }), h("td", { text: num(x[2]) })]); }))])]),
        card("Decisions that differ (" + r.differences.length + " of " + r.total_differences + ")", [r.differences.length ? h("table", {}, [h("tbody", {}, diffs)]) : h("p", { "class": "muted", text: "None: every decision as recorded." })])]));
    var tables = [r.recorded.equity, r.candidate.equity].map(function (pts) {
      return [pts.map(function (p) { return seconds(p.ts); }), pts.map(function (p) { return p.equity; })];
    });
    if (tables[0][0].length < 2 && tables[1][0].length < 2) return [];
    var before = charts.length;
    chart(eq, 260, [{ label: "recorded", stroke: "#718096", width: 1.5 }, { label: "replayed", stroke: "#2b6cb0", width: 1.5 }], uPlot.join(tables));
    return charts.slice(before);
  }

  // ---- live updates --------------------------------------------------------
  function listen(worldId, strategyId) {
    var url = "/worlds/" + enc(worldId) + "/events" + (strategyId ? "?strategy=" + enc(strategyId) : "");
    if (stream && stream.url.endsWith(url)) return;
    if (stream) stream.close();
    stream = new EventSource(url);
    var first = true;
    ["world", "policy", "strategy", "activation", "evaluation", "apply"].forEach(function (type) {
      stream.addEventListener(type, function () { refreshSoon(); });
    });
    stream.addEventListener("snapshot", function () {
      if (!first) refreshSoon();  // a reconnect: whatever happened meanwhile
      first = false;
      status.dataset.live = "1";
    });
  }
  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  // ---- routing -------------------------------------------------------------
  function page() {
    var parts = location.pathname.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (!parts.length) return { name: "worlds", load: overview };
    if (parts[0] === "worlds" && parts.length === 2) return { name: "world", load: function () { return world(parts[1]); } };
    if (parts[0] === "worlds" && parts.length === 3 && parts[2] === "replay") return { name: "replay", load: function () { return replayPage(parts[1]); } };
    if (parts[0] === "worlds" && parts.length === 4 && parts[2] === "runs") return { name: "run", load: function () { return runPage(parts[1], parts[3]); } };
    if (parts[0] === "strategies" && parts.length === 2) return { name: "strategy", load: function () { return strategy(parts[1]); } };
    return { name: "unknown", load: function () { return Promise.resolve([h("h1", { text: "No such page" }), link("/ui/", "Worlds")]); } };
  }
  var rendering = 0;
  function refresh() {
    var p = page(), ticket = ++rendering;
    status.dataset.page = p.name;
    return p.load().then(function (nodes) {
      if (ticket !== rendering) return;
      charts.forEach(function (c) { c.destroy(); });
      charts = [];
      app.replaceChildren.apply(app, nodes);
      if (nodes.draw) nodes.draw();
      status.dataset.charts = String(charts.length);
      // Milliseconds from the start of navigation to this render (bench/load/console_load.sh).
      status.dataset.readyMs = String(Math.round(performance.now()));
      status.dataset.ready = String(Number(status.dataset.ready || 0) + 1);
    }, function (e) {
      if (e.status === 401) return login();
      app.replaceChildren(h("h1", { text: "Cannot show this page" }), h("p", { "class": "error", text: e.message }));
      status.dataset.ready = String(Number(status.dataset.ready || 0) + 1);
    });
  }
  function go(path) {
    history.pushState(null, "", path);
    if (stream) { stream.close(); stream = null; }
    refresh();
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-nav]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go(a.getAttribute("href"));
  });
  window.addEventListener("popstate", function () { if (stream) { stream.close(); stream = null; } refresh(); });

  // ---- signing in ----------------------------------------------------------
  function showWho() {
    who.textContent = me.name + " (" + me.role + ")";
    if (me.name !== "local") {
      who.appendChild(h("button", { text: "Sign out", onclick: function () {
        api("/ui/session", "DELETE").then(function () { location.reload(); });
      } }));
    }
    document.body.dataset.role = me.role;
  }
  function login() {
    setCrumbs([{ text: "sign in" }]);
    var token = h("input", { type: "password", autocomplete: "off", "aria-label": "token" });
    var error = h("p", { "class": "error" });
    app.replaceChildren(h("form", { "class": "login card", onsubmit: function (e) {
      e.preventDefault();
      api("/ui/session", "POST", { token: token.value }).then(function (p) {
        token.value = "";
        me = p;
        showWho();
        refresh();
      }, function (err) { error.textContent = err.message; });
    } }, [h("h2", { text: "Sign in with your qmtl token" }), token, h("button", { "class": "primary", type: "submit", text: "Sign in" }), error,
          h("p", { "class": "muted", text: "The token is sent once; the browser keeps only a session cookie it cannot read." })]));
    status.dataset.page = "login";
    status.dataset.ready = String(Number(status.dataset.ready || 0) + 1);
  }

  api("/ui/session").then(function (p) { me = p; showWho(); refresh(); }, function (e) {
    if (e.status === 401) login(); else fail(e.message);
  });
})();
