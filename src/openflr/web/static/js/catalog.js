// The file catalog on the page: search across the user's VMs (#/search), the versions of an item
// (a dialog over the browse view), the changes between two points of a VM (#/diff), and the
// catalog's own state when it is still being built (docs/CATALOG.md).
//
// app.js owns routing, mounting and browsing; it hands this module what it needs (`ctx`), so that
// opening a hit or a version goes through the page's one way of opening a point: its route.

import { $, fill, h, nameNode, nameText, show } from "./dom.js";
import { ApiError, SessionEnded, get } from "./api.js";
import { formatCount, formatSize, formatTime } from "./format.js";

const enc = encodeURIComponent;
let ctx = null;

/** `ctx`: {app, can, go, parseHash, route, report, say, showView, loadInventory, timeCell}. */
export function initCatalog(context) {
  ctx = context;
  wireSearch();
  wireVersions();
  wireDiff();
}

// ---------------------------------------------------------------------------------------------
// Shapes and addresses

/** A list from an answer, bare or wrapped in an object ({"Hits": {"CatalogHits": […]}}). */
function items(value) {
  if (Array.isArray(value)) return value;
  if (value && typeof value === "object") {
    for (const inner of Object.values(value)) if (Array.isArray(inner)) return inner;
  }
  return [];
}

/** The bare id of an EM urn (urn:veeam:VmReplicaPoint:<id>) or of a bare id. */
export function bareId(uid) {
  const text = String(uid ?? "");
  return text.slice(text.lastIndexOf(":") + 1);
}

/** A guest path as the API puts it after …/mounts/{id}/ (openflr.api.mountvalues.url_part). */
export function urlPart(path) {
  const encoded = enc(String(path).replace(/^\/+/, ""));
  return encoded.replace(/%(2F|3A|24|40|2C|3B|3D|2B)/gi, (m) => decodeURIComponent(m));
}

/** A path's folder and name: "C:/Documents/report.txt" → ["C:/Documents", "report.txt"]. */
export function splitPath(path) {
  const text = String(path);
  const cut = text.lastIndexOf("/");
  if (cut < 0) return [null, text];
  if (cut === 0) return ["/", text.slice(1)];
  return [text.slice(0, cut), text.slice(cut + 1)];
}

/** The page's address of `path` in a point: its folder, with the item highlighted (a root: the
 * point's roots). */
export function itemRoute(pointId, path) {
  const [folder, name] = splitPath(path);
  const base = `#/point/${enc(pointId)}`;
  if (folder === null || name === "") return `${base}/${urlPart(path)}`;
  let rel;
  try {
    rel = urlPart(folder);
  } catch {
    return base; // a name with an unpaired surrogate has no address the page can write
  }
  return `${base}/${rel}?${new URLSearchParams({ highlight: name })}`;
}

/** A VM's name as the VM list shows it (its replica's source VM), else as the answer gives it. */
function vmName(replicaUid, given) {
  return ctx.app.inventory?.replicas.get(bareId(replicaUid))?.vmName || given || "";
}

function newestPoint(points) {
  let best = null;
  for (const p of points) {
    if (!best || String(p.CreationTimeUTC || "") > String(best.CreationTimeUTC || "")) best = p;
  }
  return best;
}

function timeNode(iso) {
  const t = formatTime(iso);
  return h("time", { datetime: iso || undefined, title: t.title || undefined }, t.text);
}

function sizeCell(size, show = true) {
  if (!show || size === undefined || size === null) return h("td", { class: "num" }, "");
  return h("td", { class: "num", title: `${formatCount(size)} bytes` }, formatSize(size));
}

const CHANGE_LABELS = {
  Added: "Added",
  Removed: "Removed",
  Modified: "Modified",
  MetadataChanged: "Metadata changed",
  Unchanged: "Unchanged",
};

function badge(change) {
  const key = CHANGE_LABELS[change] ? change : "Unchanged";
  return h("span", { class: `badge change-${key.toLowerCase()}` }, CHANGE_LABELS[change] || String(change || ""));
}

const TYPE_LABELS = { File: "File", Directory: "Folder", Link: "Link" };

function paging(answer, asked) {
  const info = answer?.PagingInfo || {};
  const pages = Math.max(1, Number(info.PagesCount) || 1);
  const num = Number(info.PageNum) || asked;
  return { pages, num, total: info.Total ?? info.TotalCount ?? null };
}

// ---------------------------------------------------------------------------------------------
// The catalog's state: "Cataloguing: N of M entries"

const BUSY = new Set(["Queued", "Building"]);

/** What the status of some points says, or "" when each is Ready. */
export function stateText(points) {
  if (!points.length) return "No point is catalogued yet.";
  const busy = points.filter((p) => BUSY.has(p.State));
  const failed = points.filter((p) => p.State === "Failed");
  const dropped = points.filter((p) => p.State === "Dropped");
  const ready = points.filter((p) => p.State === "Ready").length;
  const parts = [];
  if (busy.length) {
    const entries = busy.reduce((n, p) => n + (Number(p.Entries) || 0), 0);
    const totals = busy.map((p) => p.Total).filter((t) => t !== undefined && t !== null);
    const total = totals.reduce((n, t) => n + (Number(t) || 0), 0);
    parts.push(totals.length === busy.length && total
      ? `Cataloguing: ${formatCount(entries)} of ${formatCount(total)} entries`
      : `Cataloguing: ${formatCount(entries)} entries so far`);
    parts.push(`${formatCount(ready)} of ${formatCount(points.length)} points ready`);
  }
  if (dropped.length) {
    parts.push(`${formatCount(dropped.length)} point${dropped.length === 1 ? " is" : "s are"} not catalogued (an administrator can build ${dropped.length === 1 ? "it" : "them"})`);
  }
  if (failed.length) {
    parts.push(`${formatCount(failed.length)} point${failed.length === 1 ? "" : "s"} could not be catalogued${failed[0].Message ? ` (${failed[0].Message})` : ""}`);
  }
  return parts.length ? `${parts.join("; ")}.` : "";
}

async function catalogStatus(vm) {
  const answer = await get(`/api/openflr/catalog/status${vm ? `?vm=${enc(vm)}` : ""}`);
  return items(answer?.Points);
}

let pollTimer = 0;

/** Show the state of the catalog (of `vm`, or of every VM) in `el`; while points are still being
 * built, look again every few seconds and call `done` once they are all built. Returns whether
 * every point is ready. */
async function showState(el, vm, generation, done) {
  clearTimeout(pollTimer);
  let points;
  try {
    points = await catalogStatus(vm);
  } catch (err) {
    if (err instanceof SessionEnded) throw err;
    el.textContent = `The catalog's state is unknown: ${err.message}`;
    show(el);
    return false;
  }
  if (generation !== ctx.app.generation) return false;
  const text = stateText(points);
  el.textContent = text;
  show(el, Boolean(text));
  const busy = points.some((p) => BUSY.has(p.State));
  const dropped = points.some((p) => p.State === "Dropped");
  if (busy || dropped) {
    // Look again: soon while points are being built, now and then while some wait to be asked for.
    pollTimer = setTimeout(async () => {
      if (generation !== ctx.app.generation) return;
      const ready = await showState(el, vm, generation, done).catch(() => false);
      if (ready && generation === ctx.app.generation && done) done();
    }, busy ? 2000 : 5000);
  }
  return points.length > 0 && points.every((p) => p.State === "Ready");
}

function notReady(err) {
  return err instanceof ApiError && err.status === 409;
}

// ---------------------------------------------------------------------------------------------
// Search: #/search?q=…&match=…&type=…&vm=…&page=…&pageSize=…

const SEARCH_FIELDS = ["q", "match", "type", "vm", "pageSize"];

function searchField(name) {
  return $({ q: "search-name", match: "search-match", type: "search-type", vm: "search-vm", pageSize: "search-page-size" }[name]);
}

function searchParamsFromForm() {
  const params = new URLSearchParams();
  for (const name of SEARCH_FIELDS) {
    let value = searchField(name).value.trim();
    if ((name === "match" && value === "substring") || (name === "pageSize" && value === "100")) value = "";
    if (value) params.set(name, value);
  }
  return params;
}

function wireSearch() {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const params = parseSearchKeep();
    const q = $("search-box").value.trim();
    if (q) params.set("q", q);
    else params.delete("q");
    params.delete("page");
    ctx.go("/search", params);
  });
  $("search-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    ctx.go("/search", searchParamsFromForm());
  });
  for (const id of ["search-prev", "search-next"]) {
    $(id).addEventListener("click", () => {
      const { params } = ctx.parseHash();
      params.set("page", $(id).dataset.page || "1");
      ctx.go("/search", params);
    });
  }
}

/** The filters of the search shown, kept when the header box asks for another name. */
function parseSearchKeep() {
  const { path, params } = ctx.parseHash();
  return path === "/search" ? params : new URLSearchParams();
}

async function fillVmChoice(select, inventory, chosen) {
  const options = [h("option", { value: "" }, "All VMs")];
  const sorted = [...inventory.replicas.values()].sort((a, b) => a.vmName.localeCompare(b.vmName));
  for (const r of sorted) {
    const label = r.name !== r.vmName ? `${nameText(r.vmName)} (${nameText(r.name)})` : nameText(r.vmName);
    options.push(h("option", { value: r.id }, label));
  }
  fill(select, options);
  select.value = chosen && inventory.replicas.has(chosen) ? chosen : "";
}

export async function renderSearch(generation, params) {
  ctx.showView("search");
  const q = params.get("q") || "";
  document.title = q ? `Find “${nameText(q)}” · openflr` : "Find files · openflr";
  $("search-box").value = q;
  $("search-name").value = q;
  $("search-match").value = ["glob", "exact"].includes(params.get("match")) ? params.get("match") : "substring";
  $("search-type").value = ["File", "Directory", "Link"].includes(params.get("type")) ? params.get("type") : "";
  const pageSize = ["50", "100", "500"].includes(params.get("pageSize")) ? params.get("pageSize") : "100";
  $("search-page-size").value = pageSize;
  const page = Math.max(1, Math.floor(Number(params.get("page")) || 1));
  const inventory = await ctx.loadInventory();
  if (generation !== ctx.app.generation) return;
  await fillVmChoice($("search-vm"), inventory, params.get("vm") || "");
  const state = $("search-state");
  const redo = () => ctx.route();
  const ready = showState(state, params.get("vm") || "", generation, q ? redo : null);
  fill($("search-rows"));
  show($("search-table").closest(".scroll"), Boolean(q));
  if (!q) {
    $("search-count").textContent = "Enter a name (or a pattern such as *.docx) to search every point of your VMs.";
    drawSearchPager(null);
    await ready;
    return;
  }
  const query = new URLSearchParams({ name: q, pageSize, page: String(page) });
  for (const name of ["match", "type", "vm"]) if (params.get(name)) query.set(name, params.get(name));
  $("search-count").textContent = "Searching…";
  let answer;
  try {
    answer = await get(`/api/openflr/catalog/search?${query}`);
  } catch (err) {
    if (generation !== ctx.app.generation || err instanceof SessionEnded) return;
    if (notReady(err)) {
      $("search-count").textContent = "The catalog is not ready yet.";
      await ready;
      return;
    }
    throw err;
  }
  if (generation !== ctx.app.generation) return;
  const hits = items(answer?.Hits);
  const rows = [];
  hits.forEach((hit, i) => rows.push(...hitRows(hit, i)));
  fill($("search-rows"), rows);
  if (!rows.length) {
    $("search-rows").appendChild(h("tr", null, h("td", { colspan: 6, class: "muted" }, "Nothing found.")));
  }
  const pg = paging(answer, page);
  const total = pg.total !== null && pg.total !== undefined ? ` of ${formatCount(pg.total)}` : "";
  $("search-count").textContent = `${formatCount(hits.length)}${total} hit${hits.length === 1 && !total ? "" : "s"} on page ${formatCount(pg.num)} of ${formatCount(pg.pages)}`;
  drawSearchPager(pg);
  await ready;
}

function drawSearchPager(pg) {
  const pager = $("search-prev").closest("nav");
  show(pager, Boolean(pg) && pg.pages > 1);
  if (!pg) return;
  $("search-page").textContent = `Page ${formatCount(pg.num)} of ${formatCount(pg.pages)}`;
  $("search-prev").disabled = pg.num <= 1;
  $("search-next").disabled = pg.num >= pg.pages;
  $("search-prev").dataset.page = String(pg.num - 1);
  $("search-next").dataset.page = String(pg.num + 1);
}

/** A hit's row and the hidden row listing its points. */
function hitRows(hit, index) {
  const points = items(hit.Points);
  const newest = newestPoint(points);
  const label = nameText(hit.Path);
  const opens = newest ? itemRoute(bareId(newest.PointUid), hit.Path) : null;
  const pathCell = h("th", { scope: "row", class: "path" },
    opens
      ? h("a", { href: opens, class: "hit", title: `Open the newest point holding ${label}` }, nameNode(hit.Path))
      : nameNode(hit.Path));
  const detailsId = `hit-points-${index}`;
  const toggle = h("button", {
    type: "button",
    class: "small points-toggle",
    "aria-expanded": "false",
    "aria-controls": detailsId,
    "aria-label": `in ${points.length} point${points.length === 1 ? "" : "s"}: show the points of ${label}`,
  }, `in ${formatCount(points.length)} point${points.length === 1 ? "" : "s"}`);
  const list = h("ul", { class: "point-list" }, [...points].reverse().map((p) =>
    h("li", null,
      h("a", { href: itemRoute(bareId(p.PointUid), hit.Path), "aria-label": `Open ${label} in the point of ${formatTime(p.CreationTimeUTC).text}` },
        timeNode(p.CreationTimeUTC)),
      hit.Type === "File" ? ` · ${formatSize(p.Size)}` : "",
      p.ModifiedDateUTC ? [" · modified ", timeNode(p.ModifiedDateUTC)] : null)));
  const details = h("tr", { id: detailsId, class: "hit-points", hidden: true },
    h("td", { colspan: 6 }, h("span", { class: "sr-only" }, `Points holding ${label}:`), list));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    show(details, open);
  });
  const row = h("tr", { class: "hit" },
    pathCell,
    h("td", null, nameNode(vmName(hit.ReplicaUid, hit.VmName))),
    h("td", null, TYPE_LABELS[hit.Type] || hit.Type || ""),
    sizeCell(hit.Size, hit.Type === "File"),
    h("td", null, hit.ModifiedDateUTC ? timeNode(hit.ModifiedDateUTC) : ""),
    h("td", null, toggle));
  return [row, details];
}

// ---------------------------------------------------------------------------------------------
// Versions of one item (a dialog over the browse view)

const versionsState = { item: null, replicaId: "", pointId: "", hashes: false, ask: 0 };

function wireVersions() {
  const dialog = $("versions-dialog");
  $("versions-close").addEventListener("click", () => dialog.close());
  $("versions-hashes").addEventListener("click", () => {
    versionsState.hashes = true;
    loadVersions();
  });
  dialog.addEventListener("close", () => {
    versionsState.ask += 1;
    clearTimeout(pollTimer);
    versionsState.item = null;
  });
}

/** Open the versions of `item` ({Path, Name, dir}) of the replica `replicaId`, seen from the point
 * `pointId` (marked in the list). */
export function openVersions(item, replicaId, pointId) {
  Object.assign(versionsState, { item, replicaId, pointId, hashes: false });
  fill($("versions-heading"), `Versions of the ${item.dir ? "folder" : "file"} `, nameNode(item.Name || item.Path));
  fill($("versions-path"), nameNode(item.Path));
  const compare = $("versions-hashes");
  show(compare, ctx.can("Restore") && !item.dir);
  compare.disabled = false;
  $("versions-dialog").showModal();
  $("versions-close").focus();
  loadVersions();
}

async function loadVersions() {
  const { item, replicaId, hashes } = versionsState;
  if (!item) return;
  const ask = ++versionsState.ask;
  const generation = ctx.app.generation;
  const state = $("versions-state");
  show(state, false);
  fill($("versions-rows"));
  $("versions-count").textContent = hashes ? "Reading and comparing the content of each version…" : "Loading…";
  $("versions-hashes").disabled = true;
  const query = new URLSearchParams({ vm: replicaId, path: item.Path });
  if (hashes) query.set("hashes", "true");
  let answer;
  try {
    answer = await get(`/api/openflr/catalog/versions?${query}`);
  } catch (err) {
    if (ask !== versionsState.ask || err instanceof SessionEnded) return;
    $("versions-hashes").disabled = false;
    if (notReady(err) || err.status === 404) {
      $("versions-count").textContent = err.status === 404
        ? "No catalogued point holds this item."
        : "The catalog is not ready yet.";
      const stillAsked = () => ask === versionsState.ask;
      await showState(state, replicaId, generation, () => {
        if (stillAsked()) loadVersions();
      });
      return;
    }
    $("versions-count").textContent = err.message;
    return;
  }
  if (ask !== versionsState.ask) return;
  $("versions-hashes").disabled = hashes;
  const versions = items(answer?.Versions);
  const rows = [...versions].reverse().map((v) => versionRow(v, item));
  fill($("versions-rows"), rows);
  if (!rows.length) $("versions-rows").appendChild(h("tr", null, h("td", { colspan: 7, class: "muted" }, "No versions.")));
  const changed = versions.filter((v) => v.Change && v.Change !== "Unchanged").length;
  $("versions-count").textContent =
    `In ${formatCount(versions.length)} point${versions.length === 1 ? "" : "s"}, newest first; ` +
    `${formatCount(changed)} with a change${hashes ? " (content compared by SHA-256)" : ""}.`;
  await showState(state, replicaId, generation, null);
}

function summaryText(summary) {
  if (!summary) return "";
  const parts = [];
  for (const [key, label] of [["Added", "added"], ["Removed", "removed"], ["Modified", "modified"], ["MetadataChanged", "metadata changed"]]) {
    if (Number(summary[key])) parts.push(`${formatCount(summary[key])} ${label}`);
  }
  return parts.length ? `below: ${parts.join(", ")}` : "nothing changed below";
}

function versionRow(v, item) {
  const pid = bareId(v.PointUid);
  const here = pid === versionsState.pointId;
  const when = formatTime(v.CreationTimeUTC).text;
  const details = [];
  if (v.Type && v.Type !== "File") details.push(TYPE_LABELS[v.Type] || v.Type);
  if (v.Summary) details.push(summaryText(v.Summary));
  if (v.Sha256) details.push(h("code", { class: "hash", title: `SHA-256 ${v.Sha256}` }, `SHA-256 ${String(v.Sha256).slice(0, 12)}…`));
  if (here) details.push(h("strong", null, "this point"));
  const open = h("a", {
    class: "button small",
    href: itemRoute(pid, item.Path),
    "aria-label": `Open ${nameText(item.Name || item.Path)} in the point of ${when}`,
  }, "Open");
  open.addEventListener("click", () => $("versions-dialog").close());
  return h("tr", { class: here ? "version here" : "version", "data-change": v.Change || "" },
    h("th", { scope: "row" }, timeNode(v.CreationTimeUTC)),
    h("td", null, badge(v.Change)),
    sizeCell(v.Size, v.Type === "File"),
    h("td", null, v.ModifiedDateUTC ? timeNode(v.ModifiedDateUTC) : ""),
    h("td", { class: "owner" }, nameNode(v.Owner || "")),
    h("td", { class: "details" }, details.flatMap((d, i) => (i ? [" · ", d] : [d]))),
    h("td", null, open));
}

// ---------------------------------------------------------------------------------------------
// Changes between two points: #/diff?vm=…&from=…&to=…&under=…&page=…&pageSize=…

function wireDiff() {
  $("diff-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const { params } = ctx.parseHash();
    const next = new URLSearchParams();
    if (params.get("vm")) next.set("vm", params.get("vm"));
    next.set("from", $("diff-from").value);
    next.set("to", $("diff-to").value);
    const under = $("diff-under").value.trim();
    if (under) next.set("under", under);
    if ($("diff-page-size").value !== "100") next.set("pageSize", $("diff-page-size").value);
    ctx.go("/diff", next);
  });
  for (const id of ["diff-prev", "diff-next"]) {
    $(id).addEventListener("click", () => {
      const { params } = ctx.parseHash();
      params.set("page", $(id).dataset.page || "1");
      ctx.go("/diff", params);
    });
  }
}

/** The diff view's address: the changes of `replicaId` from one point to another below `under`. */
export function diffRoute(replicaId, from, to, under) {
  const params = new URLSearchParams({ vm: replicaId });
  if (from) params.set("from", from);
  if (to) params.set("to", to);
  if (under) params.set("under", under);
  return `#/diff?${params}`;
}

function pointLabel(point, newest) {
  const t = formatTime(point.time).text;
  return point === newest ? `${t} (newest)` : t;
}

export async function renderDiff(generation, params) {
  ctx.showView("diff");
  document.title = "Compare points · openflr";
  const inventory = await ctx.loadInventory();
  if (generation !== ctx.app.generation) return;
  let replica = inventory.replicas.get(params.get("vm") || "");
  if (!replica) {
    const point = inventory.points.get(params.get("to") || params.get("from") || "");
    replica = point ? inventory.replicas.get(point.replicaId) : null;
  }
  const crumbs = [h("li", null, h("a", { href: "#/" }, "Virtual machines"))];
  if (replica) crumbs.push(h("li", null, h("a", { href: `#/vm/${enc(replica.id)}` }, nameNode(replica.vmName))));
  crumbs.push(h("li", { "aria-current": "page" }, "Compare points"));
  fill($("diff-crumbs"), crumbs);
  fill($("diff-rows"));
  show($("diff-downloads"), false);
  show($("diff-prev").closest("nav"), false);
  show($("diff-state"), false);
  if (!replica) {
    fill($("diff-heading"), "Changes between two points");
    fill($("diff-from"));
    fill($("diff-to"));
    $("diff-count").textContent = "Choose a VM first: open it from the list of virtual machines.";
    return;
  }
  fill($("diff-heading"), "Changes between two points of ", nameNode(replica.vmName));
  document.title = `Compare points · ${nameText(replica.vmName)} · openflr`;
  const points = replica.points; // newest first
  const newest = points[0];
  const to = points.find((p) => p.id === params.get("to")) || points[0];
  const from = points.find((p) => p.id === params.get("from")) || points[1] || points[0];
  for (const [select, chosen] of [[$("diff-from"), from], [$("diff-to"), to]]) {
    fill(select, points.map((p) => h("option", { value: p.id }, pointLabel(p, newest))));
    if (chosen) select.value = chosen.id;
  }
  const under = params.get("under") || "";
  $("diff-under").value = under;
  const pageSize = ["50", "100", "500"].includes(params.get("pageSize")) ? params.get("pageSize") : "100";
  $("diff-page-size").value = pageSize;
  const page = Math.max(1, Math.floor(Number(params.get("page")) || 1));
  if (!from || !to || from === to) {
    $("diff-count").textContent = points.length < 2
      ? "This VM has one point only: there is nothing to compare."
      : "Choose two different points.";
    return;
  }
  const query = new URLSearchParams({ from: from.id, to: to.id });
  if (under) query.set("under", under);
  $("diff-count").textContent = "Comparing…";
  let answer;
  try {
    answer = await get(`/api/openflr/catalog/diff?${query}&pageSize=${pageSize}&page=${page}`);
  } catch (err) {
    if (generation !== ctx.app.generation || err instanceof SessionEnded) return;
    if (notReady(err)) {
      $("diff-count").textContent = `The catalog of these points is not ready yet: ${err.message}`;
      await showState($("diff-state"), replica.id, generation, () => ctx.route());
      return;
    }
    throw err;
  }
  if (generation !== ctx.app.generation) return;
  const changes = items(answer?.Changes);
  const rows = changes.map((c) => changeRow(c, from, to));
  fill($("diff-rows"), rows);
  if (!rows.length) {
    $("diff-rows").appendChild(h("tr", null, h("td", { colspan: 7, class: "muted" },
      under ? "Nothing changed below this folder." : "Nothing changed.")));
  }
  const pg = paging(answer, page);
  $("diff-count").textContent = `${formatCount(changes.length)} change${changes.length === 1 ? "" : "s"} on page ${formatCount(pg.num)} of ${formatCount(pg.pages)}, from ${formatTime(from.time).text} to ${formatTime(to.time).text}`;
  const pager = $("diff-prev").closest("nav");
  show(pager, pg.pages > 1);
  $("diff-page").textContent = `Page ${formatCount(pg.num)} of ${formatCount(pg.pages)}`;
  $("diff-prev").disabled = pg.num <= 1;
  $("diff-next").disabled = pg.num >= pg.pages;
  $("diff-prev").dataset.page = String(pg.num - 1);
  $("diff-next").dataset.page = String(pg.num + 1);
  // The changed files of either side as one ZIP (the server applies the download rules).
  show($("diff-downloads"), ctx.can("Download") && changes.length > 0);
  for (const [id, side, point] of [["diff-zip-from", "from", from], ["diff-zip-to", "to", to]]) {
    const a = $(id);
    a.setAttribute("href", `/api/openflr/catalog/diff?${query}&format=zip&side=${side}`);
    a.setAttribute("download", ""); // set here only: a role without downloads has no download links
    // One span: a flex box (.button) would drop the spaces at the ends of its text runs.
    fill(a, h("span", null, "Changed files as in ", timeNode(point.time), side === "from" ? " (before)" : " (after)"));
  }
  await showState($("diff-state"), replica.id, generation, null);
}

function changeRow(c, from, to) {
  const before = c.Before || null;
  const after = c.After || null;
  // A removed item is seen in the from point, any other in the to point.
  const point = c.Change === "Removed" ? from : to;
  const file = c.Type === "File";
  return h("tr", { class: "change", "data-change": c.Change || "" },
    h("th", { scope: "row", class: "path" },
      h("a", { href: itemRoute(point.id, c.Path), "aria-label": `Open ${nameText(c.Path)} in the point of ${formatTime(point.time).text}` }, nameNode(c.Path))),
    h("td", null, TYPE_LABELS[c.Type] || c.Type || ""),
    h("td", null, badge(c.Change)),
    sizeCell(before?.Size, file && Boolean(before)),
    sizeCell(after?.Size, file && Boolean(after)),
    h("td", null, before?.ModifiedDateUTC ? timeNode(before.ModifiedDateUTC) : ""),
    h("td", null, after?.ModifiedDateUTC ? timeNode(after.ModifiedDateUTC) : ""));
}
