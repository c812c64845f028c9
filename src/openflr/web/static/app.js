// openflr's restore page: log on, find a VM, open (mount) one of its replica points, browse it,
// download files and ZIPs, restore items to their original location and follow the restores;
// administrators also see the audit log and the datastores' scan problems.
//
// File names come from the guests and are hostile: they are only ever put into the page as text
// (js/dom.js). The server enforces a strict Content-Security-Policy: no inline scripts or styles.

import { $, fill, h, nameNode, nameText, show } from "./js/dom.js";
import {
  ApiError,
  SessionEnded,
  csrf,
  del,
  get,
  link,
  local,
  onSessionEnded,
  pathOf,
  post,
  setCsrf,
  waitForTask,
} from "./js/api.js";
import { formatCount, formatSize, formatTime } from "./js/format.js";
import { diffRoute, initCatalog, openVersions, renderDiff, renderSearch } from "./js/catalog.js";

const ROLES = {
  PortalAdministrator: "Administrator",
  RestoreOperator: "Restore operator",
  PortalUser: "Portal user",
};

const app = {
  me: null,
  generation: 0,
  inventory: null, // {replicas: Map, points: Map, loadedAt}
  mounts: new Map(), // pointId → {path, roots, message}
  mounting: new Map(), // pointId → Promise of a mount
  baskets: new Map(), // pointId → Map(Path → item)
  selection: new Map(), // Path → item, on the page shown
  view: null,
  point: null, // the point shown: {pointId, rel, mount, folder}
  tasks: new Map(), // TaskId → task row state
};

const enc = encodeURIComponent;

/** A list from an answer: EM lists come bare or wrapped in an object of the same name
 * ({"Problems": {"Problems": […]}}). */
function listOf(value, key) {
  if (Array.isArray(value)) return value;
  if (value && Array.isArray(value[key])) return value[key];
  return [];
}

// ---------------------------------------------------------------------------------------------
// Messages

let saidAt = 0;

function say(text) {
  saidAt = Date.now();
  const status = $("status");
  status.textContent = "";
  // A fresh text node so that screen readers announce the same message twice in a row.
  setTimeout(() => {
    status.textContent = text;
  }, 30);
}

function showError(message) {
  $("alert-text").textContent = message;
  show($("alert"));
}

function clearError() {
  show($("alert"), false);
  $("alert-text").textContent = "";
}

/** Report an error from an action; a SessionEnded needs nothing more (the logon form is shown). */
function report(err, what) {
  if (err instanceof SessionEnded) return;
  const message = err instanceof ApiError ? err.message : `${err}`;
  showError(what ? `${what}: ${message}` : message);
  if (!(err instanceof ApiError)) console.error(err);
}

function can(permission) {
  return Boolean(app.me?.Permissions?.[permission]);
}

// ---------------------------------------------------------------------------------------------
// Logon, logoff, the end of a session

const VIEWS = ["logon", "vms", "vm", "point", "audit", "inventory", "search", "diff"];

function showView(name, focus = true) {
  show($("loading"), false);
  for (const view of VIEWS) show($(`view-${view}`), view === name);
  const changed = app.view !== name;
  app.view = name;
  // Restores are followed where they are made; the administration views get the whole width.
  show($("tasks"), can("Restore") && ["vms", "vm", "point"].includes(name));
  for (const [id, prefix] of [["nav-restore", ["vms", "vm", "point", "diff"]], ["nav-audit", ["audit"]], ["nav-inventory", ["inventory"]]]) {
    if (prefix.includes(name)) $(id).setAttribute("aria-current", "page");
    else $(id).removeAttribute("aria-current");
  }
  if (changed && focus && name !== "logon") {
    const heading = $(`view-${name}`).querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: false });
    }
  }
}

function showLogon(message) {
  app.me = null;
  setCsrf("");
  show($("nav"), false);
  show($("search-form"), false);
  show($("who"), false);
  show($("tasks"), false);
  clearError();
  const note = $("logon-message");
  note.textContent = message || "";
  show(note, Boolean(message));
  $("logon-password").value = "";
  showView("logon");
  document.title = "openflr: log on";
  $("logon-user").focus();
}

function resetSessionState() {
  app.inventory = null;
  app.mounts.clear();
  app.mounting.clear();
  app.baskets.clear();
  app.selection.clear();
  app.point = null;
  app.tasks.clear();
  fill($("task-list"));
  show($("tasks-empty"));
  show($("tasks-clear"), false);
}

function sessionEnded() {
  if (!app.me) return;
  app.generation += 1;
  resetSessionState();
  showLogon("Your session has ended; log on again.");
}

function loggedOn(me) {
  app.me = me;
  setCsrf(me.Csrf);
  $("who-name").textContent = me.UserName;
  $("who-role").textContent = `(${ROLES[me.Role] || me.Role})`;
  show($("who"));
  show($("nav"));
  show($("search-form"));
  show($("nav-audit"), can("Administer"));
  show($("nav-inventory"), can("Administer"));
  loadTasks();
  route();
}

async function logon(event) {
  event.preventDefault();
  const user = $("logon-user").value.trim();
  const password = $("logon-password").value;
  const note = $("logon-message");
  if (!user || !password) {
    note.textContent = "Enter your user name and password.";
    show(note);
    return;
  }
  const button = $("logon-submit");
  button.disabled = true;
  note.textContent = "Logging on…";
  show(note);
  try {
    const me = await post("/api/openflr/web/logon", { UserName: user, Password: password }, { auth: false });
    resetSessionState();
    show(note, false);
    $("logon-password").value = "";
    loggedOn(me);
  } catch (err) {
    note.textContent = err.status === 401 ? `Logon failed: ${err.message}` : err.message;
    show(note);
    $("logon-password").focus();
  } finally {
    button.disabled = false;
  }
}

async function logoff() {
  try {
    await post("/api/openflr/web/logoff", undefined, { auth: false });
  } catch (err) {
    if (err.status !== 401) {
      report(err, "Log off");
      return;
    }
  }
  app.generation += 1;
  resetSessionState();
  history.replaceState(null, "", "#/");
  showLogon("You have logged off.");
}

// ---------------------------------------------------------------------------------------------
// Routes: #/, #/vm/<replicaId>, #/point/<pointId>[/<path as the API encodes it>][?page=…],
// #/audit?…, #/inventory, #/search?q=…, #/diff?vm=…&from=…&to=… (js/catalog.js)

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const q = raw.indexOf("?");
  return {
    path: (q >= 0 ? raw.slice(0, q) : raw) || "/",
    params: new URLSearchParams(q >= 0 ? raw.slice(q + 1) : ""),
  };
}

function hashFor(path, params) {
  const query = params ? params.toString() : "";
  return `#${path}${query ? `?${query}` : ""}`;
}

/** Go somewhere: a new history entry (push) or the current one changed (replace). */
function go(path, params, { replace = false } = {}) {
  const hash = hashFor(path, params);
  if (hash === location.hash) return route();
  if (replace) {
    history.replaceState(null, "", hash);
    return route();
  }
  setBusy(true); // at once, so nothing reads the page it is about to replace as the answer
  location.hash = hash; // hashchange routes
  return undefined;
}

/** Say on <main> whether a view is being drawn (aria-busy); set before the hash changes, too. */
function setBusy(busy) {
  document.querySelector("main")?.setAttribute("aria-busy", busy ? "true" : "false");
}

async function route() {
  if (!app.me) return;
  clearTimeout(vmFilterTimer);
  const generation = ++app.generation;
  const { path, params } = parseHash();
  setBusy(true);
  clearError();
  if ($("versions-dialog").open) $("versions-dialog").close(); // back or forward while it is open
  if (Date.now() - saidAt > 1500) $("status").textContent = ""; // what was said is stale elsewhere
  let m;
  try {
    if (path === "/") await renderVms(generation, params);
    else if ((m = /^\/vm\/([^/]+)$/.exec(path))) await renderVm(generation, decodeURIComponent(m[1]));
    else if ((m = /^\/point\/([^/]+)(\/.*)?$/.exec(path))) {
      await renderPoint(generation, decodeURIComponent(m[1]), m[2] === undefined ? null : m[2].slice(1), params);
    } else if (path === "/audit") await renderAudit(generation, params);
    else if (path === "/inventory") await renderInventory(generation);
    else if (path === "/search") await renderSearch(generation, params);
    else if (path === "/diff") await renderDiff(generation, params);
    else {
      await renderVms(generation, new URLSearchParams());
      showError("There is no such page here.");
    }
  } catch (err) {
    if (generation === app.generation) report(err);
  } finally {
    if (generation === app.generation) setBusy(false);
  }
}

// ---------------------------------------------------------------------------------------------
// Inventory: replicas and their points

function lastSegment(href) {
  const parts = pathOf(href).split("/");
  return decodeURIComponent(parts[parts.length - 1]);
}

async function loadInventory(force = false) {
  if (app.inventory && !force && Date.now() - app.inventory.loadedAt < 60_000) return app.inventory;
  const [replicaList, pointList] = await Promise.all([
    get("/api/replicas?format=Entity"),
    get("/api/vmReplicaPoints?format=Entity"),
  ]);
  const replicas = new Map();
  for (const r of replicaList?.Replicas || []) {
    const id = lastSegment(r.Href);
    replicas.set(id, { id, name: r.Name, platform: r.Platform, job: r.JobName, vmName: "", points: [] });
  }
  const points = new Map();
  for (const p of pointList?.VmReplicaPoints || []) {
    const id = lastSegment(p.Href);
    const replicaHref = link(p, "Up", "ReplicaReference");
    const replicaId = replicaHref ? lastSegment(replicaHref) : "";
    const point = { id, replicaId, time: p.CreationTimeUTC, vmName: p.VmDisplayName || p.VmName, name: p.Name, type: p.PointType, algorithm: p.Algorithm };
    points.set(id, point);
    const replica = replicas.get(replicaId);
    if (replica) {
      replica.points.push(point);
      if (!replica.vmName) replica.vmName = point.vmName;
    }
  }
  for (const replica of replicas.values()) {
    replica.points.sort((a, b) => String(b.time).localeCompare(String(a.time)));
    if (!replica.vmName) replica.vmName = replica.name;
  }
  app.inventory = { replicas, points, loadedAt: Date.now() };
  return app.inventory;
}

function timeCell(iso, tag = "td") {
  const t = formatTime(iso);
  return h(tag, null, h("time", { datetime: iso || undefined, title: t.title || undefined }, t.text));
}

async function renderVms(generation, params) {
  showView("vms");
  document.title = "Virtual machines · openflr";
  const filter = $("vm-filter");
  if (params.has("q") && filter.value !== params.get("q")) filter.value = params.get("q");
  const inventory = await loadInventory();
  if (generation !== app.generation) return;
  drawVmRows(inventory);
}

function drawVmRows(inventory) {
  const needle = $("vm-filter").value.trim().toLowerCase();
  const rows = [];
  const sorted = [...inventory.replicas.values()].sort((a, b) => a.vmName.localeCompare(b.vmName));
  for (const r of sorted) {
    if (needle && !r.vmName.toLowerCase().includes(needle) && !r.name.toLowerCase().includes(needle)) continue;
    const newest = r.points[0];
    rows.push(
      h("tr", null,
        h("th", { scope: "row" },
          h("a", { href: `#/vm/${enc(r.id)}`, class: "vm-link" }, nameNode(r.vmName)),
          r.name !== r.vmName ? h("div", { class: "muted small" }, "replica ", nameNode(r.name)) : null),
        h("td", null, r.platform || ""),
        h("td", null, nameNode(r.job || "")),
        h("td", { class: "num" }, formatCount(r.points.length)),
        newest ? timeCell(newest.time) : h("td", null, "none")));
  }
  fill($("vm-rows"), rows);
  const total = inventory.replicas.size;
  $("vm-count").textContent = needle
    ? `${rows.length} of ${total} VMs match`
    : `${total} VM${total === 1 ? "" : "s"}`;
  if (!rows.length) {
    $("vm-rows").appendChild(h("tr", null, h("td", { colspan: 5, class: "muted" }, needle ? "No VM matches." : "No replicas found.")));
  }
}

async function renderVm(generation, replicaId) {
  showView("vm");
  const inventory = await loadInventory();
  if (generation !== app.generation) return;
  const replica = inventory.replicas.get(replicaId);
  if (!replica) {
    fill($("point-rows"));
    fill($("vm-crumb"), "Unknown VM");
    $("vm-info").textContent = "";
    showError("This VM does not exist or is outside your restore scope.");
    return;
  }
  fill($("vm-crumb"), nameNode(replica.vmName));
  document.title = `${nameText(replica.vmName)} · openflr`;
  fill($("vm-heading"), "Replica points of ", nameNode(replica.vmName));
  fill($("vm-info"), `${replica.platform || "unknown platform"} · job `, nameNode(replica.job || ""), ` · replica `, nameNode(replica.name));
  show($("vm-mount-note"), !can("Mount"));
  show($("vm-compare-row"), replica.points.length > 1);
  $("vm-compare").setAttribute("href", diffRoute(replica.id));
  const rows = replica.points.map((p) =>
    h("tr", null,
      timeCell(p.time, "td"),
      h("td", null, replica.platform || ""),
      h("td", null, nameNode(replica.job || "")),
      h("td", null, [p.type, p.algorithm].filter(Boolean).join(", ")),
      h("td", null,
        can("Mount")
          ? h("a", { class: "button", href: `#/point/${enc(p.id)}`, "aria-label": `Open the point of ${formatTime(p.time).text}` }, "Open")
          : null)));
  fill($("point-rows"), rows);
  if (!rows.length) $("point-rows").appendChild(h("tr", null, h("td", { colspan: 5, class: "muted" }, "This replica has no points.")));
}

// ---------------------------------------------------------------------------------------------
// Mounting a point

function mountStatus(...children) {
  fill($("mount-status"), ...children);
}

async function ensureMount(pointId) {
  if (app.mounts.has(pointId)) return app.mounts.get(pointId);
  if (app.mounting.has(pointId)) return app.mounting.get(pointId);
  const promise = (async () => {
    const base = `/api/vmReplicaPoints/${enc(pointId)}/mounts`;
    const list = await get(base);
    const existing = list?.VmReplicaPointMounts?.[0];
    if (existing) {
      return { path: pathOf(existing.Href), roots: existing.FSRoots?.DirectoryEntries || [], message: "" };
    }
    if (!can("Mount")) {
      throw new ApiError(403, "Your role may not mount replica points, and this session has no mount of this point.");
    }
    const started = Date.now();
    const elapsed = h("span", { class: "muted", "aria-hidden": "true" });
    mountStatus(h("progress", { "aria-label": "Mounting" }), " Mounting the point: reading its disks… ", elapsed);
    const task = await post(base, {});
    const done = await waitForTask(task, () => {
      elapsed.textContent = `${Math.round((Date.now() - started) / 1000)} s`;
    });
    if (!done.Result?.Success) {
      throw new ApiError(0, `The mount failed: ${done.Result?.Message || "no reason given"}`);
    }
    const href = link(done, "Related");
    if (!href) throw new ApiError(0, "The mount task finished without a mount.");
    const mount = await get(local(href));
    return { path: pathOf(href), roots: mount?.FSRoots?.DirectoryEntries || [], message: done.Result.Message || "" };
  })();
  app.mounting.set(pointId, promise);
  try {
    const mount = await promise;
    app.mounts.set(pointId, mount);
    return mount;
  } finally {
    app.mounting.delete(pointId);
  }
}

/** The part of an entry's Href below its mount: what the route holds (already percent-encoded). */
function relOf(mount, href) {
  const path = pathOf(href);
  const prefix = `${mount.path}/`;
  if (path.startsWith(prefix)) return path.slice(prefix.length);
  if (path === mount.path) return null;
  throw new Error(`an address outside the mount: ${path}`);
}

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function pointRoute(pointId, rel) {
  return `/point/${enc(pointId)}${rel === null || rel === undefined ? "" : `/${rel}`}`;
}

// ---------------------------------------------------------------------------------------------
// Browsing a point

function folderParams(params) {
  const pageSize = Number(params.get("pageSize")) || 100;
  const page = Math.max(1, Math.floor(Number(params.get("page")) || 1));
  const orderBy = ["name", "size", "modified", "owner"].includes(params.get("orderBy")) ? params.get("orderBy") : "";
  const order = params.get("order") === "desc" ? "desc" : "asc";
  const filter = params.get("filter") || "";
  // The name of an item to point out (a search hit, a version): not kept when the page changes.
  const highlight = params.get("highlight") || "";
  return { pageSize, page, orderBy, order, filter, highlight };
}

function routeParams(fp) {
  const params = new URLSearchParams();
  if (fp.page > 1) params.set("page", String(fp.page));
  if (fp.pageSize !== 100) params.set("pageSize", String(fp.pageSize));
  if (fp.orderBy) {
    params.set("orderBy", fp.orderBy);
    params.set("order", fp.order);
  }
  if (fp.filter) params.set("filter", fp.filter);
  if (fp.highlight) params.set("highlight", fp.highlight);
  return params;
}

async function renderPoint(generation, pointId, rel, params, retried = false) {
  const samePoint = app.point?.pointId === pointId;
  const sameFolder = samePoint && app.point.rel === rel;
  showView("point", !samePoint);
  if (!samePoint) {
    app.point = { pointId, rel, mount: null, folder: null };
    show($("browser"), false);
    show($("unmount"), false);
    mountStatus();
    fill($("crumbs"));
    fill($("point-heading"), "Replica point");
    drawBasket();
  }
  app.point.rel = rel;
  const inventory = await loadInventory();
  if (generation !== app.generation) return;
  const point = inventory.points.get(pointId);
  const replica = point ? inventory.replicas.get(point.replicaId) : null;
  if (point) {
    const t = formatTime(point.time);
    fill($("point-heading"), nameNode(point.vmName), h("span", { class: "muted" }, " at "), h("time", { datetime: point.time, title: t.title }, t.text));
  } else {
    fill($("point-heading"), "Unknown point");
  }
  let mount;
  try {
    mount = await ensureMount(pointId);
  } catch (err) {
    if (generation !== app.generation || err instanceof SessionEnded) return;
    mountStatus(
      h("p", { class: "message error" }, err.message),
      can("Mount") ? h("button", { type: "button", onclick: () => route() }, "Try again") : null);
    show($("browser"), false);
    return;
  }
  if (generation !== app.generation) return;
  app.point.mount = mount;
  show($("unmount"), true);
  if (mount.message && mount.message !== "Ok") {
    mountStatus(h("p", { class: "message" }, "The mount reported: ", mount.message));
  } else {
    mountStatus(h("span", { class: "sr-only" }, "Mounted."));
  }
  show($("browser"));
  drawBasket();
  drawCrumbs(pointId, point, replica, mount, rel);
  const here = rel === null ? "Drives" : rel === "" ? "/" : rel.split("/").map(decodeSegment).join("/");
  document.title = `${nameText(here)} · ${point ? nameText(point.vmName) : "point"} · openflr`;
  if (rel === null) {
    drawRoots(pointId, mount);
    return;
  }
  show($("roots"), false);
  show($("folder"));
  try {
    await drawFolder(generation, pointId, mount, rel, folderParams(params), !sameFolder);
  } catch (err) {
    if (generation !== app.generation || err instanceof SessionEnded) return;
    if (err.status === 404 && !retried && /mount/i.test(err.message) && /does not exist/i.test(err.message)) {
      // The mount went away (closed elsewhere): mount again once.
      app.mounts.delete(pointId);
      await renderPoint(generation, pointId, rel, params, true);
      return;
    }
    fill($("entry-rows"), h("tr", null, h("td", { colspan: 6, class: "message error" }, err.message)));
    $("folder-count").textContent = "";
    show($("pager"), false);
    report(err);
  }
}

function drawCrumbs(pointId, point, replica, mount, rel) {
  const items = [h("li", null, h("a", { href: "#/" }, "Virtual machines"))];
  if (replica) items.push(h("li", null, h("a", { href: `#/vm/${enc(replica.id)}` }, nameNode(replica.vmName))));
  const pointLabel = point ? formatTime(point.time).text : "point";
  const crumbs = [];
  if (rel === null) {
    crumbs.push({ label: pointLabel, rel: null, current: true });
  } else {
    crumbs.push({ label: pointLabel, rel: null });
    const linux = mount.roots.some((r) => r.Name === "/" || r.Path === "/");
    const segments = rel === "" ? [] : rel.split("/");
    // A Linux guest is one tree from "/", except file systems it does not mount (roots named by
    // their label, "data:"), which are trees of their own.
    const separate = mount.roots
      .filter((r) => !String(r.Path ?? r.Name).startsWith("/"))
      .map((r) => {
        try {
          return relOf(mount, r.Href);
        } catch {
          return null;
        }
      });
    if (linux && !separate.includes(segments[0])) crumbs.push({ label: "/", rel: "" });
    segments.forEach((segment, i) => {
      crumbs.push({ label: decodeSegment(segment), rel: segments.slice(0, i + 1).join("/") });
    });
    crumbs[crumbs.length - 1].current = true;
  }
  for (const c of crumbs) {
    if (c.current) {
      items.push(h("li", { "aria-current": "page" }, h("span", { tabindex: "-1", class: "current" }, nameNode(c.label))));
    } else {
      items.push(h("li", null, h("a", { href: `#${pointRoute(pointId, c.rel)}` }, nameNode(c.label))));
    }
  }
  fill($("crumbs"), items);
}

function drawRoots(pointId, mount) {
  show($("folder"), false);
  show($("roots"));
  app.selection.clear();
  const items = mount.roots.map((root) => {
    const rel = relOf(mount, root.Href);
    return h("li", null, h("a", { href: `#${pointRoute(pointId, rel ?? "")}`, class: "root" }, nameNode(root.Name)));
  });
  fill($("root-list"), items.length ? items : [h("li", { class: "muted" }, "This point has no readable file systems.")]);
}

function listingQuery(fp) {
  let q = `action=listAll&pageSize=${fp.pageSize}&page=${fp.page}`;
  if (fp.orderBy) q += `&orderBy=${enc(fp.orderBy)}&order=${enc(fp.order)}`;
  if (fp.filter) q += `&filter=${enc(fp.filter)}`;
  return q;
}

async function drawFolder(generation, pointId, mount, rel, fp, newFolder) {
  const folderUrl = `${mount.path}/${rel}`;
  const filterInput = $("folder-filter");
  if (document.activeElement !== filterInput || newFolder) filterInput.value = fp.filter;
  $("page-size").value = String(fp.pageSize);
  if (![...$("page-size").options].some((o) => o.value === String(fp.pageSize))) {
    $("page-size").appendChild(h("option", { value: String(fp.pageSize) }, String(fp.pageSize)));
    $("page-size").value = String(fp.pageSize);
  }
  for (const th of document.querySelectorAll("#entries th[data-sort]")) {
    const key = th.dataset.sort;
    th.setAttribute("aria-sort", fp.orderBy === key ? (fp.order === "desc" ? "descending" : "ascending") : "none");
  }
  $("folder-count").textContent = "Loading…";
  const folderPromise = newFolder || !app.point.folder ? get(folderUrl) : Promise.resolve(null);
  const [listing, folderAnswer] = await Promise.all([get(`${folderUrl}?${listingQuery(fp)}`), folderPromise]);
  if (generation !== app.generation) return;
  if (folderAnswer) {
    const folder = folderAnswer.DirectoryEntry || folderAnswer.FileEntry;
    app.point.folder = folder ? { Path: folder.Path, Name: folder.Name, rel, dir: Boolean(folderAnswer.DirectoryEntry) } : null;
  }
  const folder = app.point.folder;
  const dirs = listing?.Directories?.DirectoryEntries || [];
  const files = listing?.Files?.FileEntries || [];
  const paging = listing?.PagingInfo || { PageNum: fp.page, PagesCount: 1 };
  app.selection.clear();
  const rows = [];
  for (const d of dirs) rows.push(entryRow(pointId, mount, d, true));
  for (const f of files) rows.push(entryRow(pointId, mount, f, false));
  fill($("entry-rows"), rows);
  const highlighted = fp.highlight ? highlightEntry(dirs, files, rows, fp.highlight) : null;
  if (!rows.length) {
    $("entry-rows").appendChild(h("tr", null, h("td", { colspan: 6, class: "muted" },
      fp.filter ? `Nothing in this folder has “${fp.filter}” in its name.` : "This folder is empty.")));
  }
  const pages = Math.max(1, Number(paging.PagesCount) || 1);
  const pageNum = Number(paging.PageNum) || fp.page;
  const what = `${dirs.length} folder${dirs.length === 1 ? "" : "s"} and ${files.length} file${files.length === 1 ? "" : "s"}`;
  $("folder-count").textContent = `${fp.filter ? "Matching: " : ""}${what} on page ${formatCount(pageNum)} of ${formatCount(pages)}`;
  drawPager(pageNum, pages);
  drawSelection();
  // Folder-wide actions.
  const zip = $("folder-zip");
  show(zip, can("Download"));
  zip.setAttribute("href", `${folderUrl}?action=download`);
  zip.setAttribute("aria-label", `Download this folder as ZIP${folder ? ` (${nameText(folder.Path)})` : ""}`);
  show($("folder-basket"), can("Restore") || can("Download"));
  const replicaId = app.inventory?.points.get(pointId)?.replicaId || "";
  const newer = app.inventory?.replicas.get(replicaId)?.points || [];
  show($("folder-compare"), newer.length > 1 && Boolean(folder));
  if (folder) {
    const index = newer.findIndex((p) => p.id === pointId);
    // This point against the one before it (the newest against the one before when it is the oldest).
    const to = index >= 0 && index < newer.length - 1 ? pointId : newer[0]?.id;
    const from = newer[newer.findIndex((p) => p.id === to) + 1]?.id;
    $("folder-compare").setAttribute("href", diffRoute(replicaId, from, to, folder.Path));
  }
  if (fp.highlight && !highlighted && pages > 1 && !fp.filter) {
    // Not on this page: show the folder filtered to its name.
    changeFolderParams({ filter: fp.highlight, page: 1, highlight: fp.highlight }, { replace: true });
    return;
  }
  if (highlighted) {
    highlighted.scrollIntoView({ block: "center" });
    let target = highlighted.querySelector("th a");
    if (!target) {
      target = highlighted.querySelector("th");
      target.tabIndex = -1;
    }
    target.focus({ preventScroll: true });
    say(`Found ${nameText(fp.highlight)} here.`);
  } else if (newFolder) {
    const current = document.querySelector("#crumbs [aria-current] .current");
    if (current && document.activeElement === document.body) current.focus();
  }
}

/** Mark the row of the entry named `name` (selected, when the role may select): the row or null. */
function highlightEntry(dirs, files, rows, name) {
  const index = [...dirs, ...files].findIndex((e) => e.Name === name);
  if (index < 0) return null;
  const row = rows[index];
  row.classList.add("highlight");
  row.querySelector("th").appendChild(h("span", { class: "found" }, " (found)"));
  const box = row.querySelector("input.select");
  if (box && !box.checked) {
    box.checked = true;
    box.dispatchEvent(new Event("change"));
  }
  return row;
}

/** The versions of an item of the point shown, in every catalogued point of its VM. */
function showVersions(item) {
  const pointId = app.point?.pointId;
  const replicaId = app.inventory?.points.get(pointId)?.replicaId;
  if (!replicaId) return;
  openVersions(item, replicaId, pointId);
}

function entryRow(pointId, mount, entry, dir) {
  const rel = relOf(mount, entry.Href);
  const item = { Path: entry.Path, Name: entry.Name, rel, dir };
  const label = nameText(entry.Name);
  const cells = [];
  const selectable = can("Download") || can("Restore");
  cells.push(h("td", { class: "check" }, selectable
    ? h("input", {
      type: "checkbox",
      class: "select",
      "aria-label": `Select ${label}`,
      onchange: (e) => {
        if (e.target.checked) app.selection.set(item.Path, item);
        else app.selection.delete(item.Path);
        drawSelection();
      },
    })
    : null));
  cells.push(h("th", { scope: "row", class: dir ? "name dir" : "name file" },
    dir
      ? h("a", { href: `#${pointRoute(pointId, rel)}`, "aria-label": `Folder ${label}` }, nameNode(entry.Name))
      : nameNode(entry.Name)));
  if (dir) {
    cells.push(h("td", { class: "num muted" }, "folder"));
    cells.push(h("td", null, ""));
    cells.push(h("td", null, ""));
  } else {
    cells.push(h("td", { class: "num", title: `${formatCount(entry.Size)} bytes` }, formatSize(entry.Size)));
    cells.push(timeCell(entry.ModifiedDateUTC));
    cells.push(h("td", { class: "owner" }, nameNode(entry.Owner || "")));
  }
  const actions = h("td", { class: "row-actions" });
  if (can("Download")) {
    actions.appendChild(h("a", {
      class: "button small",
      href: `${pathOf(entry.Href)}?action=download`,
      download: "",
      "aria-label": dir ? `Download ${label} as ZIP` : `Download ${label}`,
    }, dir ? "ZIP" : "Download"));
  }
  if (can("Restore")) {
    actions.appendChild(h("button", {
      type: "button",
      class: "small",
      "aria-label": `Restore ${label}…`,
      onclick: () => openRestore([item]),
    }, "Restore…"));
  }
  actions.appendChild(h("button", {
    type: "button",
    class: "small versions",
    "aria-label": `Versions of ${label}`,
    onclick: () => showVersions(item),
  }, "Versions"));
  cells.push(actions);
  return h("tr", { class: dir ? "dir" : "file" }, cells);
}

function drawPager(pageNum, pages) {
  show($("pager"), pages > 1);
  $("page-first").disabled = pageNum <= 1;
  $("page-prev").disabled = pageNum <= 1;
  $("page-next").disabled = pageNum >= pages;
  $("page-last").disabled = pageNum >= pages;
  const input = $("page-number");
  input.value = String(pageNum);
  input.max = String(pages);
  $("page-of").textContent = `of ${formatCount(pages)}`;
}

function drawSelection() {
  const n = app.selection.size;
  $("selection-count").textContent = n ? `${n} selected` : "Nothing selected";
  $("sel-zip").disabled = !n;
  $("sel-basket").disabled = !n;
  $("sel-restore").disabled = !n;
  show($("sel-zip"), can("Download"));
  show($("sel-basket"), can("Download") || can("Restore"));
  show($("sel-restore"), can("Restore"));
  show($("selection-actions"), can("Download") || can("Restore"));
  const boxes = [...document.querySelectorAll("#entry-rows input.select")];
  const all = $("select-page");
  all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
  all.indeterminate = !all.checked && boxes.some((b) => b.checked);
  show(all, boxes.length > 0);
}

function changeFolderParams(change, options) {
  if (!app.point || app.point.rel === null) return;
  const fp = folderParams(parseHash().params);
  Object.assign(fp, { highlight: "" }, change);
  go(pointRoute(app.point.pointId, app.point.rel), routeParams(fp), options);
}

function currentPages() {
  return Number($("page-number").max) || 1;
}

let filterTimer = 0;

function wireBrowser() {
  $("folder-filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    const where = app.point && `${app.point.pointId}/${app.point.rel}`;
    filterTimer = setTimeout(() => {
      // Only where it was typed: the user may have gone to another folder meanwhile.
      if (app.view === "point" && app.point && `${app.point.pointId}/${app.point.rel}` === where) {
        changeFolderParams({ filter: $("folder-filter").value, page: 1 }, { replace: true });
      }
    }, 300);
  });
  $("folder-filter").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(filterTimer);
      changeFolderParams({ filter: $("folder-filter").value, page: 1 }, { replace: true });
    }
  });
  $("page-size").addEventListener("change", () => changeFolderParams({ pageSize: Number($("page-size").value), page: 1 }));
  $("page-first").addEventListener("click", () => changeFolderParams({ page: 1 }));
  $("page-prev").addEventListener("click", () => changeFolderParams({ page: Math.max(1, Number($("page-number").value) - 1) }));
  $("page-next").addEventListener("click", () => changeFolderParams({ page: Math.min(currentPages(), Number($("page-number").value) + 1) }));
  $("page-last").addEventListener("click", () => changeFolderParams({ page: currentPages() }));
  $("page-number").addEventListener("change", () => {
    const n = Math.min(currentPages(), Math.max(1, Math.floor(Number($("page-number").value) || 1)));
    changeFolderParams({ page: n });
  });
  for (const button of document.querySelectorAll("#entries button.sort")) {
    button.addEventListener("click", () => {
      const fp = folderParams(parseHash().params);
      const key = button.dataset.sort;
      const order = fp.orderBy === key && fp.order === "asc" ? "desc" : "asc";
      changeFolderParams({ orderBy: key, order, page: 1 });
    });
  }
  $("select-page").addEventListener("change", (e) => {
    for (const box of document.querySelectorAll("#entry-rows input.select")) {
      if (box.checked !== e.target.checked) {
        box.checked = e.target.checked;
        box.dispatchEvent(new Event("change"));
      }
    }
  });
  $("sel-zip").addEventListener("click", () => downloadZip([...app.selection.values()]));
  $("sel-basket").addEventListener("click", () => addToBasket([...app.selection.values()]));
  $("sel-restore").addEventListener("click", () => openRestore([...app.selection.values()]));
  $("folder-versions").addEventListener("click", () => {
    if (app.point?.folder) showVersions({ ...app.point.folder, dir: true });
  });
  $("folder-basket").addEventListener("click", () => {
    if (app.point?.folder) addToBasket([app.point.folder]);
  });
  $("basket-zip").addEventListener("click", () => downloadZip([...basket().values()]));
  $("basket-restore").addEventListener("click", () => openRestore([...basket().values()]));
  $("basket-clear").addEventListener("click", () => {
    basket().clear();
    drawBasket();
    say("The restore list is empty.");
  });
  $("unmount").addEventListener("click", unmount);
  $("tasks-clear").addEventListener("click", clearFinishedTasks);
}

async function unmount() {
  const point = app.point;
  if (!point?.mount) return;
  try {
    await del(point.mount.path);
  } catch (err) {
    if (err.status !== 404) {
      report(err, "Close the point");
      return;
    }
  }
  app.mounts.delete(point.pointId);
  app.baskets.delete(point.pointId);
  const replicaId = app.inventory?.points.get(point.pointId)?.replicaId;
  app.point = null;
  say("The point is closed (unmounted).");
  go(replicaId ? `/vm/${enc(replicaId)}` : "/");
}

// ---------------------------------------------------------------------------------------------
// ZIP downloads and the restore list

/** Several items of one mount as one ZIP: a form posted to the server, so the browser downloads it
 * itself (no copy in the page's memory). */
async function downloadZip(items) {
  const mount = app.point?.mount;
  if (!mount || !items.length) return;
  if (items.length > MAX_LIST_ITEMS) {
    showError(`A ZIP of a list holds at most ${MAX_LIST_ITEMS} items, not ${items.length}: add their folders instead.`);
    return;
  }
  const broken = items.filter((item) => /[\r\n]/.test(item.Path));
  if (broken.length) {
    // A browser's form turns every line break into CR LF, so the server would not find these.
    showError(`${broken.map((item) => nameText(item.Path)).join(", ")}: a name with a line break cannot go into a ZIP of a list; download it on its own or with its folder.`);
    return;
  }
  // The form's answer replaces the page unless it is a download: make sure first that the session
  // still lives (if not, the log-on form says so) and the mount is there.
  try {
    await get(mount.path);
  } catch (err) {
    report(err, "Download");
    return;
  }
  if (items.length === 1) {
    // One item: the plain link (a file as itself, a folder as its own ZIP) can resume.
    const a = h("a", { href: `${mount.path}/${items[0].rel}?action=download`, download: "", class: "hidden" });
    document.body.appendChild(a);
    a.click();
    a.remove();
    return;
  }
  const form = h("form", { method: "post", action: "/api/openflr/zip", class: "hidden" });
  form.appendChild(h("input", { type: "hidden", name: "mount", value: mount.path }));
  for (const item of items) form.appendChild(h("input", { type: "hidden", name: "item", value: item.Path }));
  form.appendChild(h("input", { type: "hidden", name: "csrf", value: csrf() }));
  document.body.appendChild(form);
  form.submit();
  form.remove();
  say(`Downloading ${items.length} items as one ZIP.`);
}

const MAX_LIST_ITEMS = 1000; // the server's limit for one ZIP of a list

function basket() {
  const id = app.point?.pointId;
  if (!app.baskets.has(id)) app.baskets.set(id, new Map());
  return app.baskets.get(id);
}

function addToBasket(items) {
  const list = basket();
  let added = 0;
  for (const item of items) {
    if (!list.has(item.Path)) {
      list.set(item.Path, item);
      added += 1;
    }
  }
  drawBasket();
  say(`${added} item${added === 1 ? "" : "s"} added to the restore list (${list.size} in all).`);
}

function drawBasket() {
  const visible = Boolean(app.point?.mount) && (can("Download") || can("Restore"));
  show($("basket"), visible);
  if (!visible) return;
  const list = basket();
  const items = [...list.values()].map((item) =>
    h("li", null,
      h("span", { class: item.dir ? "kind dir" : "kind file" }, item.dir ? "folder" : "file"), " ",
      nameNode(item.Path), " ",
      h("button", {
        type: "button",
        class: "small",
        "aria-label": `Remove ${nameText(item.Path)} from the restore list`,
        onclick: () => {
          list.delete(item.Path);
          drawBasket();
          say("Removed from the restore list.");
          $("basket-heading").focus();
        },
      }, "Remove")));
  fill($("basket-list"), items);
  $("basket-heading").tabIndex = -1;
  show($("basket-empty"), !items.length);
  $("basket-zip").disabled = !items.length;
  $("basket-restore").disabled = !items.length;
  $("basket-clear").disabled = !items.length;
  show($("basket-zip"), can("Download"));
  show($("basket-restore"), can("Restore"));
  fill($("basket-heading"), `Restore list (${items.length})`);
}

// ---------------------------------------------------------------------------------------------
// Restores

const restoreState = { items: [], targets: [], mount: null };

async function openRestore(items) {
  const point = app.point;
  if (!point?.mount || !items.length) return;
  const dialog = $("restore-dialog");
  restoreState.items = items;
  restoreState.targets = items.map(() => null);
  restoreState.mount = point.mount;
  restoreState.pointId = point.pointId;
  $("restore-keep").checked = true;
  fill($("restore-items"), h("li", { class: "muted" }, "Finding where each item goes…"));
  $("restore-summary").textContent = items.length === 1 ? "" : `${items.length} items`;
  show($("restore-problem"), false);
  $("restore-confirm").disabled = true;
  $("restore-what").textContent = "";
  dialog.showModal();
  const mountPath = point.mount.path;
  const targets = await Promise.all(items.map(async (item) => {
    try {
      return await get(`/api/openflr/restoreTarget?mount=${enc(mountPath)}&path=${enc(item.Path)}`);
    } catch (err) {
      if (err instanceof SessionEnded) throw err;
      return { Path: item.Path, Target: null, Configured: err.status === 404 ? null : false, Reason: err.message };
    }
  })).catch(() => null);
  if (!targets || !dialog.open || restoreState.items !== items) return;
  restoreState.targets = targets;
  drawRestoreDialog();
}

function drawRestoreDialog() {
  const { items, targets } = restoreState;
  const overwrite = $("restore-overwrite").checked;
  const rows = items.map((item, i) => {
    const t = targets[i] || {};
    return h("li", null,
      h("span", { class: "kind" }, item.dir ? "folder" : "file"), " ",
      nameNode(item.Path),
      t.Configured === false
        ? h("span", { class: "error" }, " cannot be restored: ", t.Reason || "no restore target is configured")
        : [" → ", t.Target ? nameNode(t.Target) : h("span", { class: "muted" }, "its original location")]);
  });
  fill($("restore-items"), rows);
  const blocked = targets.filter((t) => t && t.Configured === false).length;
  let what;
  if (items.length === 1) {
    const t = targets[0] || {};
    const where = t.Target ? nameText(t.Target) : "its original location";
    const noun = items[0].dir ? "folder" : "file";
    what = overwrite
      ? `Restore ${nameText(items[0].Path)} to ${where}, overwriting the existing ${noun}${items[0].dir ? "'s files" : ""}.`
      : `Restore ${nameText(items[0].Path)} to ${where}, keeping the existing ${noun}: the restored copy is written beside it as RESTORED_<date>_<time>_${nameText(items[0].Name)}.`;
  } else {
    what = overwrite
      ? `Restore ${items.length} items to their original locations, overwriting what exists there.`
      : `Restore ${items.length} items to their original locations, keeping what exists there: each restored copy of an existing file is written beside it as RESTORED_<date>_<time>_<name>.`;
  }
  $("restore-what").textContent = what;
  $("restore-summary").textContent = items.length === 1 ? "" : `${items.length} items from this point:`;
  const problem = $("restore-problem");
  if (blocked) {
    problem.textContent = blocked === items.length
      ? "Nothing here can be restored to its original location."
      : `${blocked} of ${items.length} items cannot be restored to their original location: remove them from the selection first.`;
    show(problem);
  } else {
    show(problem, false);
  }
  $("restore-confirm").disabled = blocked > 0;
}

function wireRestoreDialog() {
  const dialog = $("restore-dialog");
  $("restore-keep").addEventListener("change", drawRestoreDialog);
  $("restore-overwrite").addEventListener("change", drawRestoreDialog);
  $("restore-cancel").addEventListener("click", () => dialog.close("cancel"));
  $("restore-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("restore-confirm").disabled) return;
    const overwrite = $("restore-overwrite").checked;
    const { items, targets, mount, pointId } = restoreState;
    dialog.close("confirm");
    items.forEach((item, i) => startRestore(pointId, mount, item, targets[i], overwrite));
  });
  dialog.addEventListener("close", () => {
    restoreState.items = [];
  });
}

function drawTasksClear() {
  show($("tasks-clear"), Boolean($("task-list").querySelector('li[data-finished="true"]')));
}

/** Forget the finished restores, here and on the server. */
async function clearFinishedTasks() {
  for (const [id, row] of [...app.tasks]) {
    if (!row.finished) continue;
    try {
      await del(`/api/tasks/${enc(id)}`);
    } catch (err) {
      if (err instanceof SessionEnded) return;
      if (err.status !== 404) {
        report(err, "Clear finished restores");
        return;
      }
    }
    row.li.remove();
    app.tasks.delete(id);
  }
  for (const li of [...$("task-list").children]) {
    if (li.dataset.finished === "true" && !li.dataset.task) li.remove();
  }
  show($("tasks-empty"), !$("task-list").children.length);
  drawTasksClear();
  say("Finished restores cleared.");
  $("tasks-heading").tabIndex = -1;
  $("tasks-heading").focus();
}

function taskRow(id, label) {
  const state = h("span", { class: "state running" }, "Starting");
  const message = h("p", { class: "task-message" });
  const li = h("li", { class: "task" }, h("div", { class: "task-title" }, label), state, message);
  const list = $("task-list");
  list.insertBefore(li, list.firstChild);
  show($("tasks-empty"), false);
  const row = { id, li, state, message };
  return row;
}

function setTaskState(row, task, failure) {
  const finish = () => {
    row.finished = true;
    row.li.dataset.finished = "true";
    drawTasksClear();
  };
  if (failure) {
    row.state.textContent = "Refused";
    row.state.className = "state failed";
    row.message.textContent = failure;
    finish();
    return;
  }
  if (task.State !== "Finished") {
    row.state.textContent = "Running";
    row.state.className = "state running";
    return;
  }
  const ok = Boolean(task.Result?.Success);
  row.state.textContent = ok ? "Done" : "Failed";
  row.state.className = ok ? "state ok" : "state failed";
  row.message.textContent = task.Result?.Message || "";
  finish();
}

// What each restore of this session was, kept in the tab so that a reload still names them.
function taskLabels() {
  try {
    const stored = JSON.parse(sessionStorage.getItem("openflr.tasks") || "{}");
    return stored.session === app.me?.SessionId ? stored.labels || {} : {};
  } catch {
    return {};
  }
}

function rememberTask(taskId, label) {
  try {
    const labels = { ...taskLabels(), [taskId]: label };
    sessionStorage.setItem("openflr.tasks", JSON.stringify({ session: app.me?.SessionId, labels }));
  } catch {
    // storage full or disabled: the label is only lost on reload
  }
}

async function startRestore(pointId, mount, item, target, overwrite) {
  const vm = app.inventory?.points.get(pointId)?.vmName || "";
  const label = h("span", null,
    overwrite ? "Restore (overwrite) " : "Restore (keep both) ",
    nameNode(item.Path),
    vm ? [" of ", nameNode(vm)] : null,
    target?.Target ? [" to ", nameNode(target.Target)] : null);
  const row = taskRow(null, label);
  try {
    const task = await post(`${mount.path}/${item.rel}?action=restore`, { ToOriginalLocation: { Overwrite: overwrite } });
    row.id = task.TaskId;
    row.li.dataset.task = task.TaskId;
    app.tasks.set(task.TaskId, row);
    rememberTask(task.TaskId, label.textContent);
    setTaskState(row, task);
    say(`Restore of ${nameText(item.Path)} started.`);
    const done = await waitForTask(task, (t) => setTaskState(row, t), 700);
    setTaskState(row, done);
    say(`Restore of ${nameText(item.Path)} ${done.Result?.Success ? "finished" : "failed"}: ${done.Result?.Message || ""}`);
  } catch (err) {
    if (err instanceof SessionEnded) return;
    setTaskState(row, null, err.message);
    say(`Restore of ${nameText(item.Path)} refused: ${err.message}`);
  }
}

/** The session's restores already running or done (after a reload). */
async function loadTasks() {
  if (!can("Restore")) return;
  let list;
  try {
    list = await get("/api/tasks");
  } catch (err) {
    report(err);
    return;
  }
  for (const task of list?.Tasks || []) {
    if (task.Operation !== "FileRestoreFromMountPoint" || app.tasks.has(task.TaskId)) continue;
    const labels = taskLabels();
    const row = taskRow(task.TaskId, h("span", null, labels[task.TaskId] || `Restore (${task.TaskId})`));
    row.li.dataset.task = task.TaskId;
    app.tasks.set(task.TaskId, row);
    setTaskState(row, task);
    if (task.State !== "Finished") {
      waitForTask(task, (t) => setTaskState(row, t), 1000).then((t) => setTaskState(row, t), (err) => report(err));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Administrators: audit log and scan problems

function toLocalInput(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const AUDIT_FIELDS = ["user", "vm", "action", "result", "since", "until", "pageSize"];

async function renderAudit(generation, params) {
  showView("audit");
  document.title = "Audit log · openflr";
  if (!can("Administer")) {
    fill($("audit-rows"));
    showError("Only administrators see the audit log.");
    return;
  }
  for (const name of AUDIT_FIELDS) {
    const input = $(`audit-${name === "pageSize" ? "page-size" : name}`);
    const value = params.get(name) || "";
    if (name === "since" || name === "until") input.value = toLocalInput(value);
    else if (name === "pageSize") input.value = value || "100";
    else input.value = value;
  }
  const query = new URLSearchParams();
  for (const name of AUDIT_FIELDS) if (params.get(name)) query.set(name, params.get(name));
  if (!query.has("pageSize")) query.set("pageSize", "100");
  const page = Math.max(1, Number(params.get("page")) || 1);
  query.set("page", String(page));
  $("audit-count").textContent = "Loading…";
  const answer = await get(`/api/openflr/audit?${query}`);
  if (generation !== app.generation) return;
  const records = listOf(answer?.Records, "Records");
  const rows = records.map((r) => {
    const point = formatTime(r.PointTimeUTC);
    return h("tr", { class: `result-${String(r.Result || "").toLowerCase()}` },
      timeCell(r.StartedAtUTC),
      h("td", null, nameNode(r.User || "")),
      h("td", null, r.Client || ""),
      h("td", null, r.Action || ""),
      h("td", null, nameNode(r.Vm || "")),
      h("td", null, r.PointTimeUTC ? h("time", { datetime: r.PointTimeUTC, title: point.title }, point.text) : ""),
      h("td", { class: "path" }, nameNode(r.Path || "")),
      h("td", { class: "path" }, nameNode(r.Target || "")),
      h("td", { class: "num", title: r.Bytes != null ? `${formatCount(r.Bytes)} bytes` : undefined }, r.Bytes != null ? formatSize(r.Bytes) : ""),
      h("td", { class: "num" }, r.Items != null ? `${formatCount(r.Items)}${r.FailedItems ? ` (${formatCount(r.FailedItems)} failed)` : ""}` : ""),
      h("td", null, h("span", { class: `state ${r.Result === "success" ? "ok" : r.Result === "running" ? "running" : "failed"}` }, r.Result || "")),
      h("td", { class: "msg" }, nameNode(r.Message || "")));
  });
  fill($("audit-rows"), rows);
  if (!rows.length) $("audit-rows").appendChild(h("tr", null, h("td", { colspan: 12, class: "muted" }, "No records match.")));
  const paging = answer?.PagingInfo || {};
  const pages = Math.max(1, Number(paging.PagesCount) || 1);
  const num = Number(paging.PageNum) || page;
  $("audit-count").textContent = `${records.length} record${records.length === 1 ? "" : "s"} on page ${formatCount(num)} of ${formatCount(pages)}`;
  $("audit-page").textContent = `Page ${formatCount(num)} of ${formatCount(pages)}`;
  $("audit-prev").disabled = num <= 1;
  $("audit-next").disabled = num >= pages;
  $("audit-prev").dataset.page = String(num - 1);
  $("audit-next").dataset.page = String(num + 1);
}

function auditParamsFromForm() {
  const params = new URLSearchParams();
  for (const name of AUDIT_FIELDS) {
    const input = $(`audit-${name === "pageSize" ? "page-size" : name}`);
    let value = input.value.trim();
    if ((name === "since" || name === "until") && value) {
      const d = new Date(value);
      value = Number.isNaN(d.getTime()) ? "" : d.toISOString();
    }
    if (name === "pageSize" && value === "100") value = "";
    if (value) params.set(name, value);
  }
  return params;
}

function wireAudit() {
  $("audit-form").addEventListener("submit", (e) => {
    e.preventDefault();
    go("/audit", auditParamsFromForm());
  });
  $("audit-reset").addEventListener("click", () => go("/audit", new URLSearchParams()));
  for (const id of ["audit-prev", "audit-next"]) {
    $(id).addEventListener("click", () => {
      const params = parseHash().params;
      params.set("page", $(id).dataset.page || "1");
      go("/audit", params);
    });
  }
}

async function renderInventory(generation) {
  showView("inventory");
  document.title = "Datastore scan · openflr";
  if (!can("Administer")) {
    fill($("problem-rows"));
    showError("Only administrators see the scan report.");
    return;
  }
  const answer = await get("/api/openflr/inventory");
  if (generation !== app.generation) return;
  const scanned = formatTime(answer?.ScannedAtUTC);
  const problems = listOf(answer?.Problems, "Problems");
  fill($("inventory-summary"),
    "Last scan ", h("time", { datetime: answer?.ScannedAtUTC || undefined, title: scanned.title }, scanned.text || "never"),
    `: ${formatCount(answer?.Replicas)} replicas, ${formatCount(answer?.Points)} points, ${formatCount(problems.length)} problem${problems.length === 1 ? "" : "s"}.`);
  const rows = problems.map((p) => h("tr", null,
    h("td", null, nameNode(p.Datastore || "")),
    h("td", { class: "path" }, nameNode(p.Folder || "")),
    h("td", { class: "msg" }, nameNode(p.Message || ""))));
  fill($("problem-rows"), rows.length ? rows : [h("tr", null, h("td", { colspan: 3, class: "muted" }, "No problems."))]);
}

// ---------------------------------------------------------------------------------------------
// Start

let vmFilterTimer = 0;

function wire() {
  $("logon-form").addEventListener("submit", logon);
  $("logoff").addEventListener("click", logoff);
  $("alert-close").addEventListener("click", clearError);
  $("vm-filter").addEventListener("input", () => {
    if (app.inventory) drawVmRows(app.inventory);
    clearTimeout(vmFilterTimer);
    vmFilterTimer = setTimeout(() => {
      if (app.view !== "vms" || parseHash().path !== "/") return; // the user has gone elsewhere
      const value = $("vm-filter").value;
      const params = new URLSearchParams();
      if (value) params.set("q", value);
      history.replaceState(null, "", hashFor("/", params));
    }, 300);
  });
  $("vm-filter").addEventListener("keydown", (e) => {
    // Enter opens the VM when the filter leaves exactly one.
    const links = document.querySelectorAll("#vm-rows a.vm-link");
    if (e.key === "Enter" && links.length === 1) links[0].click();
  });
  wireBrowser();
  wireRestoreDialog();
  wireAudit();
  initCatalog({ app, can, go, parseHash, route, report, say, showView, loadInventory, timeCell });
  window.addEventListener("hashchange", route);
  onSessionEnded(sessionEnded);
}

async function start() {
  wire();
  try {
    const me = await get("/api/openflr/me", { auth: false });
    loggedOn(me);
  } catch (err) {
    showLogon(err.status === 401 ? "" : err.message);
  }
}

start();
