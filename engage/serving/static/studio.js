// The draft studio: fills the account list and the goals the model predicts, scores a draft (multipart
// upload of the photo), shows every predicted count and the feed preview (the draft top-left of the profile
// grid), and compares drafts A and B by the chosen goal (JSON with base64 photos). Plain DOM, no build step;
// all text is set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_CAPTION = 2200;
// The count targets the model predicts ({name, label, goal, description}), from /v1/targets.
let TARGETS = [{ name: "likes", label: "likes", goal: "engagement", description: "likes on the post" },
               { name: "comments", label: "comments", goal: "engagement", description: "comments on the post" }];
const goalName = () => $("goal").value || "likes";
const targetLabel = (name) => (TARGETS.find((t) => t.name === name) || { label: name }).label;

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

function metricBox(name, label, range, isGoal) {
  const box = el("div", isGoal ? "metric goal" : "metric");
  box.dataset.target = name;
  box.appendChild(el("span", "label", name === "likes" ? "Expected likes" : label.charAt(0).toUpperCase() + label.slice(1)));
  box.appendChild(el("span", `big ${name}-expected`, range ? fmt(range.expected) : "–"));
  if (range) box.appendChild(el("span", "range", `likely ${fmt(range.low)} – ${fmt(range.high)}`));
  if (isGoal) box.appendChild(el("span", "goal-tag", "your goal"));
  return box;
}

// The draft in the top-left cell of a 3x3 block of the profile grid, the account's last eight photos after
// it, and the feed-consistency figure beside it.
// The account's last photos from the model (GET /v1/feed), fetched once per account.
const feedCache = new Map();
async function feedPhotos(account) {
  if (!feedCache.has(account)) {
    const body = await call(`/v1/feed?account=${encodeURIComponent(account)}`, { headers: headers() });
    feedCache.set(account, body.photos);
  }
  return feedCache.get(account);
}

function renderFeed(letter, feed, photos) {
  const wrap = el("div", "feed");
  const grid = el("div", "grid");
  const draftCell = el("div", "cell draft");
  const preview = $(`preview-${letter}`);
  if (preview && !preview.hidden && preview.src) {
    const img = el("img");
    img.src = preview.src;
    img.alt = "your draft";
    draftCell.appendChild(img);
    draftCell.appendChild(el("span", "tag", "draft"));
  } else {
    draftCell.appendChild(el("span", null, "your draft (no photo)"));
  }
  grid.appendChild(draftCell);
  for (let i = 0; i < 8; i += 1) {
    const cell = el("div", photos[i] ? "cell photo" : "cell empty");
    if (photos[i]) {
      const img = el("img");
      img.src = photos[i];  // a data: URL from the API
      img.alt = `recent post ${i + 1}`;
      cell.appendChild(img);
    } else {
      cell.appendChild(el("span", null, ""));
    }
    grid.appendChild(cell);
  }
  wrap.appendChild(grid);

  const side = el("div", "consistency");
  side.appendChild(el("span", "label muted", "Feed consistency"));
  const value = feed ? feed.consistency : null;
  side.appendChild(el("span", "big feed-consistency", value === null || value === undefined ? "–" : value.toFixed(2)));
  if (value !== null && value !== undefined) {
    const scale = el("div", "scale");
    const off = feed.off_style_below !== null && value < feed.off_style_below;
    const fill = el("div", off ? "fill off" : "fill");
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, value)) * 100)}%`;
    scale.appendChild(fill);
    if (feed.usual !== null) {
      const mark = el("div", "mark");
      mark.style.left = `${Math.round(Math.max(0, Math.min(1, feed.usual)) * 100)}%`;
      mark.title = "usual";
      scale.appendChild(mark);
    }
    side.appendChild(scale);
    const parts = [];
    if (feed.usual !== null) parts.push(`usual ${feed.usual.toFixed(2)}`);
    if (feed.off_style_below !== null) parts.push(`off-style below ${feed.off_style_below.toFixed(2)}`);
    side.appendChild(el("p", "small muted", parts.join(" · ")));
    side.appendChild(el("p", "small", off ? "This photo breaks with the look of your feed."
      : "The photo sits well with your recent posts."));
  } else {
    side.appendChild(el("p", "small muted", photos.length ? "Add a photo to see how it fits your feed."
      : "No earlier photos of this account are known."));
  }
  side.appendChild(el("p", "small muted", `${photos.length} recent photo${photos.length === 1 ? "" : "s"} from ${
    feed && feed.source === "history" ? "the history you sent" : "the model"}`));
  wrap.appendChild(side);
  return wrap;
}

function renderScore(target, score, letter, photos) {
  target.replaceChildren();
  const goal = goalName();
  const head = el("div", "numbers");
  TARGETS.forEach((t) => {
    if (score[t.name] !== undefined) head.appendChild(metricBox(t.name, t.label, score[t.name], t.name === goal));
  });

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

  target.appendChild(el("h3", null, "Feed preview"));
  target.appendChild(renderFeed(letter, score.feed, photos || []));

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
  target.appendChild(el("p", "muted small", score.score_id
    ? `model ${score.model_version} · score id ${score.score_id} (record its outcome below once published)`
    : `model ${score.model_version}`));
  if (score.score_id) $("outcome-score").value = score.score_id;
}

async function recordOutcome() {
  const target = $("outcome-result");
  try {
    const post = $("outcome-post").value.trim();
    const when = $("outcome-when").value;
    const body = { score_id: $("outcome-score").value.trim() || null, age_hours: Number($("outcome-age").value),
                   posted_at: when ? new Date(when).toISOString() : null };
    if (/^https?:/.test(post)) body.permalink = post; else body.post_id = post || null;
    ["likes", "comments"].forEach((name) => {
      const value = $(`outcome-${name}`).value;
      if (value !== "") body[name] = Number(value);
    });
    const done = await call("/v1/outcomes", { method: "POST", body: JSON.stringify(body),
                                              headers: headers({ "Content-Type": "application/json" }) });
    target.replaceChildren(el("p", "muted", `Recorded post ${done.post_id} at ${done.age_hours} h.`));
  } catch (error) {
    showError(target, error);
  }
}

async function showAccuracy() {
  const target = $("accuracy-result");
  try {
    const account = $("account").value.trim();
    const query = account ? `?account=${encodeURIComponent(account)}` : "";
    const result = await call(`/v1/accuracy${query}`, { headers: headers() });
    target.replaceChildren(el("p", "muted", `${result.published} of ${result.scored} scored drafts of ` +
      `${result.account || "every account"} have a recorded outcome` +
      (result.age_hours ? ` at ${result.age_hours} h.` : " (each at its latest age).")));
    if (!result.targets.length) return;
    const table = el("table", "accuracy-table");
    const head = el("tr");
    ["Count", "Posts", "engage MAE", "Trailing-average MAE", "Inside the range", "Better draft ranked first"]
      .forEach((h) => head.appendChild(el("th", null, h)));
    table.appendChild(head);
    const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
    result.targets.forEach((t) => {
      const row = el("tr");
      [targetLabel(t.target), String(t.posts), fmt(t.mae), fmt(t.baseline_mae), pct(t.coverage),
       t.ranked_pairs ? `${pct(t.ranked_right)} of ${t.ranked_pairs} pairs` : "–"]
        .forEach((v) => row.appendChild(el("td", null, v)));
      table.appendChild(row);
    });
    target.appendChild(table);
    const response = await fetch(`/v1/accuracy/plot${query}`, { headers: headers() });
    if (response.ok) {
      const img = el("img", "accuracy-plot");
      img.alt = "predicted against actual counts of the account's published drafts";
      img.src = URL.createObjectURL(await response.blob());
      target.appendChild(img);
    }
  } catch (error) {
    showError(target, error);
  }
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
    const score = await call("/v1/score", { method: "POST", body: form, headers: headers() });
    renderScore(target, score, letter, await feedPhotos(account));
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
      body: JSON.stringify({ account, drafts, goal: goalName(), best_hour: $("best-hour").checked }),
    });
    renderCompare(target, result);
    // Show each draft's full score in its own card, side by side.
    const photos = await feedPhotos(account);
    result.drafts.forEach((entry) => renderScore($(`result-${"ab"[entry.index]}`), entry.score, "ab"[entry.index], photos));
  } catch (error) {
    showError(target, error);
  } finally {
    button.disabled = false;
  }
}

function renderCompare(target, result) {
  target.replaceChildren();
  const [top, second] = result.drafts;
  const goal = result.goal || "likes";
  const label = targetLabel(goal);
  const name = (entry) => `Draft ${"AB"[entry.index]}`;
  const gap = Math.abs(second.vs_best);
  const verdict = gap < 0.5
    ? `Both drafts are expected to get about the same ${label}.`
    : `${name(top)} is expected to get about ${gap >= 10 ? Math.round(gap) : gap.toFixed(1)} more ${label} than ${name(second)}.`;
  target.appendChild(el("p", "verdict", verdict));
  const table = el("table", "ranking");
  const head = el("tr");
  ["Rank", "Draft", `Expected ${label}`, "vs Draft A", "Risk"].forEach((h) => head.appendChild(el("th", null, h)));
  table.appendChild(head);
  result.drafts.forEach((entry) => {
    const row = el("tr");
    const risk = entry.score.authenticity_risk;
    [String(entry.rank), name(entry), fmt(entry.score[goal].expected),
     entry.index === 0 ? "–" : `${entry.vs_first >= 0 ? "+" : "−"}${fmt(Math.abs(entry.vs_first))}`,
     risk === null ? "–" : `${Math.round(risk * 100)}%`].forEach((v) => row.appendChild(el("td", null, v)));
    table.appendChild(row);
  });
  target.appendChild(table);
  if (result.best_hour) {
    const when = new Date(result.best_hour.posted_at);
    target.appendChild(el("p", "best-hour",
      `Best time to post ${name(top)} for ${label}: ${when.toLocaleString([], { weekday: "long", hour: "2-digit", minute: "2-digit" })}` +
      ` (about ${fmt(result.best_hour.expected)} ${label}).`));
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
    await loadTargets();
    await loadAccounts();
  } catch (error) {
    status.textContent = "The server cannot be reached.";
  }
}

async function loadTargets() {
  try {
    const { targets, default_goal: goal } = await call("/v1/targets", { headers: headers() });
    if (targets.length) TARGETS = targets;
    const select = $("goal");
    const chosen = select.value;
    select.replaceChildren(...TARGETS.map((t) => {
      const o = el("option", null, `${t.label} (${t.goal})`);
      o.value = t.name;
      o.title = t.description;
      return o;
    }));
    select.value = TARGETS.some((t) => t.name === chosen) && chosen !== "likes" ? chosen : goal;
  } catch (error) {
    $("model-status").textContent += ` · goals unavailable (${(error.lines || [error.message]).join("; ")})`;
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
  key.addEventListener("change", () => { sessionStorage.setItem("engage-key", key.value.trim()); loadTargets(); loadAccounts(); });
  wireDraft("a");
  wireDraft("b");
  $("compare").addEventListener("click", compareDrafts);
  $("outcome-send").addEventListener("click", recordOutcome);
  $("accuracy-show").addEventListener("click", showAccuracy);
  loadStatus();
});
