// The dashboard's script and stylesheet, served by jetpost itself (no CDN, no inline script: the
// Content-Security-Policy allows scripts and styles from this origin only), and uPlot's, read from
// its npm package. They live here as text so that they ship with the compiled code.

/** Draws the overview's throughput chart from the JSON the page carries; without JS the table says the same. */
export const DASHBOARD_SCRIPT = `'use strict';
(function () {
  var data = document.getElementById('throughput-data');
  var target = document.getElementById('throughput-chart');
  if (!data || !target || typeof window.uPlot !== 'function') {
    return;
  }
  var minutes = JSON.parse(data.textContent || '[]');
  var series = [
    minutes.map(function (m) { return m.minute / 1000; }),
    minutes.map(function (m) { return m.enqueued; }),
    minutes.map(function (m) { return m.accepted; })
  ];
  var options = {
    width: Math.max(320, target.clientWidth),
    height: 260,
    scales: { x: { time: true } },
    series: [
      {},
      { label: 'enqueued', stroke: '#2563eb', width: 2 },
      { label: 'accepted by Mailjet', stroke: '#16a34a', width: 2 }
    ],
    axes: [{}, { label: 'jobs per minute' }]
  };
  target.textContent = '';
  new window.uPlot(options, series, target);
  target.setAttribute('data-drawn', 'true');
})();
`;

export const DASHBOARD_STYLES = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2937; background: #f9fafb; }
header { background: #111827; color: #f9fafb; padding: 0.6rem 1.2rem; display: flex; gap: 1.2rem; align-items: center; flex-wrap: wrap; }
header a { color: #e5e7eb; text-decoration: none; }
header a[aria-current="page"] { color: #fff; font-weight: 600; text-decoration: underline; }
header .brand { font-weight: 700; margin-right: 1rem; }
header form { margin-left: auto; }
main { padding: 1rem 1.2rem 3rem; max-width: 1200px; }
h1 { font-size: 1.35rem; margin: 0.4rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 0.6rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.35rem 0.6rem; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { max-width: 28rem; overflow-wrap: anywhere; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 0.92em; }
form.inline { display: inline; }
form.filters { display: flex; gap: 0.5rem; flex-wrap: wrap; align-items: end; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.9em; }
input, select, button { font: inherit; padding: 0.3rem 0.5rem; }
button { cursor: pointer; border: 1px solid #9ca3af; border-radius: 4px; background: #fff; }
button.primary { background: #2563eb; color: #fff; border-color: #2563eb; }
.notice { background: #ecfdf5; border: 1px solid #6ee7b7; padding: 0.5rem 0.8rem; margin-bottom: 1rem; }
.problem { background: #fef2f2; border: 1px solid #fca5a5; padding: 0.5rem 0.8rem; margin-bottom: 1rem; }
.status { display: inline-block; padding: 0 0.45rem; border-radius: 999px; background: #e5e7eb; font-size: 0.85em; }
.status-failed, .status-bounced, .status-blocked, .status-spam { background: #fee2e2; }
.status-sent, .status-opened, .status-clicked, .status-accepted, .status-delivered { background: #dcfce7; }
.status-queued, .status-scheduled, .status-deferred, .status-processing, .status-pending { background: #e0e7ff; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; background: #fff; padding: 0.8rem; }
dl.fields dt { font-weight: 600; }
dl.fields dd { margin: 0; overflow-wrap: anywhere; }
.pager { margin-top: 0.8rem; }
#throughput-chart { background: #fff; padding: 0.5rem; min-height: 280px; }
.login { max-width: 24rem; margin: 4rem auto; background: #fff; padding: 1.5rem; border: 1px solid #e5e7eb; }
.login form { display: flex; flex-direction: column; gap: 0.8rem; }
.muted { color: #6b7280; }
`;
