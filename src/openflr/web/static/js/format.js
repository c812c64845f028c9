// How numbers and times are shown.

const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** 1536 → "1.5 KiB"; bytes below 1024 as "512 B". */
export function formatSize(bytes) {
  if (bytes === null || bytes === undefined || bytes === "") return "";
  let n = Number(bytes);
  if (!Number.isFinite(n)) return String(bytes);
  if (Math.abs(n) < 1024) return `${n} B`;
  let unit = -1;
  do {
    n /= 1024;
    unit += 1;
  } while (Math.abs(n) >= 1024 && unit < UNITS.length - 1);
  return `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Local time for the text, UTC for the tooltip. */
export function formatTime(iso) {
  const d = parseTime(iso);
  if (!d) return { text: iso ? String(iso) : "", title: "" };
  return { text: LOCAL.format(d), title: `${d.toISOString().replace(".000Z", "Z").replace("T", " ")} UTC` };
}

export function formatCount(n) {
  return Number(n ?? 0).toLocaleString();
}
