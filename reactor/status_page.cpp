#include "reactor/status_page.hpp"

namespace handoff::reactor {

const std::string& status_page_html() {
  static const std::string page = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>handoff status</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1d232a; background: #f6f7f9; }
  h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.4rem 0 .5rem; }
  .muted { color: #66707a; }
  .cards { display: flex; gap: .8rem; flex-wrap: wrap; }
  .card { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: .6rem .9rem; min-width: 7rem; }
  .card b { display: block; font-size: 1.5rem; }
  table { border-collapse: collapse; background: #fff; border: 1px solid #dde1e6; }
  th, td { padding: .35rem .8rem; text-align: right; border-bottom: 1px solid #eef0f2; }
  th:first-child, td:first-child { text-align: left; }
  .state { border-radius: 4px; padding: .05rem .45rem; font-size: .85rem; color: #fff; }
  .idle { background: #2e8540; } .busy { background: #d9822b; } .starting { background: #4a6fa5; }
  .retiring { background: #8a8f96; } .lingering { background: #b38b2e; }
  .bars { display: grid; grid-template-columns: 6rem 1fr 4rem; gap: .15rem .5rem; align-items: center;
          max-width: 40rem; font-size: .85rem; }
  .bar { background: #4a6fa5; height: .8rem; border-radius: 2px; }
  #error { color: #b42318; }
</style>
</head>
<body>
<h1>handoff</h1>
<div class="muted"><span id="status">loading…</span> · up <span id="uptime">–</span> · refreshed every second
  <span id="error"></span></div>
<div id="reload" class="muted"></div>
<h2>Pool</h2>
<div class="cards">
  <div class="card">idle<b id="idle">–</b></div>
  <div class="card">busy<b id="busy">–</b></div>
  <div class="card">starting<b id="starting">–</b></div>
  <div class="card">queue<b id="queue">–</b></div>
  <div class="card">longest queue<b id="longest">–</b></div>
  <div class="card">connections<b id="connections">–</b></div>
</div>
<h2>Handlers</h2>
<table id="handlers"><thead><tr><th>pid</th><th>state</th><th>requests</th><th>current request</th>
  <th>memory</th><th>started</th></tr></thead><tbody></tbody></table>
<h2>Counters</h2>
<table id="counters"><tbody></tbody></table>
<h2>Service time</h2>
<div class="bars" id="service"></div>
<h2>Queue wait</h2>
<div class="bars" id="queue_wait"></div>
<script>
"use strict";
const text = (id, value) => { document.getElementById(id).textContent = value; };
const seconds = s => s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s";
const megabytes = b => (b / 1048576).toFixed(1) + " MiB";
function cell(row, value, className) {
  const td = row.insertCell();
  if (className) {
    const badge = document.createElement("span");
    badge.className = "state " + className;
    badge.textContent = value;
    td.appendChild(badge);
  } else {
    td.textContent = value;
  }
}
function histogram(id, h) {
  const box = document.getElementById(id);
  box.replaceChildren();
  let previous = 0;
  const counts = h.buckets.map(b => { const n = b.count - previous; previous = b.count; return n; });
  const most = Math.max(1, ...counts);
  h.buckets.forEach((b, i) => {
    const label = document.createElement("span");
    label.textContent = b.le === "+Inf" ? "more" : "≤ " + seconds(b.le);
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * counts[i] / most) + "%";
    const count = document.createElement("span");
    count.textContent = counts[i];
    box.append(label, bar, count);
  });
}
async function refresh() {
  try {
    const response = await fetch("/stats", {cache: "no-store"});
    const stats = await response.json();
    text("status", stats.status);
    text("uptime", seconds(stats.uptime_seconds));
    for (const key of ["idle", "busy", "starting"]) text(key, stats.pool[key]);
    text("queue", stats.pool.queue_length);
    text("longest", stats.pool.longest_queue);
    text("connections", stats.pool.open_connections);
    const reload = stats.reload;
    text("reload", reload.state === "none" ? "" : "last reload (SIGHUP): " + reload.state +
         (reload.error ? " — " + reload.error : "") + ", " + new Date(reload.at * 1000).toLocaleTimeString());
    document.getElementById("reload").style.color = reload.state === "abandoned" ? "#b42318" : "";
    const body = document.querySelector("#handlers tbody");
    body.replaceChildren();
    for (const h of stats.handlers) {
      const row = body.insertRow();
      cell(row, h.pid);
      cell(row, h.state, h.state);
      cell(row, h.requests);
      cell(row, h.state === "busy" ? seconds(h.current_request_seconds) : "–");
      cell(row, megabytes(h.resident_bytes));
      cell(row, new Date(h.started_at * 1000).toLocaleTimeString());
    }
    const counters = document.querySelector("#counters tbody");
    counters.replaceChildren();
    const c = stats.counters;
    const rows = [["accepted connections", c.accepted], ["requests", c.requests], ["respawns", c.respawns]]
      .concat(Object.entries(c.errors).map(([kind, n]) => ["errors: " + kind.replace("_", " "), n]));
    for (const [name, value] of rows) { const row = counters.insertRow(); cell(row, name); cell(row, value); }
    histogram("service", stats.histograms.service);
    histogram("queue_wait", stats.histograms.queue_wait);
    text("error", "");
  } catch (error) {
    text("error", "· cannot reach /stats: " + error);
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace handoff::reactor
