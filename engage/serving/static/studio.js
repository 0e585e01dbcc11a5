// The draft studio: fills the account list and the goals the model predicts, scores a draft (multipart
// upload of the photo), shows every predicted count and the feed preview (the draft top-left of the profile
// grid), and compares drafts A and B by the chosen goal (JSON with base64 photos). Plain DOM, no build step;
// all text is set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_CAPTION = 2200;
const FULL_EFFECT = 50;  // percent change in likes that fills a factor's bar
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

// Numbers for people: thousands separators, one decimal under 100, and from 10,000 a compact form (8.1M,
// 134K) whose full figure is the element's tooltip (`number`), so that no card ever clips a number.
const COMPACT = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
function full(x) {
  if (x === null || x === undefined) return "–";
  return x >= 100 ? Math.round(x).toLocaleString("en") : x.toFixed(1);
}
function fmt(x) {
  if (x === null || x === undefined) return "–";
  return x >= 10000 ? COMPACT.format(x) : full(x);
}
function number(tag, className, x, prefix) {
  const node = el(tag, className, `${prefix || ""}${fmt(x)}`);
  if (x !== null && x !== undefined) node.title = `${prefix || ""}${full(x)}`;
  return node;
}
// Caption length as the server counts it: Unicode code points (an emoji is one, not two UTF-16 units).
const chars = (text) => [...text].length;

// The recent posts of an account the model does not know, typed into the history panel: sent as `history`
// with every score and comparison while the panel holds any. Photos are scaled down in the browser (a
// history photo only needs what the embedder sees) so that a dozen of them stay far under the body limit.
const HISTORY_PHOTO_SIDE = 640;
let historyRows = 0;

function addHistoryRow() {
  historyRows += 1;
  const n = historyRows;
  const row = el("div", "history-post");
  row.dataset.row = String(n);
  const field = (labelText, input) => { const l = el("label", null, labelText); l.appendChild(input); return l; };
  const photoInput = el("input"); photoInput.type = "file"; photoInput.accept = "image/jpeg,image/png,image/webp";
  photoInput.className = "h-photo";
  const caption = el("textarea"); caption.rows = 2; caption.className = "h-caption"; caption.placeholder = "its caption";
  const when = el("input"); when.type = "datetime-local"; when.className = "h-when";
  const likes = el("input"); likes.type = "number"; likes.min = "0"; likes.step = "1"; likes.className = "h-likes";
  const comments = el("input"); comments.type = "number"; comments.min = "0"; comments.step = "1";
  comments.className = "h-comments"; comments.placeholder = "optional";
  const remove = el("button", "secondary h-remove", "Remove"); remove.type = "button";
  remove.addEventListener("click", () => { row.remove(); updateHistoryCount(); });
  [field("Photo", photoInput), field("Caption", caption), field("Posted at", when), field("Likes", likes),
   field("Comments", comments)].forEach((f) => row.appendChild(f));
  row.appendChild(remove);
  $("history-posts").appendChild(row);
  updateHistoryCount();
  return row;
}

function updateHistoryCount() {
  const n = document.querySelectorAll("#history-posts .history-post").length;
  $("history-count").textContent = n ? `${n} post${n === 1 ? "" : "s"}, sent with every score` : "none";
}

function scaledPhoto(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => {
      const ratio = Math.min(1, HISTORY_PHOTO_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(img.naturalWidth * ratio));
      canvas.height = Math.max(1, Math.round(img.naturalHeight * ratio));
      canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      resolve(canvas.toDataURL("image/jpeg", 0.85));
    };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error(`${file.name} is not a photo this browser can read`)); };
    img.src = url;
  });
}

// The history panel's posts as the API's `history` (null when empty); a missing date or like count is an
// error naming the post, before anything is sent.
async function historyPosts() {
  const rows = [...document.querySelectorAll("#history-posts .history-post")];
  if (!rows.length) return null;
  const posts = [];
  const problems = [];
  for (const [i, row] of rows.entries()) {
    const when = row.querySelector(".h-when").value;
    const likes = row.querySelector(".h-likes").value.trim();
    const comments = row.querySelector(".h-comments").value.trim();
    if (!when) problems.push(`recent post ${i + 1}: give the date it was posted`);
    if (likes === "") problems.push(`recent post ${i + 1}: give its like count`);
    if (problems.length) continue;
    const post = { caption: row.querySelector(".h-caption").value, posted_at: new Date(when).toISOString(),
                   likes: Number(likes) };
    if (comments !== "") post.comments = Number(comments);
    const file = row.querySelector(".h-photo").files[0];
    if (file) post.image = await scaledPhoto(file);
    posts.push(post);
  }
  if (problems.length) throw Object.assign(new Error(problems.join("\n")), { lines: problems });
  return posts;
}

// The history's photos, newest first, for the feed preview of a draft scored with them.
function historyPhotos(history) {
  return (history || []).filter((p) => p.image).sort((a, b) => (a.posted_at < b.posted_at ? 1 : -1)).map((p) => p.image);
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
  box.appendChild(number("span", `big ${name}-expected`, range ? range.expected : null));
  if (range) {
    const likely = el("span", "range", `likely ${fmt(range.low)} – ${fmt(range.high)}`);
    likely.title = `likely ${full(range.low)} – ${full(range.high)}`;
    box.appendChild(likely);
  }
  // The account's usual now and what this draft adds to it: "your usual now: 240; this draft: +12%".
  if (range && range.usual !== null && range.usual !== undefined) {
    const up = range.uplift_percent;
    const sign = up > 0 ? "+" : up < 0 ? "−" : "±";
    const usual = el("span", `usual ${name}-usual`, `your usual now: ${fmt(range.usual)}; this draft: ${sign}${
      Math.abs(up) >= 10 ? Math.round(Math.abs(up)) : Math.abs(up).toFixed(1)}%`);
    usual.title = `your usual now: ${full(range.usual)}`;
    box.appendChild(usual);
  }
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
  // How far the draft's +/- can be trusted: the model's measured skill at ordering two drafts of one account.
  if (score.draft_skill) {
    target.appendChild(el("p", score.draft_skill.tells_drafts_apart ? "skill small" : "skill small warn",
                          score.draft_skill.message));
  }

  target.appendChild(el("h3", null, "Feed preview"));
  target.appendChild(renderFeed(letter, score.feed, photos || []));

  target.appendChild(el("h3", null, "Tips"));
  const tips = el("ul", "tips");
  if (score.flags.length === 0) tips.appendChild(el("li", "none", "No warnings for this draft."));
  score.flags.forEach((flag) => {
    const item = el("li", `tip ${flag.code}`);
    item.dataset.code = flag.code;
    item.textContent = flag.message;
    if (flag.code === "unknown_account") {  // the tip asks for the account's recent posts: say where they go
      const open = el("button", "secondary add-history", "Add its recent posts");
      open.type = "button";
      open.addEventListener("click", () => {
        $("history-box").open = true;
        if (!document.querySelector("#history-posts .history-post")) addHistoryRow();
        $("history-box").scrollIntoView({ behavior: "smooth" });
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(open);
    }
    tips.appendChild(item);
  });
  target.appendChild(tips);

  target.appendChild(el("h3", null, "What moves the prediction"));
  const factors = el("ul", "factors");
  // Each factor as the change in expected likes it makes (contributions are in log(1 + likes)), drawn to one
  // scale: a full bar is FULL_EFFECT percent (or the largest effect, when that is larger), so a 1% effect is a sliver.
  const effect = (f) => (Math.exp(f.contribution) - 1) * 100;
  const scale = Math.max(FULL_EFFECT, ...score.factors.map((f) => Math.abs(effect(f))));
  score.factors.forEach((factor) => {
    const change = effect(factor);
    const item = el("li", factor.contribution >= 0 ? "up" : "down");
    item.appendChild(el("span", "name", `${factor.feature}${factor.part === "usual" ? " (your usual)" : " (this draft)"}`));
    const track = el("span", "track");
    const bar = el("span", "bar");
    bar.style.width = `${Math.max(0.5, (Math.abs(change) / scale) * 100).toFixed(1)}%`;
    track.appendChild(bar);
    item.appendChild(track);
    const size = Math.abs(change) >= 10 ? Math.round(Math.abs(change)) : Math.abs(change).toFixed(1);
    item.appendChild(el("span", "sign", `${change >= 0 ? "+" : "−"}${size}% likes`));
    item.title = `${factor.contribution >= 0 ? "raises" : "lowers"} expected likes by ${size}%`;
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
      row.dataset.target = t.target;
      row.appendChild(el("td", null, targetLabel(t.target)));
      row.appendChild(el("td", null, String(t.posts)));
      row.appendChild(number("td", "mae", t.mae));
      row.appendChild(number("td", "baseline-mae", t.baseline_mae));
      [pct(t.coverage), t.ranked_pairs ? `${pct(t.ranked_right)} of ${t.ranked_pairs} pairs` : "–"]
        .forEach((v) => row.appendChild(el("td", null, v)));
      table.appendChild(row);
    });
    target.appendChild(table);
    // Each published draft, predicted against actual (what the plot draws), so a post can be found by its id.
    const posts = el("table", "accuracy-points");
    const top = el("tr");
    ["Post", "Count", "Predicted", "Likely range", "Actual", "Trailing average"]
      .forEach((h) => top.appendChild(el("th", null, h)));
    posts.appendChild(top);
    result.points.forEach((p) => {
      const row = el("tr");
      row.dataset.scoreId = p.score_id;
      row.dataset.target = p.target;
      row.appendChild(el("td", "post", `${p.post_id} (${p.age_hours} h)`));
      row.appendChild(el("td", null, targetLabel(p.target)));
      row.appendChild(number("td", "predicted", p.expected));
      row.appendChild(el("td", null, p.low === null ? "–" : `${fmt(p.low)} – ${fmt(p.high)}`));
      row.appendChild(number("td", "actual", p.actual));
      row.appendChild(number("td", "trailing", p.trailing));
      posts.appendChild(row);
    });
    target.appendChild(posts);
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
    const history = await historyPosts();
    if (history) form.append("history", JSON.stringify(history));
    target.replaceChildren(el("p", "muted", "Scoring…"));
    const score = await call("/v1/score", { method: "POST", body: form, headers: headers() });
    renderScore(target, score, letter, history ? historyPhotos(history) : await feedPhotos(account));
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
    const history = await historyPosts();
    target.replaceChildren(el("p", "muted", "Comparing…"));
    const request = { account, drafts, goal: goalName(), best_hour: $("best-hour").checked };
    if (history) request.history = history;
    const result = await call("/v1/compare", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(request),
    });
    renderCompare(target, result);
    // Show each draft's full score in its own card, side by side.
    const photos = history ? historyPhotos(history) : await feedPhotos(account);
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
    : `${name(top)} is expected to get about ${full(gap)} more ${label} than ${name(second)}.`;
  target.appendChild(el("p", "verdict", verdict));
  const table = el("table", "ranking");
  const head = el("tr");
  ["Rank", "Draft", `Expected ${label}`, "vs Draft A", "Risk"].forEach((h) => head.appendChild(el("th", null, h)));
  table.appendChild(head);
  result.drafts.forEach((entry) => {
    const row = el("tr");
    const risk = entry.score.authenticity_risk;
    [String(entry.rank), name(entry), full(entry.score[goal].expected),
     entry.index === 0 ? "–" : `${entry.vs_first >= 0 ? "+" : "−"}${full(Math.abs(entry.vs_first))}`,
     risk === null ? "–" : `${Math.round(risk * 100)}%`].forEach((v) => row.appendChild(el("td", null, v)));
    table.appendChild(row);
  });
  target.appendChild(table);
  if (result.best_hour) {
    const line = el("p", "best-hour",
      `Best time to post ${name(top)} for ${label}: ${bestHourText(result.best_hour)} (about ${full(result.best_hour.expected)} ${label}).`);
    target.appendChild(line);
  }
}

// The best hour with its date and time zone: in the answer's `time_zone` when it has one, else in UTC (what
// the API answers in); the visitor's own clock follows in brackets when it differs.
function bestHourText(best) {
  const when = new Date(best.posted_at);
  const zone = best.time_zone || "UTC";
  const options = { weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit",
                    hourCycle: "h23", timeZoneName: "short" };
  let text;
  try {
    text = when.toLocaleString("en-GB", Object.assign({ timeZone: zone }, options));
  } catch (_) {  // a zone this browser does not know: say UTC
    text = when.toLocaleString("en-GB", Object.assign({ timeZone: "UTC" }, options));
  }
  const clock = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
  const local = when.toLocaleString("en-GB", clock);
  let there = local;
  try { there = when.toLocaleString("en-GB", Object.assign({ timeZone: zone }, clock)); } catch (_) { there = ""; }
  return local === there ? text : `${text} (${local} your time)`;
}

function wireDraft(letter) {
  const caption = $(`caption-${letter}`);
  const counter = $(`count-${letter}`);
  caption.addEventListener("input", () => {
    const n = chars(caption.value);
    counter.textContent = `${n.toLocaleString("en")} / ${MAX_CAPTION.toLocaleString("en")}`;
    counter.classList.toggle("over", n > MAX_CAPTION);
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
  $("history-add").addEventListener("click", () => addHistoryRow());
  updateHistoryCount();
  const offset = -new Date().getTimezoneOffset() / 60;
  const zone = `your time, UTC${offset >= 0 ? "+" : "−"}${Math.abs(offset)}`;
  document.querySelectorAll(".zone").forEach((node) => { node.textContent = `(${zone})`; });
  $("compare").addEventListener("click", compareDrafts);
  $("outcome-send").addEventListener("click", recordOutcome);
  $("accuracy-show").addEventListener("click", showAccuracy);
  loadStatus();
});
