// Plays a recorded terminal session (asciicast v2: a header line, then
// `[seconds, "o", text]` output, `[seconds, "r", "COLSxROWS"]` resizes and
// `[seconds, "m", note]` markers) into the page's terminal emulator, with
// its timing: pauses longer than `maxIdle` seconds are shortened, and the
// whole runs `speed` times as fast. Stopping is `controller.abort()`.

import { Terminal } from "./term.js";

// The header and the events of an asciicast v2 text; lines that are no
// event are skipped.
export function parseCast(text) {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new Error("the recording is empty");
  const header = JSON.parse(lines[0]);
  if (header.version !== 2) throw new Error(`asciicast version ${header.version} is not 2`);
  const events = [];
  for (const line of lines.slice(1)) {
    try {
      const event = JSON.parse(line);
      if (Array.isArray(event) && typeof event[0] === "number") events.push(event);
    } catch {
      // A line cut short: the rest still plays.
    }
  }
  return { header, events };
}

function wait(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

// Plays `cast` (its text) into `element`; resolves once the session has
// played out or was stopped. `onNote(text)` gets the markers.
export async function play(element, cast, { speed = 1, maxIdle = 2, signal, onNote = () => {} }) {
  const { header, events } = parseCast(cast);
  element.replaceChildren();
  const term = new Terminal(element, { cols: header.width || 80, rows: header.height || 24 });
  let last = 0;
  for (const [at, code, data] of events) {
    if (signal.aborted) break;
    if (code === "o") {
      await wait((Math.min(Math.max(at - last, 0), maxIdle) / speed) * 1000, signal);
      if (signal.aborted) break;
      term.write(String(data));
      last = at;
    } else if (code === "m") {
      onNote(String(data));
    }
  }
  return term;
}
