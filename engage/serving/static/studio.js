// The draft studio: fills the account list, scores a draft (multipart upload of the photo) and compares
// drafts A and B (JSON with base64 photos). Plain DOM, no build step; all text is set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_CAPTION = 2200;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

// An API error body {"error": {...} | [...]} as lines "field: message".
function errorLines(body, status) {
  const detail = body && body.error;
  const items = Array.isArray(detail) ? detail : detail ? [detail] : [{ field: null, message: `HTTP ${status}` }];
  return items.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message));
}

async function call(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    if (response.status === 401) { $("key-box").open = true; sessionStorage.removeItem("engage-key"); }
    const error = new Error(errorLines(body, response.status).join("\n"));
    error.lines = errorLines(body, response.status);
    throw error;
  }
  return body;
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  return x >= 100 ? Math.round(x).toLocaleString() : x.toFixed(1);
}

function draftFields(letter) {
  const when = $(`when-${letter}`).value;
  return {
    caption: $(`caption-${letter}`).value,
    posted_at: when ? new Date(when).toISOString() : null,
    sponsored: $(`sponsored-${letter}`).checked,
    file: $(`photo-${letter}`).files[0] || null,
  };
}

function common() {
  const account = $("account").value.trim();
  if (!account) throw Object.assign(new Error("Choose an account first."), { lines: ["Choose an account first."] });
  const followers = $("followers").value.trim();
  return { account, followers: followers === "" ? null : Number(followers) };
}

function showError(target, error) {
  target.replaceChildren();
  const box = el("div", "error");
  (error.lines || [String(error.message || error)]).forEach((line) => box.appendChild(el("p", null, line)));
  target.appendChild(box);
}

function renderScore(target, score) {
  target.replaceChildren();
  const likes = score.likes;
  const head = el("div", "numbers");
  const likesBox = el("div", "metric");
  likesBox.appendChild(el("span", "label", "Expected likes"));
  likesBox.appendChild(el("span", "big likes-expected", likes ? fmt(likes.expected) : "–"));
  if (likes) likesBox.appendChild(el("span", "range", `likely ${fmt(likes.low)} – ${fmt(likes.high)}`));
  head.appendChild(likesBox);

  const comments = score.comments;
  const commentsBox = el("div", "metric");
  commentsBox.appendChild(el("span", "label", "Comments"));
  commentsBox.appendChild(el("span", "big comments-expected", comments ? fmt(comments.expected) : "–"));
  if (comments) commentsBox.appendChild(el("span", "range", `likely ${fmt(comments.low)} – ${fmt(comments.high)}`));
  head.appendChild(commentsBox);

  const riskBox = el("div", "metric");
  riskBox.appendChild(el("span", "label", "Authenticity risk"));
  const risk = score.authenticity_risk;
  const pct = risk === null || risk === undefined ? null : Math.round(risk * 100);
  riskBox.appendChild(el("span", "big risk", pct === null ? "–" : `${pct}%`));
  if (pct !== null) {
    const meter = el("div", "meter");
    const fill = el("div", pct >= 50 ? "fill high" : pct >= 25 ? "fill mid" : "fill low");
    fill.style.width = `${pct}%`;
    meter.appendChild(fill);
    riskBox.appendChild(meter);
  }
  // One line saying what the figure means: real felt-fake labels, or the engagement-drop proxy.
  if (score.risk_label) riskBox.appendChild(el("span", "range risk-label", `learned from ${score.risk_label}`));
  head.appendChild(riskBox);
  target.appendChild(head);

  target.appendChild(el("h3", null, "Tips"));
  const tips = el("ul", "tips");
  if (score.flags.length === 0) tips.appendChild(el("li", "none", "No warnings for this draft."));
  score.flags.forEach((flag) => {
    const item = el("li", `tip ${flag.code}`);
    item.dataset.code = flag.code;
    item.textContent = flag.message;
    tips.appendChild(item);
  });
  target.appendChild(tips);

  target.appendChild(el("h3", null, "What moves the prediction"));
  const factors = el("ul", "factors");
  const largest = Math.max(1e-9, ...score.factors.map((f) => Math.abs(f.contribution)));
  score.factors.forEach((factor) => {
    const item = el("li", factor.contribution >= 0 ? "up" : "down");
    item.appendChild(el("span", "name", factor.feature));
    const bar = el("span", "bar");
    bar.style.width = `${Math.round((Math.abs(factor.contribution) / largest) * 100)}%`;
    item.appendChild(bar);
    item.appendChild(el("span", "sign", factor.contribution >= 0 ? "raises likes" : "lowers likes"));
    factors.appendChild(item);
  });
  target.appendChild(factors);
  target.appendChild(el("p", "muted small", `model ${score.model_version}`));
}

async function scoreDraft(letter) {
  const target = $(`result-${letter}`);
  const button = $(`score-${letter}`);
  try {
    const { account, followers } = common();
    const draft = draftFields(letter);
    const form = new FormData();
    form.append("account", account);
    form.append("caption", draft.caption);
    if (followers !== null) form.append("followers", String(followers));
    form.append("sponsored", draft.sponsored ? "true" : "false");
    if (draft.posted_at) form.append("posted_at", draft.posted_at);
    if (draft.file) form.append("image", draft.file, draft.file.name);
    button.disabled = true;
    target.replaceChildren(el("p", "muted", "Scoring…"));
    renderScore(target, await call("/v1/score", { method: "POST", body: form, headers: headers() }));
  } catch (error) {
    showError(target, error);
  } finally {
    button.disabled = false;
  }
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));  // a data: URL, which the API accepts
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function compareDrafts() {
  const target = $("compare-result");
  const button = $("compare");
  try {
    const { account, followers } = common();
    const drafts = [];
    for (const letter of ["a", "b"]) {
      const d = draftFields(letter);
      const body = { caption: d.caption, sponsored: d.sponsored };
      if (d.posted_at) body.posted_at = d.posted_at;
      if (followers !== null) body.followers = followers;
      if (d.file) body.image = await readBase64(d.file);
      drafts.push(body);
    }
    button.disabled = true;
    target.replaceChildren(el("p", "muted", "Comparing…"));
    const result = await call("/v1/compare", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ account, drafts, best_hour: $("best-hour").checked }),
    });
    renderCompare(target, result);
    // Show each draft's full score in its own card, side by side.
    result.drafts.forEach((entry) => renderScore($(`result-${"ab"[entry.index]}`), entry.score));
  } catch (error) {
    showError(target, error);
  } finally {
    button.disabled = false;
  }
}

function renderCompare(target, result) {
  target.replaceChildren();
  const [top, second] = result.drafts;
  const name = (entry) => `Draft ${"AB"[entry.index]}`;
  const gap = Math.abs(second.likes_vs_best);
  const verdict = gap < 0.5
    ? "Both drafts are expected to do about the same."
    : `${name(top)} is expected to get about ${gap >= 10 ? Math.round(gap) : gap.toFixed(1)} more likes than ${name(second)}.`;
  target.appendChild(el("p", "verdict", verdict));
  const table = el("table", "ranking");
  const head = el("tr");
  ["Rank", "Draft", "Expected likes", "vs Draft A", "Risk"].forEach((h) => head.appendChild(el("th", null, h)));
  table.appendChild(head);
  result.drafts.forEach((entry) => {
    const row = el("tr");
    const risk = entry.score.authenticity_risk;
    [String(entry.rank), name(entry), fmt(entry.score.likes.expected),
     entry.index === 0 ? "–" : `${entry.likes_vs_first >= 0 ? "+" : "−"}${fmt(Math.abs(entry.likes_vs_first))}`,
     risk === null ? "–" : `${Math.round(risk * 100)}%`].forEach((v) => row.appendChild(el("td", null, v)));
    table.appendChild(row);
  });
  target.appendChild(table);
  if (result.best_hour) {
    const when = new Date(result.best_hour.posted_at);
    target.appendChild(el("p", "best-hour",
      `Best time to post ${name(top)}: ${when.toLocaleString([], { weekday: "long", hour: "2-digit", minute: "2-digit" })}` +
      ` (about ${fmt(result.best_hour.expected_likes)} likes).`));
  }
}

function wireDraft(letter) {
  const caption = $(`caption-${letter}`);
  const counter = $(`count-${letter}`);
  caption.addEventListener("input", () => {
    counter.textContent = `${caption.value.length} / ${MAX_CAPTION}`;
    counter.classList.toggle("over", caption.value.length > MAX_CAPTION);
  });
  $(`photo-${letter}`).addEventListener("change", (event) => {
    const preview = $(`preview-${letter}`);
    const file = event.target.files[0];
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
  });
  $(`score-${letter}`).addEventListener("click", () => scoreDraft(letter));
}

async function loadStatus() {
  const status = $("model-status");
  try {
    const ready = await fetch("/ready").then((r) => r.json());
    if (ready.status !== "ready") {
      status.textContent = ready.error || "The model is still loading…";
      setTimeout(loadStatus, 2000);
      return;
    }
    status.textContent = `Model ${ready.model} · version ${ready.version} · embedder ${ready.embedder}`;
    await loadAccounts();
  } catch (error) {
    status.textContent = "The server cannot be reached.";
  }
}

async function loadAccounts() {
  try {
    const { accounts } = await call("/v1/accounts", { headers: headers() });
    const list = $("account-list");
    list.replaceChildren(...accounts.map((a) => { const o = el("option"); o.value = a; return o; }));
    if (!$("account").value && accounts.length) $("account").value = accounts[0];
  } catch (error) {
    $("model-status").textContent += ` · accounts unavailable (${(error.lines || [error.message]).join("; ")})`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const key = $("api-key");
  key.value = sessionStorage.getItem("engage-key") || "";
  key.addEventListener("change", () => { sessionStorage.setItem("engage-key", key.value.trim()); loadAccounts(); });
  wireDraft("a");
  wireDraft("b");
  $("compare").addEventListener("click", compareDrafts);
  loadStatus();
});
