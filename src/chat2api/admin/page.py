"""The token page: one self-contained HTML document (inline CSS and JS, nothing fetched
from elsewhere).

The page holds no secret. It asks for the admin key, keeps it in
``sessionStorage`` (gone when the tab closes) and sends it as the Bearer
header of every ``fetch`` to the JSON API beside it (``./tokens/api``). Data
from the API is put in the page with ``textContent`` only. The
Content-Security-Policy allows exactly this page's script and style (by
hash) and requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib

_STYLE = """
:root { color-scheme: light; --fg: #1d2329; --muted: #5d6873; --line: #d8dde2;
  --bg: #f6f7f9; --card: #fff; --accent: #1f5fbf; --bad: #b3261e; --warn: #8a5a00;
  --good: #1e7a3c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 10px; }
p.lead { color: var(--muted); margin: 0 0 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 16px; margin-bottom: 16px; }
label { font-weight: 600; display: block; margin-bottom: 6px; }
input[type=password], textarea { width: 100%; font: 13px/1.4 ui-monospace, Menlo, Consolas,
  monospace; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
textarea { min-height: 110px; resize: vertical; }
.row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 10px; }
.row input[type=password] { flex: 1; min-width: 220px; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--line);
  background: #fff; color: var(--fg); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--bad); border-color: #e5b5b1; }
button:disabled { opacity: .55; cursor: default; }
.message { padding: 10px 12px; border-radius: 6px; margin-bottom: 16px; }
.message.error { background: #fdecea; color: var(--bad); border: 1px solid #f3c1bc; }
.message.info { background: #e8f1fc; color: #17457f; border: 1px solid #bdd4f2; }
.counts { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 12px; }
.count { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 90px; }
.count b { display: block; font-size: 20px; }
.count span { color: var(--muted); font-size: 13px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 13px; }
td.fp { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: nowrap; }
.state { font-weight: 600; }
.state-active { color: var(--good); }
.state-cooling { color: var(--warn); }
.state-dead { color: var(--bad); }
.empty { color: var(--muted); padding: 12px 8px; }
code { background: #eef1f4; padding: 1px 5px; border-radius: 4px; }
[hidden] { display: none !important; }
"""

_SCRIPT = """
"use strict";
const KEY_NAME = "chat2api-admin-key";
const API = location.pathname.replace(/\\/+$/, "") + "/api";
const $ = (id) => document.getElementById(id);

function showMessage(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message " + (kind || "error");
  box.hidden = !text;
}

function storedKey() { return sessionStorage.getItem(KEY_NAME) || ""; }

async function call(method, path, body) {
  const headers = { "Authorization": "Bearer " + storedKey() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    throw new Error("chat2api could not be reached: " + err.message);
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) {
    const message = data && data.error && data.error.message
      ? data.error.message : "HTTP " + response.status;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function when(epoch) {
  if (epoch === null || epoch === undefined) return "—";
  const date = new Date(epoch * 1000);
  const seconds = Math.round(epoch - Date.now() / 1000);
  const span = Math.abs(seconds) < 90 ? Math.abs(seconds) + " s"
    : Math.abs(seconds) < 5400 ? Math.round(Math.abs(seconds) / 60) + " min"
    : Math.abs(seconds) < 129600 ? Math.round(Math.abs(seconds) / 3600) + " h"
    : Math.round(Math.abs(seconds) / 86400) + " d";
  return date.toLocaleString() + (seconds >= 0 ? " (in " + span + ")" : " (" + span + " ago)");
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined || text === "" ? "—" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function render(data) {
  for (const name of ["active", "cooling", "dead", "total"]) {
    $("count-" + name).textContent = String(data.counts[name]);
  }
  const body = $("accounts-body");
  body.replaceChildren();
  for (const account of data.accounts) {
    const row = document.createElement("tr");
    row.dataset.id = account.id;
    cell(row, account.fingerprint, "fp");
    cell(row, account.kind === "refresh_token" ? "RefreshToken" : "AccessToken");
    cell(row, account.plan);
    cell(row, account.workspace);
    cell(row, account.proxy, "proxy");
    cell(row, [account.impersonate, account.user_agent].filter(Boolean).join(" · "), "browser");
    cell(row, account.state, "state state-" + account.state);
    cell(row, account.dead_reason);
    cell(row, account.cooldown_until === null ? "—" : when(account.cooldown_until));
    cell(row, account.last_used === null ? "never" : when(account.last_used));
    cell(row, account.successes + " / " + account.failures);
    const actions = cell(row, "");
    actions.textContent = "";
    const remove = document.createElement("button");
    remove.className = "danger remove";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => act(
      () => call("DELETE", "/accounts/" + encodeURIComponent(account.id)),
      () => "Removed " + account.fingerprint + "."));
    actions.appendChild(remove);
    body.appendChild(row);
  }
  $("empty").hidden = data.accounts.length > 0;
  $("accounts-table").hidden = data.accounts.length === 0;
}

async function load() {
  const data = await call("GET", "/accounts");
  render(data);
  $("manage").hidden = false;
  return data;
}

async function act(request, describe) {
  const buttons = document.querySelectorAll("#manage button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const result = await request();
    await load();
    showMessage(describe(result), "info");
  } catch (err) {
    showMessage(err.message, "error");
    if (err.status === 401) { $("manage").hidden = true; }
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

function refreshSummary(result) {
  const failed = result.results.filter((r) => r.status !== "refreshed");
  if (result.results.length === 0) return "No RefreshToken account to refresh.";
  let text = "Refreshed " + (result.results.length - failed.length) + " of "
    + result.results.length + " accounts.";
  for (const f of failed) text += " " + f.fingerprint + ": " + f.error;
  return text;
}

async function useKey(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) { showMessage("Enter the admin key.", "error"); return; }
  sessionStorage.setItem(KEY_NAME, key);
  $("key").value = "";
  try {
    await load();
    showMessage("", "info");
    $("forget").hidden = false;
  } catch (err) {
    $("manage").hidden = true;
    showMessage(err.message, "error");
    if (err.status === 401) sessionStorage.removeItem(KEY_NAME);
  }
}

function start() {
  if (document.body.dataset.enabled !== "true") return;
  $("key-form").addEventListener("submit", useKey);
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_NAME);
    $("manage").hidden = true;
    $("forget").hidden = true;
    showMessage("The admin key was forgotten by this tab.", "info");
  });
  $("add").addEventListener("click", () => {
    const text = $("tokens").value;
    act(() => call("POST", "/accounts", { tokens: text }), (r) => {
      $("tokens").value = "";
      return "Added " + r.added + ", skipped " + r.skipped + " already in the pool.";
    });
  });
  $("clear").addEventListener("click", () => {
    if (!confirm("Remove every account from the pool?")) return;
    act(() => call("DELETE", "/accounts"), (r) => "Removed " + r.removed + " accounts.");
  });
  $("revive").addEventListener("click", () => act(
    () => call("POST", "/accounts/revive"),
    (r) => "Revived " + r.revived + " dead accounts; cleared " + r.cooldowns_cleared
      + " cooldowns."));
  $("refresh").addEventListener("click", () => act(
    () => call("POST", "/refresh"), refreshSummary));
  $("reload").addEventListener("click", () => act(async () => null, () => "Reloaded."));
  if (storedKey()) {
    $("forget").hidden = false;
    load().catch((err) => {
      showMessage(err.message, "error");
      if (err.status === 401) sessionStorage.removeItem(KEY_NAME);
    });
  }
}

start();
"""

_BODY = """
<main>
  <h1>chat2api · tokens</h1>
  <p class="lead">The accounts of the pool: add, remove, revive and refresh them.</p>
  <div id="message" class="message" role="status" aria-live="polite" hidden></div>
  {content}
</main>
"""

_ENABLED = """
  <section id="login">
    <form id="key-form">
      <label for="key">Admin key</label>
      <div class="row">
        <input id="key" type="password" autocomplete="off"
               placeholder="the ADMIN_KEY this service was started with">
        <button id="use-key" class="primary" type="submit">Use key</button>
        <button id="forget" type="button" hidden>Forget key</button>
      </div>
    </form>
  </section>
  <div id="manage" hidden>
    <section>
      <h2>Accounts</h2>
      <div class="counts">
        <div class="count"><b id="count-active">0</b><span>active</span></div>
        <div class="count"><b id="count-cooling">0</b><span>cooling</span></div>
        <div class="count"><b id="count-dead">0</b><span>dead</span></div>
        <div class="count"><b id="count-total">0</b><span>total</span></div>
      </div>
      <div class="row">
        <button id="refresh" type="button">Refresh now</button>
        <button id="revive" type="button">Retry dead</button>
        <button id="reload" type="button">Reload</button>
        <button id="clear" class="danger" type="button">Clear all</button>
      </div>
      <p id="empty" class="empty">The pool is empty.</p>
      <table id="accounts-table" hidden>
        <thead><tr>
          <th>Fingerprint</th><th>Type</th><th>Plan</th><th>Workspace</th><th>Proxy</th><th>Browser</th><th>State</th>
          <th>Reason</th><th>Cooldown until</th><th>Last used</th><th>OK / failed</th><th></th>
        </tr></thead>
        <tbody id="accounts-body"></tbody>
      </table>
    </section>
    <section>
      <label for="tokens">Add tokens</label>
      <textarea id="tokens" spellcheck="false" autocomplete="off"
        placeholder="One per line: an AccessToken (eyJ…) or a RefreshToken (rt_…), optionally
followed by ,&lt;ChatGPT-Account-ID&gt; for a Team workspace. # starts a comment."></textarea>
      <div class="row"><button id="add" class="primary" type="button">Add</button></div>
    </section>
  </div>
"""

_DISABLED = """
  <section id="disabled">
    <h2>Token management is disabled</h2>
    <p>It is switched on by an admin key. Set <code>ADMIN_KEY</code> in the environment
    or in the <code>.env</code> file to a long random secret, for example
    <code>ADMIN_KEY=$(openssl rand -hex 24)</code>, and restart chat2api
    (<code>chat2api serve</code>). Then open this page again and enter that key.</p>
    <p>Without it, the pool can still be managed from the server's shell:
    <code>chat2api tokens add|list|remove|refresh</code>.</p>
  </section>
"""


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


_CSP = (
    "default-src 'none'; "
    f"script-src {_hash(_SCRIPT)}; "
    f"style-src {_hash(_STYLE)}; "
    "connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def render_page(*, enabled: bool) -> str:
    """The whole page; ``enabled`` says whether an ADMIN_KEY is set (never the key)."""
    content = _ENABLED if enabled else _DISABLED
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>chat2api · tokens</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body data-enabled="{"true" if enabled else "false"}">'
        f"{_BODY.replace('{content}', content)}"
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def page_headers() -> dict[str, str]:
    """Headers that keep the page from being cached, framed or loading anything foreign."""
    return {
        "Content-Security-Policy": _CSP,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
