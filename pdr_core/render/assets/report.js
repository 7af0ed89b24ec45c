(function () {
  "use strict";
  var read = function (id) { return JSON.parse(document.getElementById(id).textContent); };
  var trace = read("pdr-trace"), figures = read("pdr-figures"), plan = read("pdr-replay");
  var nodes = trace.nodes, indexOf = new Map();
  nodes.forEach(function (n, i) { indexOf.set(n.id, i); });
  var CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;
  function visible(s) {
    return (s || "").replace(CONTROL, function (c) {
      return c === "\u007F" ? "\u2421" : String.fromCharCode(0x2400 + c.charCodeAt(0));
    });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function openNode(id) {
    var section = document.getElementById("n" + indexOf.get(id));
    if (!section) return;
    section.open = true;
    section.scrollIntoView({block: "start"});
    section.classList.add("flash");
    setTimeout(function () { section.classList.remove("flash"); }, 1500);
  }
  window.addEventListener("hashchange", function () {
    var target = document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") target.open = true;
  });
  function setAll(open) {
    document.querySelectorAll("details.node").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand-all").onclick = function () { setAll(true); };
  document.getElementById("collapse-all").onclick = function () { setAll(false); };
  // Figures drawn at screen width would be cut at the paper's edge: redraw them to fit.
  var PRINT_WIDTH = 680;
  var figureDivs = Object.keys(figures).map(function (key) {
    return document.getElementById("fig-" + key);
  });
  window.addEventListener("beforeprint", function () {
    setAll(true);
    figureDivs.forEach(function (div) { Plotly.relayout(div, {width: PRINT_WIDTH}); });
  });
  window.addEventListener("afterprint", function () {
    setTimeout(function () {  // once the page has its screen layout back
      figureDivs.forEach(function (div) { Plotly.relayout(div, {width: null, autosize: true}); });
    }, 50);
  });
  document.getElementById("download-trace").onclick = function () {
    var blob = new Blob([JSON.stringify(trace, null, 2)], {type: "application/json"});
    var a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = String(trace.id).replace(/[^A-Za-z0-9._-]/g, "_") + ".json";
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
  };

  var plotConfig = {responsive: true, displaylogo: false};
  var tree = document.getElementById("fig-tree");
  // Plotly keeps (and restyle replaces) the arrays it is given: keep the tree's own copies.
  var treeTraces = figures.tree.data.map(function (trace) {
    return {ids: Array.isArray(trace.customdata) ? trace.customdata.slice() : null,
            text: Array.isArray(trace.text) ? trace.text.slice() : null,
            markers: String(trace.mode).indexOf("markers") >= 0};
  });
  Object.keys(figures).forEach(function (key) {
    var div = document.getElementById("fig-" + key), fig = figures[key];
    Plotly.newPlot(div, fig.data, fig.layout, plotConfig).then(function () {
      div.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var id = point && point.customdata;
        if (Array.isArray(id)) id = id[0];
        if (typeof id === "string") openNode(id);
      });
    });
  });

  // --- replay: the state at run time t is a pure function of t, so play, pause, restart
  // and the scrubber only move t.
  var items = plan.nodes, duration = plan.duration;
  var board = document.getElementById("replay-board");
  var playButton = document.getElementById("replay-play");
  var speedSelect = document.getElementById("replay-speed");
  var scrub = document.getElementById("replay-scrub");
  var clock = document.getElementById("replay-clock");
  var columns = plan.columns.map(function (label) {
    var column = el("div", "replay-col");
    column.appendChild(el("h4", null, label));
    board.appendChild(column);
    return column;
  });
  var cards = new Map(), texts = new Map();
  var t = 0, active = false, timer = null, last = 0, treeState = "";

  function cardFor(item) {
    var card = cards.get(item.i);
    if (card) return card;
    var n = nodes[item.i];
    var root = el("div", "replay-card sg-" + n.stage);
    root.dataset.nodeId = n.id;
    root.dataset.branch = n.branch;
    var head = el("div", "rc-head"), status = el("span", "badge");
    head.appendChild(el("bdi", "nid", n.id));
    head.appendChild(status);
    var pre = el("pre", "text");
    pre.dir = "auto";
    var foot = el("div", "rc-foot muted");
    root.appendChild(head);
    root.appendChild(pre);
    root.appendChild(foot);
    root.addEventListener("click", function () { openNode(n.id); });
    var column = columns[item.col] || columns[columns.length - 1];
    var after = Array.prototype.find.call(column.children, function (c) {
      return c.dataset.branch !== undefined && Number(c.dataset.branch) > n.branch;
    });
    column.insertBefore(root, after || null);
    card = {root: root, pre: pre, status: status, foot: foot, shown: -1, state: ""};
    cards.set(item.i, card);
    return card;
  }
  function textOf(i) {
    if (!texts.has(i)) texts.set(i, visible(nodes[i].text));
    return texts.get(i);
  }
  function footer(n) {
    var parts = [];
    if (n.stage !== "distill" && n.status === "ok") {
      parts.push("answer: " + (n.answer === null ? "none" : n.answer)
                 + (n.correct === true ? " ✓" : n.correct === false ? " ✗" : ""));
    }
    if (n.error) parts.push("error: " + n.error);
    var tokens = (n.usage.prompt_tokens || 0) + (n.usage.completion_tokens || 0);
    parts.push(tokens + " tokens");
    return visible(parts.join(" · "));
  }
  function render() {
    var shown = 0, states = [];
    items.forEach(function (item) {
      var card = cards.get(item.i);
      if (t < item.start || !active) {
        if (card) card.root.hidden = true;
        states.push(0);
        return;
      }
      shown += 1;
      card = cardFor(item);
      card.root.hidden = false;
      // The text streams in evenly over the call's real duration: the rule of
      // pdr_core/replay.py `shown_share`, applied here to the spans of `node_spans`.
      var n = nodes[item.i], text = textOf(item.i), done = t >= item.end;
      var length = done ? text.length
        : Math.floor(text.length * (t - item.start) / (item.end - item.start));
      // Never cut a surrogate pair in half.
      var code = text.charCodeAt(length - 1);
      if (!done && code >= 0xD800 && code < 0xDC00) length -= 1;
      if (length !== card.shown) {
        card.pre.textContent = text.slice(0, length);
        card.shown = length;
        if (!done) card.pre.scrollTop = card.pre.scrollHeight;
      }
      var state = done ? n.status : "running";
      if (state !== card.state) {
        card.state = state;
        card.root.className = "replay-card sg-" + n.stage + (done ? " done" : " running");
        card.status.className = "badge st-" + state;
        card.status.textContent = state === "running" ? "running…" : state;
        card.foot.textContent = done ? footer(n) : "";
      }
      states.push(done ? 2 : 1);
    });
    clock.textContent = t.toFixed(1) + " s of " + duration.toFixed(1) + " s · "
      + shown + " of " + items.length + " nodes";
    scrub.value = duration > 0 ? Math.round(1000 * t / duration) : (t > 0 ? 1000 : 0);
    fadeTree(states);
  }
  // Nodes of the tree that have not started yet are faded; running ones half.
  function fadeTree(states) {
    var key = active ? states.join("") : "";
    if (key === treeState || !tree.data) return;
    treeState = key;
    var stateOf = new Map();
    items.forEach(function (item, k) { stateOf.set(nodes[item.i].id, states[k]); });
    var levels = [0.12, 0.45, 1];
    var level = function (id) { return active ? levels[stateOf.get(id) || 0] : 1; };
    treeTraces.forEach(function (trace, ti) {
      if (!trace.ids || !trace.markers) return;
      // A clicked (selected) point would make plotly draw every marker opaque.
      var update = {"marker.opacity": [trace.ids.map(level)], selectedpoints: [null]};
      if (trace.text) {
        update.text = [trace.text.map(function (s, k) {
          return level(trace.ids[k]) === 1 ? s : "";
        })];
      }
      Plotly.restyle(tree, update, [ti]);
    });
  }
  function setPlaying(on) {
    clearInterval(timer);
    timer = null;
    playButton.textContent = on ? "❚❚ Pause" : "▶ Replay";
    if (!on) return;
    active = true;
    board.hidden = false;
    last = performance.now();
    timer = setInterval(function () {
      var now = performance.now();
      t = Math.min(duration, t + (now - last) / 1000 * Number(speedSelect.value));
      last = now;
      render();
      if (t >= duration) setPlaying(false);
    }, 40);
    render();
  }
  playButton.onclick = function () {
    if (timer) return setPlaying(false);
    if (t >= duration) t = 0;
    setPlaying(true);
  };
  document.getElementById("replay-restart").onclick = function () {
    t = 0;
    setPlaying(true);
  };
  scrub.oninput = function () {
    active = true;
    board.hidden = false;
    t = duration * Number(scrub.value) / 1000;
    render();
  };
  render();
})();
