// A terminal for the dashboard: a screen of cells driven by the bytes a
// sandbox's PTY sends, and keystrokes turned into the bytes a PTY expects.
//
// It understands what shells, readline, less, top and most editors use:
// the C0 controls, ESC 7/8/D/E/M/c, and CSI cursor movement (A-H, d, f),
// erasing (J, K, X), inserting and deleting (@, P, L, M), scrolling (S, T,
// r), colours and attributes (m: 16, 256 and 24-bit colours, bold, dim,
// italic, underline, inverse), modes (?1 application cursor keys, ?7
// wrap, ?25 cursor, ?47/?1047/?1049 alternate screen, ?2004 bracketed
// paste) and the cursor position report (6n). OSC strings (titles) are
// read and ignored; anything else unknown is skipped, never shown.
//
// Rendering builds one element per row and one span per run of equal
// attributes, with colours set through the CSS object model, so the
// dashboard's Content-Security-Policy needs no inline styles.

const ESC = "\x1b";

const BLANK_ATTR = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };

// xterm's 16 base colours, then the 6x6x6 cube and the grey ramp.
const BASE = [
  "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
  "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
];

function palette(n) {
  if (n < 16) return BASE[n];
  if (n < 232) {
    const i = n - 16;
    const level = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
  }
  const grey = 8 + (n - 232) * 10;
  return `rgb(${grey},${grey},${grey})`;
}

function blankRow(cols, attr) {
  return Array.from({ length: cols }, () => ({ ch: " ", attr }));
}

export class Terminal {
  constructor(element, { cols = 80, rows = 24 } = {}) {
    this.element = element;
    this.cols = cols;
    this.rows = rows;
    this.decoder = new TextDecoder("utf-8");
    this.listeners = [];
    this.reset();
    element.addEventListener("keydown", (event) => this.onKey(event));
    element.addEventListener("paste", (event) => this.onPaste(event));
  }

  reset() {
    this.attr = BLANK_ATTR;
    this.main = this.makeScreen();
    this.alternate = null;
    this.screen = this.main;
    this.x = 0;
    this.y = 0;
    this.pendingWrap = false;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.saved = { x: 0, y: 0, attr: BLANK_ATTR };
    this.modes = { appCursor: false, wrap: true, cursor: true, paste: false };
    this.state = "text";
    this.params = "";
    this.scheduleRender();
  }

  makeScreen() {
    return Array.from({ length: this.rows }, () => blankRow(this.cols, BLANK_ATTR));
  }

  // Calls `callback(text)` with what the user typed, to send to the PTY.
  onInput(callback) {
    this.listeners.push(callback);
  }

  emit(text) {
    for (const listener of this.listeners) listener(text);
  }

  // Output from the PTY: a Uint8Array (UTF-8, possibly split anywhere) or a string.
  write(data) {
    const text = typeof data === "string" ? data : this.decoder.decode(data, { stream: true });
    for (const ch of text) this.feed(ch);
    this.scheduleRender();
  }

  feed(ch) {
    switch (this.state) {
      case "text":
        return this.text(ch);
      case "esc":
        return this.escape(ch);
      case "charset":
        this.state = "text";
        return;
      case "csi":
        return this.csi(ch);
      case "osc":
        if (ch === "\x07") this.state = "text";
        else if (ch === ESC) this.state = "osc-esc";
        return;
      case "osc-esc":
        this.state = ch === "\\" ? "text" : "osc";
        return;
      default:
        this.state = "text";
    }
  }

  text(ch) {
    const code = ch.codePointAt(0);
    if (code < 0x20 || code === 0x7f) {
      this.control(ch);
      return;
    }
    if (this.pendingWrap) {
      this.pendingWrap = false;
      this.x = 0;
      this.lineFeed();
    }
    this.screen[this.y][this.x] = { ch, attr: this.attr };
    if (this.x === this.cols - 1) {
      this.pendingWrap = this.modes.wrap;
    } else {
      this.x += 1;
    }
  }

  control(ch) {
    switch (ch) {
      case "\r":
        this.x = 0;
        this.pendingWrap = false;
        break;
      case "\n":
      case "\v":
      case "\f":
        this.lineFeed();
        break;
      case "\b":
        this.x = Math.max(0, this.x - 1);
        this.pendingWrap = false;
        break;
      case "\t":
        this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8);
        break;
      case ESC:
        this.state = "esc";
        break;
      default:
        break; // BEL, SO, SI, NUL, DEL: nothing to show
    }
  }

  escape(ch) {
    this.state = "text";
    switch (ch) {
      case "[":
        this.state = "csi";
        this.params = "";
        break;
      case "]":
        this.state = "osc";
        break;
      case "(":
      case ")":
      case "*":
      case "+":
        this.state = "charset";
        break;
      case "7":
        this.saved = { x: this.x, y: this.y, attr: this.attr };
        break;
      case "8":
        ({ x: this.x, y: this.y, attr: this.attr } = this.saved);
        this.pendingWrap = false;
        break;
      case "D":
        this.lineFeed();
        break;
      case "E":
        this.x = 0;
        this.lineFeed();
        break;
      case "M":
        if (this.y === this.top) this.scrollDown(1);
        else this.y = Math.max(0, this.y - 1);
        break;
      case "c":
        this.reset();
        break;
      default:
        break; // ESC = and ESC > (keypad modes) and the rest
    }
  }

  csi(ch) {
    const code = ch.charCodeAt(0);
    if (code >= 0x30 && code <= 0x3f) {
      if (this.params.length < 64) this.params += ch;
      return;
    }
    if (code >= 0x20 && code <= 0x2f) return; // intermediates: none used
    this.state = "text";
    const priv = this.params.startsWith("?");
    const list = (priv ? this.params.slice(1) : this.params)
      .split(";")
      .map((p) => (p === "" ? null : Number.parseInt(p, 10)));
    const n = (i, fallback = 1) => (list[i] === null || list[i] === undefined || list[i] === 0 ? fallback : list[i]);
    if (priv) {
      if (ch === "h" || ch === "l") this.setModes(list, ch === "h");
      return;
    }
    this.pendingWrap = false;
    switch (ch) {
      case "A": this.y = Math.max(this.y < this.top ? 0 : this.top, this.y - n(0)); break;
      case "B": this.y = Math.min(this.y > this.bottom ? this.rows - 1 : this.bottom, this.y + n(0)); break;
      case "C": this.x = Math.min(this.cols - 1, this.x + n(0)); break;
      case "D": this.x = Math.max(0, this.x - n(0)); break;
      case "E": this.x = 0; this.y = Math.min(this.rows - 1, this.y + n(0)); break;
      case "F": this.x = 0; this.y = Math.max(0, this.y - n(0)); break;
      case "G": case "`": this.x = this.clampX(n(0) - 1); break;
      case "H": case "f": this.y = this.clampY(n(0) - 1); this.x = this.clampX(n(1) - 1); break;
      case "d": this.y = this.clampY(n(0) - 1); break;
      case "J": this.eraseDisplay(list[0] || 0); break;
      case "K": this.eraseLine(list[0] || 0); break;
      case "X": this.fill(this.y, this.x, Math.min(this.cols, this.x + n(0))); break;
      case "@": this.insertChars(n(0)); break;
      case "P": this.deleteChars(n(0)); break;
      case "L": this.insertLines(n(0)); break;
      case "M": this.deleteLines(n(0)); break;
      case "S": this.scrollUp(n(0)); break;
      case "T": this.scrollDown(n(0)); break;
      case "m": this.sgr(list); break;
      case "r":
        this.top = this.clampY(n(0) - 1);
        this.bottom = this.clampY(n(1, this.rows) - 1);
        if (this.top >= this.bottom) { this.top = 0; this.bottom = this.rows - 1; }
        this.x = 0; this.y = 0;
        break;
      case "s": this.saved = { x: this.x, y: this.y, attr: this.attr }; break;
      case "u": ({ x: this.x, y: this.y, attr: this.attr } = this.saved); break;
      case "n": if (list[0] === 6) this.emit(`${ESC}[${this.y + 1};${this.x + 1}R`); break;
      default: break;
    }
  }

  clampX(x) {
    return Math.max(0, Math.min(this.cols - 1, x));
  }

  clampY(y) {
    return Math.max(0, Math.min(this.rows - 1, y));
  }

  setModes(list, on) {
    for (const mode of list) {
      if (mode === 1) this.modes.appCursor = on;
      else if (mode === 7) this.modes.wrap = on;
      else if (mode === 25) this.modes.cursor = on;
      else if (mode === 2004) this.modes.paste = on;
      else if (mode === 47 || mode === 1047 || mode === 1049) this.useAlternate(on, mode === 1049);
    }
  }

  useAlternate(on, saveCursor) {
    if (on === (this.screen !== this.main)) return;
    if (on) {
      if (saveCursor) this.saved = { x: this.x, y: this.y, attr: this.attr };
      this.alternate = this.makeScreen();
      this.screen = this.alternate;
    } else {
      this.screen = this.main;
      this.alternate = null;
      if (saveCursor) ({ x: this.x, y: this.y, attr: this.attr } = this.saved);
    }
  }

  sgr(list) {
    let a = { ...this.attr };
    for (let i = 0; i < list.length; i += 1) {
      const p = list[i] || 0;
      if (p === 0) a = { ...BLANK_ATTR };
      else if (p === 1) a.bold = true;
      else if (p === 2) a.dim = true;
      else if (p === 3) a.italic = true;
      else if (p === 4) a.underline = true;
      else if (p === 7) a.inverse = true;
      else if (p === 22) { a.bold = false; a.dim = false; }
      else if (p === 23) a.italic = false;
      else if (p === 24) a.underline = false;
      else if (p === 27) a.inverse = false;
      else if (p >= 30 && p <= 37) a.fg = BASE[p - 30];
      else if (p === 39) a.fg = null;
      else if (p >= 40 && p <= 47) a.bg = BASE[p - 40];
      else if (p === 49) a.bg = null;
      else if (p >= 90 && p <= 97) a.fg = BASE[p - 90 + 8];
      else if (p >= 100 && p <= 107) a.bg = BASE[p - 100 + 8];
      else if (p === 38 || p === 48) {
        let colour = null;
        if (list[i + 1] === 5) {
          colour = palette(Math.max(0, Math.min(255, list[i + 2] || 0)));
          i += 2;
        } else if (list[i + 1] === 2) {
          const [r, g, b] = [list[i + 2], list[i + 3], list[i + 4]].map((v) => Math.max(0, Math.min(255, v || 0)));
          colour = `rgb(${r},${g},${b})`;
          i += 4;
        }
        if (p === 38) a.fg = colour;
        else a.bg = colour;
      }
    }
    this.attr = a;
  }

  lineFeed() {
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y += 1;
  }

  scrollUp(count) {
    for (let i = 0; i < count; i += 1) {
      this.screen.splice(this.top, 1);
      this.screen.splice(this.bottom, 0, blankRow(this.cols, this.attr));
    }
  }

  scrollDown(count) {
    for (let i = 0; i < count; i += 1) {
      this.screen.splice(this.bottom, 1);
      this.screen.splice(this.top, 0, blankRow(this.cols, this.attr));
    }
  }

  fill(y, from, to) {
    for (let x = from; x < to; x += 1) this.screen[y][x] = { ch: " ", attr: this.attr };
  }

  eraseLine(mode) {
    if (mode === 0) this.fill(this.y, this.x, this.cols);
    else if (mode === 1) this.fill(this.y, 0, this.x + 1);
    else this.fill(this.y, 0, this.cols);
  }

  eraseDisplay(mode) {
    if (mode === 0) {
      this.eraseLine(0);
      for (let y = this.y + 1; y < this.rows; y += 1) this.fill(y, 0, this.cols);
    } else if (mode === 1) {
      this.eraseLine(1);
      for (let y = 0; y < this.y; y += 1) this.fill(y, 0, this.cols);
    } else {
      for (let y = 0; y < this.rows; y += 1) this.fill(y, 0, this.cols);
    }
  }

  insertChars(count) {
    const row = this.screen[this.y];
    for (let i = 0; i < count; i += 1) {
      row.splice(this.x, 0, { ch: " ", attr: this.attr });
      row.pop();
    }
  }

  deleteChars(count) {
    const row = this.screen[this.y];
    for (let i = 0; i < count && this.x < row.length; i += 1) {
      row.splice(this.x, 1);
      row.push({ ch: " ", attr: this.attr });
    }
  }

  insertLines(count) {
    if (this.y < this.top || this.y > this.bottom) return;
    for (let i = 0; i < count; i += 1) {
      this.screen.splice(this.bottom, 1);
      this.screen.splice(this.y, 0, blankRow(this.cols, this.attr));
    }
  }

  deleteLines(count) {
    if (this.y < this.top || this.y > this.bottom) return;
    for (let i = 0; i < count; i += 1) {
      this.screen.splice(this.y, 1);
      this.screen.splice(this.bottom, 0, blankRow(this.cols, this.attr));
    }
  }

  // The screen as plain text, one line per row (trailing blanks dropped).
  screenText() {
    return this.screen.map((row) => row.map((c) => c.ch).join("").trimEnd()).join("\n");
  }

  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    window.requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const lines = this.screen.map((row, y) => {
      const line = document.createElement("div");
      line.className = "term-row";
      let run = null;
      let runAttr = null;
      let runCursor = false;
      row.forEach((cell, x) => {
        const cursor = this.modes.cursor && x === this.x && y === this.y;
        if (!run || cell.attr !== runAttr || cursor || runCursor) {
          run = document.createElement("span");
          this.paint(run, cell.attr, cursor);
          line.appendChild(run);
          runAttr = cell.attr;
          runCursor = cursor;
        }
        run.textContent += cell.ch;
      });
      return line;
    });
    this.element.replaceChildren(...lines);
  }

  paint(span, attr, cursor) {
    let fg = attr.fg;
    let bg = attr.bg;
    if (attr.inverse !== cursor) {
      [fg, bg] = [bg || "var(--term-bg)", fg || "var(--term-fg)"];
    }
    if (fg) span.style.color = fg;
    if (bg) span.style.backgroundColor = bg;
    if (attr.bold) span.style.fontWeight = "bold";
    if (attr.dim) span.style.opacity = "0.7";
    if (attr.italic) span.style.fontStyle = "italic";
    if (attr.underline) span.style.textDecoration = "underline";
    if (cursor) span.className = "term-cursor";
  }

  onKey(event) {
    const bytes = this.keyBytes(event);
    if (bytes === null) return;
    event.preventDefault();
    this.emit(bytes);
  }

  keyBytes(event) {
    if (event.metaKey) return null;
    const arrow = { ArrowUp: "A", ArrowDown: "B", ArrowRight: "C", ArrowLeft: "D", Home: "H", End: "F" };
    if (arrow[event.key]) return `${ESC}${this.modes.appCursor ? "O" : "["}${arrow[event.key]}`;
    const named = {
      Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: ESC,
      Delete: `${ESC}[3~`, Insert: `${ESC}[2~`, PageUp: `${ESC}[5~`, PageDown: `${ESC}[6~`,
    };
    if (named[event.key]) return named[event.key];
    if (event.key.length !== 1) return null;
    if (event.ctrlKey) {
      const code = event.key.toUpperCase().charCodeAt(0);
      if (code >= 0x40 && code <= 0x5f) return String.fromCharCode(code - 0x40);
      return null;
    }
    return event.altKey ? `${ESC}${event.key}` : event.key;
  }

  onPaste(event) {
    const text = event.clipboardData && event.clipboardData.getData("text");
    if (!text) return;
    event.preventDefault();
    const body = text.replace(/\r?\n/g, "\r");
    this.emit(this.modes.paste ? `${ESC}[200~${body}${ESC}[201~` : body);
  }
}
