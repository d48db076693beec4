// Small line charts drawn as SVG elements (no inline styles, as the page's
// policy wants): one or two series over the same times, scaled to the
// largest value, each ending in a dot at its latest value; the caption
// gives the first series' latest value, the legend the times.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 320;
const HEIGHT = 90;
const PAD = 4;

function node(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

// Draws into `figure` (emptied first): `times` (Date objects) and
// `series` ([{name, values, className}]); `format(v)` writes a value.
export function lineChart(figure, { title, times, series, format }) {
  figure.replaceChildren();
  const caption = document.createElement("figcaption");
  const top = Math.max(0, ...series.flatMap((s) => s.values));
  const latest = (s) => s.values[s.values.length - 1] ?? 0;
  caption.textContent = `${title}: ${format(latest(series[0]))} now`;
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart" });
  const described = series.map((s) => `${s.name} ${format(latest(s))} now`).join(", ");
  svg.setAttribute("aria-label", `${title} over the last ${times.length} minutes: ${described}`);
  svg.appendChild(node("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, class: "chart-axis" }));
  const x = (i) => PAD + (times.length < 2 ? 0 : (i * (WIDTH - 2 * PAD)) / (times.length - 1));
  const y = (v) => HEIGHT - PAD - (top > 0 ? (v / top) * (HEIGHT - 2 * PAD) : 0);
  for (const s of series) {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.appendChild(node("polyline", { points, class: `chart-line ${s.className}` }));
    if (s.values.length) {
      const end = s.values.length - 1;
      svg.appendChild(node("circle", { cx: x(end), cy: y(s.values[end]), r: 3, class: `chart-dot ${s.className}` }));
    }
  }
  const legend = document.createElement("p");
  legend.className = "chart-legend muted";
  const first = times[0] ? times[0].toLocaleTimeString() : "";
  const last = times.length ? times[times.length - 1].toLocaleTimeString() : "";
  legend.textContent = `${first} – ${last} · ${series.map((s) => s.name).join(", ")}`;
  figure.append(caption, svg, legend);
}
