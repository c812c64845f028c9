// DOM helpers. Everything that comes from the server is put into the page as text (textContent,
// attribute values set one by one), never parsed as markup.

/** Create an element: h("button", {class: "x", type: "button"}, "text", child, …). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "style") {
        throw new Error("inline styles are not allowed (Content-Security-Policy)");
      } else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el;
}

export function show(el, visible = true) {
  el.hidden = !visible;
}

// Characters that would disguise a name or break its line if shown as they are: C0 and C1
// controls, bidirectional marks, embeddings, overrides and isolates, zero-width characters, line
// and paragraph separators, byte-order marks.
const SPECIAL = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb]/u;
// openflr shows each byte of a name that is not UTF-8 as a private-use character U+EF00 + byte.
const ESCAPED_BYTE = /[\uef00-\uefff]/u;
const SPLIT = /([\u0000-\u001f\u007f-\u009f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufeff\ufff9-\ufffb\uef00-\uefff])/u;

function hex(code, width) {
  return code.toString(16).toUpperCase().padStart(width, "0");
}

/** A guest file name as a <bdi> element: its text isolated from the surrounding direction, control
 * and bidi characters shown as visible markers (U+202E), bytes that are not UTF-8 as \xNN. */
export function nameNode(name, tag = "bdi") {
  const el = document.createElement(tag);
  el.className = "name";
  const text = String(name ?? "");
  if (!SPLIT.test(text)) {
    el.textContent = text;
    return el;
  }
  for (const part of text.split(SPLIT)) {
    if (!part) continue;
    const code = part.codePointAt(0);
    if (part.length === 1 && ESCAPED_BYTE.test(part)) {
      const byte = code - 0xef00;
      el.appendChild(h("span", { class: "esc", title: `byte 0x${hex(byte, 2)} (not UTF-8)` }, `\\x${hex(byte, 2)}`));
    } else if (part.length === 1 && SPECIAL.test(part)) {
      el.appendChild(h("span", { class: "ctl", title: `control or direction character U+${hex(code, 4)}` }, `[U+${hex(code, 4)}]`));
    } else {
      el.appendChild(document.createTextNode(part));
    }
  }
  return el;
}

/** A name as plain text with the same markers, for places that take text only (titles, labels). */
export function nameText(name) {
  return String(name ?? "").replace(new RegExp(SPLIT.source, "gu"), (c) => {
    const code = c.codePointAt(0);
    if (code >= 0xef00 && code <= 0xefff) return `\\x${hex(code - 0xef00, 2)}`;
    return `[U+${hex(code, 4)}]`;
  });
}
