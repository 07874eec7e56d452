// The demo billing page: plain ES2020, no build step, no dependencies.
//
// It is also the reference a frontend team copies from. The parts worth copying:
//   - callApi():           how to call the billing API with the caller's JWT as a bearer token,
//   - ApiError / showError / handleActionError():  how to branch on `error.code` (never on the message),
//   - stripeReturn() / syncStatus(): when Checkout or the portal sends the user back, ask the backend
//     to read Stripe (POST /billing/sync) before showing the plan: the webhook may not have arrived yet,
//   - showReturnBanner() / pollUntilActive(): the banner, and waiting for a payment Stripe still confirms,
//   - previewChange() / confirmChange(): show what a plan change costs before applying it,
//   - loadInvoices():      paging with the opaque `nextCursor`.
// Everything that comes from /dev/*.json (the callers' tokens, the plan catalog file) is the local
// gateway's convenience: a real frontend gets its token from its identity provider.

const ENDED_STATUSES = new Set(["canceled", "incomplete_expired"]); // a new subscription is needed
const PAID_STATUSES = new Set(["active", "trialing"]);
const LIVE_HINT = "Change your plan under Change plan, or in Manage subscription";
const CALLER_KEY = "billing-demo.caller"; // localStorage: the label of the chosen caller

const state = {
  apiBase: "", // "" means same origin
  tokens: [], // [{label, orgId, role, token}]
  token: null, // the selected caller's JWT
  catalog: null, // /dev/plans.json
  status: null, // the last GET /billing/status answer, null while unknown
  statusSeq: 0, // only the newest status request may render (the caller can change meanwhile)
  busy: false, // a checkout, portal or subscription request is in flight (or the browser is leaving for Stripe)
  previewKey: null, // "plan:siteQuantity" of the last successful preview: only that change may be confirmed
  invoiceCursor: null, // nextCursor of the last invoice page, null when there are no more
  invoiceSeq: 0, // like statusSeq, for the invoice list
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Calling the API
// ---------------------------------------------------------------------------------------------

/** A failed call. `code` is stable and meant for code; `message` is meant for people. */
class ApiError extends Error {
  constructor(status, code, message, field = undefined) {
    super(message);
    this.status = status; // HTTP status, 0 when the server was not reached
    this.code = code;
    this.field = field; // the request field at fault, when there is one
  }
}

/**
 * Call the billing API as the selected caller and resolve with the JSON answer.
 *
 * The caller's JWT goes in `Authorization: Bearer <token>`. The organization and the role come
 * from that token only (never send an org id): API Gateway's authorizer verifies it, and the
 * backend decides who may do what, so the page never hides an action by role.
 * Anything but a 2xx rejects with an ApiError.
 */
async function callApi(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(state.apiBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "The billing API could not be reached");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  // The API's own errors always look like {"error": {"code", "message", "field"?}}.
  const error = data?.error;
  if (error?.code) throw new ApiError(response.status, error.code, error.message, error.field);
  // API Gateway's JWT authorizer answers 401 {"message": "Unauthorized"} before our code runs.
  if (response.status === 401) throw new ApiError(401, "unauthorized", data?.message || "Unauthorized");
  throw new ApiError(response.status, `http_${response.status}`, data?.message || `Request failed (HTTP ${response.status})`);
}

/** The local gateway's helper files (no token needed). */
async function loadDevJson(path) {
  const response = await fetch(path).catch(() => null);
  if (!response?.ok) throw new ApiError(response?.status ?? 0, "dev_config_unavailable", `Could not load ${path}`);
  return response.json();
}

// ---------------------------------------------------------------------------------------------
// Errors: shown as "<message> (<code>)" in the #error alert
// ---------------------------------------------------------------------------------------------

function showError(err) {
  if (!(err instanceof ApiError)) {
    console.error(err);
    err = new ApiError(0, "unexpected_error", String(err?.message ?? err));
  }
  $("error").textContent = `${err.message} (${err.code})`;
}

function clearError() {
  $("error").textContent = "";
}

/** Show a checkout/portal error, then react to what its code means. */
function handleActionError(err, quantityInput = null) {
  showError(err);
  switch (err.code) {
    case "invalid_site_quantity":
    case "site_addon_unavailable":
      quantityInput?.focus(); // the user can fix the number right away
      break;
    case "subscription_exists": // a subscription started elsewhere: our view is stale
    case "no_subscription": // it ended elsewhere
    case "no_billing_account":
      refreshStatus();
      break;
    case "unauthorized": // token expired or not for an organization: pick another caller
      $("token-select").focus();
      break;
    // "no_change" (that is already the plan), "forbidden" (not a billing admin),
    // "stripe_unavailable" and "temporarily_unavailable"
    // (retry later), "billing_not_configured" / "billing_misconfigured" (an operator must act):
    // the message says it all.
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/**
 * Amounts are in the currency's minor unit (cents). Catalog prices drop ".00" (7900 -> "$79",
 * 1950 -> "$19.50"); charges and invoices keep every digit (`exact`: 23500 -> "$235.00").
 */
function money(minorUnits, currency = state.catalog.currency, exact = false) {
  const code = currency.toUpperCase();
  const digits = new Intl.NumberFormat("en-US", { style: "currency", currency: code }).resolvedOptions().maximumFractionDigits;
  const amount = minorUnits / 10 ** digits;
  return new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: code,
    minimumFractionDigits: exact || !Number.isInteger(amount) ? digits : 0,
  }).format(amount);
}

function formatDate(iso) {
  return new Date(iso).toLocaleDateString("en-US", { dateStyle: "long", timeZone: "UTC" });
}

/** document.createElement with attributes ("class", "text" are shortcuts) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function featureItems(features) {
  return features.map((feature) => el("li", { "data-feature": feature, text: feature }));
}

function limitItems(limits, suffixes = {}) {
  return Object.entries(limits).map(([name, value]) =>
    el("div", {}, el("dt", { text: name }), el("dd", { "data-limit": name, text: `${value}${suffixes[name] ?? ""}` })),
  );
}

// ---------------------------------------------------------------------------------------------
// Subscription rules the page needs (the backend enforces them; the page only explains them)
// ---------------------------------------------------------------------------------------------

/** A subscription that has not ended: checkout answers 409 subscription_exists, use the portal. */
const isLive = (sub) => Boolean(sub) && !ENDED_STATUSES.has(sub.status);
const isPaid = (sub) => Boolean(sub) && PAID_STATUSES.has(sub.status);

/**
 * The plan whose entitlements the organization has. The status answer carries the entitlement's
 * features and limits but no plan key: it is the subscription's plan while its entitlement is that
 * plan's (active, trialing, past_due unless the operator chose otherwise), else the fallback plan.
 */
function entitledPlan(status) {
  const { plans, fallbackPlan } = state.catalog;
  const sub = status.subscription;
  const plan = sub && plans[sub.plan];
  const granted = plan && (isPaid(sub) || sub.status === "past_due");
  const sameFeatures = (a, b) => a.length === b.length && a.every((f) => b.includes(f));
  if (granted && sameFeatures(status.entitlement.features, plan.features)) return { key: sub.plan, fallback: false };
  return { key: fallbackPlan, fallback: true };
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

function renderStatus() {
  const status = state.status;
  const planEl = $("status-plan");
  $("not-configured").hidden = !status || status.configured;
  if (!status) {
    planEl.textContent = $("status-state").textContent = $("limit-sites").textContent = "—";
    planEl.dataset.plan = "";
    $("period").textContent = "";
    $("features").replaceChildren();
    $("limits").replaceChildren();
    updateActions();
    return;
  }
  const sub = status.subscription;
  const current = entitledPlan(status);
  const name = state.catalog.plans[current.key]?.name ?? current.key;
  planEl.textContent = current.fallback ? `${name} (free fallback)` : name;
  planEl.dataset.plan = current.key;
  $("status-state").textContent = sub ? sub.status : "none"; // Stripe's own status string
  $("limit-sites").textContent = status.entitlement.limits.sites ?? "—";

  let period = "";
  if (sub?.currentPeriodEnd && !ENDED_STATUSES.has(sub.status)) {
    period = `${sub.cancelAtPeriodEnd ? "Cancels on" : "Renews on"} ${formatDate(sub.currentPeriodEnd)}`;
  }
  $("period").textContent = period;
  $("features").replaceChildren(...featureItems(status.entitlement.features));
  $("limits").replaceChildren(...limitItems(status.entitlement.limits));
  if (isLive(sub)) fillChangeForm(sub);
  updateActions();
}

/** Show/hide and enable/disable the buttons and mark the current plan, from the last status. */
function updateActions() {
  const status = state.status;
  const sub = status?.subscription;
  const live = isLive(sub);
  const currentKey = $("status-plan").dataset.plan;
  for (const card of document.querySelectorAll("#plans .plan")) {
    card.classList.toggle("current", card.dataset.plan === currentKey);
    card.querySelector(".choose-plan").disabled = state.busy || live;
    card.querySelector(".choose-hint").hidden = !live;
  }
  $("manage-subscription").disabled = state.busy || !status?.hasStripeCustomer;

  // Cancel while it runs, resume while a cancellation is pending. Shown to every role, like the
  // rest of the page: the backend decides who may do it.
  $("cancel-at-period-end").hidden = $("cancel-now").hidden = !live || sub.cancelAtPeriodEnd;
  $("resume").hidden = !live || !sub.cancelAtPeriodEnd;
  $("change-plan").hidden = !live;
  for (const id of ["cancel-at-period-end", "cancel-now", "resume", "preview-change"]) $(id).disabled = state.busy;
  $("confirm-change").disabled = state.busy || state.previewKey !== changeKey(wantedChange());
}

/** Pre-fill the change form with the subscription's plan and site quantity. */
function fillChangeForm(sub) {
  $("change-plan-select").value = sub.plan;
  $("change-sites").value = String(sub.siteQuantity);
  syncSitesInput();
  clearPreview();
}

/** Plans without a per-site add-on take no sites: 0, disabled. */
function syncSitesInput() {
  const input = $("change-sites");
  const hasSites = Boolean(state.catalog.plans[$("change-plan-select").value]?.sitePrice);
  input.disabled = !hasSites;
  if (!hasSites) input.value = "0";
}

/** The change the form describes, and its key (what a preview was for). */
function wantedChange() {
  return { plan: $("change-plan-select").value, siteQuantity: siteQuantity($("change-sites")) };
}
const changeKey = (change) => `${change.plan}:${change.siteQuantity}`;

function clearPreview() {
  state.previewKey = null; // any edit needs a new preview before it can be confirmed
  $("preview-result").textContent = "";
}

function renderInvoices(invoices, append) {
  const rows = $("invoice-rows");
  if (append) rows.append(...invoices.map(invoiceRow));
  else rows.replaceChildren(...invoices.map(invoiceRow));
  const empty = rows.children.length === 0;
  $("invoices-empty").hidden = !empty;
  document.querySelector("#invoices table").hidden = empty;
  $("invoices-more").hidden = !state.invoiceCursor;
}

function invoiceRow(invoice) {
  const link = (href, text) => (href ? el("a", { href, target: "_blank", rel: "noopener", text }) : "");
  const day = (iso) => (iso ? formatDate(iso) : "—");
  const { periodStart: start, periodEnd: end } = invoice;
  const period = start === end ? day(start) : `${day(start)} – ${day(end)}`;
  return el("tr", { class: "invoice", "data-invoice": invoice.id },
    el("td", { text: invoice.number ?? invoice.id }),
    el("td", { text: period }),
    el("td", {}, el("span", { class: "invoice-status", "data-status": invoice.status ?? "", text: invoice.status ?? "—" })),
    el("td", { class: "amount", text: money(invoice.amountDue, invoice.currency, true) }),
    el("td", { class: "amount", text: money(invoice.amountPaid, invoice.currency, true) }),
    el("td", { class: "links" }, link(invoice.hostedInvoiceUrl, "View"), " ", link(invoice.invoicePdf, "PDF")),
  );
}

function renderPlans() {
  const { plans, maxSiteQuantity } = state.catalog;
  $("plans").replaceChildren(...Object.entries(plans).map(([key, plan]) => planCard(key, plan)));
  $("change-plan-select").replaceChildren(...Object.entries(plans).map(([key, plan]) => new Option(plan.name, key)));
  $("change-sites").max = String(maxSiteQuantity);
}

function planCard(key, plan) {
  const card = el("article", { class: "plan", "data-plan": key, "aria-labelledby": `plan-${key}-name` });
  card.append(
    el("div", { class: "plan-head" },
      el("h3", { id: `plan-${key}-name`, text: plan.name }),
      el("span", { class: "current-badge", text: "Current plan" })),
    el("p", { class: "plan-price", text: `${money(plan.basePrice.unitAmount)} / month` }),
  );
  const siteLimit = plan.sitePrice?.limit;
  if (plan.sitePrice) {
    card.append(el("p", { class: "site-price", text: `+ ${money(plan.sitePrice.unitAmount)} / month per extra site` }));
  }
  card.append(
    el("ul", { class: "tags" }, ...featureItems(plan.features)),
    el("dl", { class: "limits" }, ...limitItems(plan.limits, siteLimit ? { [siteLimit]: " + extra sites" } : {})),
  );

  let quantity = null;
  if (plan.sitePrice) {
    const max = state.catalog.maxSiteQuantity;
    quantity = el("input", {
      type: "number", class: "site-quantity", id: `sites-${key}`,
      min: "0", max: String(max), step: "1", value: "0", inputmode: "numeric",
    });
    const total = el("p", { class: "plan-total", "aria-live": "polite" });
    const updateTotal = () => {
      const n = siteQuantity(quantity);
      const valid = Number.isInteger(n) && n >= 0 && n <= max;
      quantity.setAttribute("aria-invalid", String(!valid));
      total.textContent = valid
        ? `Total: ${money(plan.basePrice.unitAmount + n * plan.sitePrice.unitAmount)} / month`
        : `Enter 0 to ${max} extra sites`;
    };
    quantity.addEventListener("input", updateTotal);
    updateTotal();
    card.append(el("div", { class: "field" }, el("label", { for: quantity.id, text: "Extra sites" }), quantity), total);
  }

  const hint = el("p", { class: "choose-hint", id: `plan-${key}-hint`, text: LIVE_HINT });
  hint.hidden = true;
  const button = el("button", { type: "button", class: "choose-plan", "aria-describedby": hint.id, text: `Choose ${plan.name}` });
  button.addEventListener("click", () => startCheckout(key, quantity, button));
  card.append(button, hint);
  return card;
}

/** An empty field is 0; anything else is sent as typed so the API can say what is wrong. */
function siteQuantity(input) {
  return input.value.trim() === "" ? 0 : Number(input.value);
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/**
 * POST /billing/sync (no body, any member): the backend reads the organization's subscriptions from
 * Stripe, stores them, and answers with the same body as GET /billing/status. Call it when Stripe
 * sends the user back, before showing the plan: Stripe's webhook may arrive seconds later (or be
 * retried for days), but the redirect means Stripe already knows. The backend reads Stripe at most
 * once per organization every 5 s (inside that window it answers what it stored), so calling it on
 * every return is cheap. Renders the answer and resolves with it (null on error).
 *
 * A backend without the endpoint answers 404: fall back to GET /billing/status. Any other error is
 * shown, and the stored status is still rendered.
 */
async function syncStatus() {
  const seq = ++state.statusSeq;
  $("status").setAttribute("aria-busy", "true");
  try {
    const status = await callApi("/billing/sync", { method: "POST" });
    if (seq !== state.statusSeq) return null; // a newer request (e.g. another caller) wins
    state.status = status;
    renderStatus();
    return status;
  } catch (err) {
    if (seq !== state.statusSeq) return null;
    if (err.status !== 404) showError(err);
    return refreshStatus();
  } finally {
    if (seq === state.statusSeq) $("status").removeAttribute("aria-busy");
  }
}

/** GET /billing/status; renders it and resolves with it (null on error, shown in #error). */
async function refreshStatus() {
  const seq = ++state.statusSeq;
  $("status").setAttribute("aria-busy", "true");
  try {
    const status = await callApi("/billing/status");
    if (seq !== state.statusSeq) return null; // a newer request (e.g. another caller) wins
    state.status = status;
    renderStatus();
    return status;
  } catch (err) {
    if (seq === state.statusSeq) {
      showError(err);
      renderStatus(); // the last known status, or dashes when there is none
    }
    return null;
  } finally {
    if (seq === state.statusSeq) $("status").removeAttribute("aria-busy");
  }
}

/** POST /billing/checkout or /billing/portal, then leave for Stripe's page. */
async function goToStripe(button, path, body, quantityInput = null) {
  clearError();
  state.busy = true; // no double submits
  updateActions();
  button.setAttribute("aria-busy", "true");
  try {
    const { url } = await callApi(path, { method: "POST", body });
    window.location.assign(url); // stay busy while the browser leaves
  } catch (err) {
    state.busy = false;
    updateActions();
    handleActionError(err, quantityInput);
  } finally {
    button.removeAttribute("aria-busy");
  }
}

function startCheckout(planKey, quantityInput, button) {
  const body = { plan: planKey };
  if (quantityInput) body.siteQuantity = siteQuantity(quantityInput);
  return goToStripe(button, "/billing/checkout", body, quantityInput);
}

function openPortal() {
  return goToStripe($("manage-subscription"), "/billing/portal"); // no body
}

/** The status from an action's answer replaces the shown one (and any older GET still in flight). */
function applyStatus(status) {
  state.statusSeq++;
  $("status").removeAttribute("aria-busy");
  state.status = status;
  renderStatus();
}

/** Run one subscription request: no double submits, busy marker on the button, errors shown. */
async function runAction(button, action) {
  clearError();
  state.busy = true;
  updateActions();
  button.setAttribute("aria-busy", "true");
  try {
    await action();
  } catch (err) {
    handleActionError(err, $("change-sites"));
  } finally {
    state.busy = false;
    button.removeAttribute("aria-busy");
    updateActions();
  }
}

/** GET /billing/subscription/preview: what the change costs now, and the next invoice. */
function previewChange() {
  const wanted = wantedChange();
  return runAction($("preview-change"), async () => {
    const query = new URLSearchParams({ plan: wanted.plan, siteQuantity: String(wanted.siteQuantity) });
    const preview = await callApi(`/billing/subscription/preview?${query}`);
    if (changeKey(wanted) !== changeKey(wantedChange())) return; // edited meanwhile: stale
    state.previewKey = changeKey(wanted);
    const when = preview.nextInvoiceDate ? ` on ${formatDate(preview.nextInvoiceDate)}` : "";
    $("preview-result").textContent =
      `Due now: ${money(preview.amountDueNow, preview.currency, true)} · ` +
      `Next invoice: ${money(preview.nextInvoiceTotal, preview.currency, true)}${when}`;
  });
}

/** POST /billing/subscription: applies the previewed change (prorated, invoiced now). */
function confirmChange() {
  return runAction($("confirm-change"), async () => {
    applyStatus(await callApi("/billing/subscription", { method: "POST", body: wantedChange() }));
    loadInvoices(); // the proration invoice
  });
}

/** POST /billing/subscription/cancel: at period end (can be resumed) or now (cannot). */
function cancelSubscription(immediately) {
  if (immediately && !window.confirm("Cancel the subscription now? It ends at once and cannot be resumed.")) return;
  const button = $(immediately ? "cancel-now" : "cancel-at-period-end");
  return runAction(button, async () => {
    applyStatus(await callApi("/billing/subscription/cancel", { method: "POST", body: { immediately } }));
    loadInvoices();
  });
}

function resumeSubscription() {
  return runAction($("resume"), async () => {
    applyStatus(await callApi("/billing/subscription/resume", { method: "POST", body: {} }));
  });
}

/**
 * GET /billing/invoices, newest first, 10 at a time. The first page replaces the table; "Load
 * more" passes the last answer's `nextCursor` back as `cursor` (an opaque string) and appends.
 */
async function loadInvoices(more = false) {
  const seq = ++state.invoiceSeq;
  const query = new URLSearchParams({ limit: "10" });
  if (more) query.set("cursor", state.invoiceCursor);
  try {
    const page = await callApi(`/billing/invoices?${query}`);
    if (seq !== state.invoiceSeq) return; // a newer request (e.g. another caller) wins
    state.invoiceCursor = page.nextCursor;
    renderInvoices(page.invoices, more);
  } catch (err) {
    if (seq === state.invoiceSeq) showError(err);
  }
}

function selectCaller(index) {
  const caller = state.tokens[index] ?? state.tokens[0];
  state.token = caller.token;
  try {
    localStorage.setItem(CALLER_KEY, caller.label);
  } catch {
    // storage disabled: the choice just isn't remembered
  }
}

/**
 * Where Stripe just sent the user back from: Checkout returns to its success_url
 * (/app/settings?billing=success) or cancel_url (/app/billing?billing=canceled), the portal to its
 * return_url (/app/billing). Returns "success", "canceled", "portal" or null (not a return).
 */
function stripeReturn() {
  const outcome = new URLSearchParams(window.location.search).get("billing");
  if (outcome === "success" || outcome === "canceled") return outcome;
  if (window.location.pathname.replace(/\/$/, "") === "/app/billing") return "portal";
  return null;
}

/** The banner after Checkout ("success" or "canceled"); nothing after the portal. */
function showReturnBanner(outcome) {
  const messages = {
    success: "Thanks! Your subscription is being activated.",
    canceled: "Checkout canceled. No charge was made.",
  };
  if (!(outcome in messages)) return null;
  const banner = $("return-banner");
  banner.textContent = messages[outcome];
  banner.dataset.billing = outcome;
  banner.hidden = false;
  return outcome;
}

/**
 * "success" only means the payment page finished. POST /billing/sync has usually brought the
 * subscription in already; if not (a payment Stripe is still confirming, a sync answered from the
 * stored state inside its 5 s window, a backend without /billing/sync), the webhook brings it a moment
 * later: poll the status every second for up to 10 s until it is active or trialing.
 */
async function pollUntilActive() {
  const detail = el("span", { class: "banner-detail" });
  $("return-banner").append(" ", detail);
  const deadline = Date.now() + 10_000;
  while (!isPaid(state.status?.subscription) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await refreshStatus();
  }
  detail.textContent = isPaid(state.status?.subscription)
    ? "It is active now."
    : "Stripe has not confirmed it yet: press Refresh in a moment.";
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

async function init() {
  const outcome = stripeReturn();
  showReturnBanner(outcome);
  $("refresh").addEventListener("click", () => {
    clearError();
    refreshStatus();
    loadInvoices();
  });
  $("manage-subscription").addEventListener("click", openPortal);
  $("cancel-at-period-end").addEventListener("click", () => cancelSubscription(false));
  $("cancel-now").addEventListener("click", () => cancelSubscription(true));
  $("resume").addEventListener("click", resumeSubscription);
  $("preview-change").addEventListener("click", previewChange);
  $("confirm-change").addEventListener("click", confirmChange);
  $("invoices-more").addEventListener("click", () => loadInvoices(true));
  $("change-plan-select").addEventListener("change", () => {
    syncSitesInput();
    clearPreview();
    updateActions();
  });
  $("change-sites").addEventListener("input", () => {
    clearPreview();
    updateActions();
  });
  $("token-select").addEventListener("change", (event) => {
    selectCaller(Number(event.target.value));
    clearError();
    state.status = null; // never show one organization's status or invoices under another caller
    state.invoiceCursor = null;
    renderStatus();
    renderInvoices([], false);
    refreshStatus();
    loadInvoices();
  });
  // Coming back from Stripe with the browser's Back button restores this page as it was left.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      state.busy = false;
      updateActions();
    }
  });

  let config;
  try {
    [config, state.catalog] = await Promise.all([loadDevJson("/dev/config.json"), loadDevJson("/dev/plans.json")]);
  } catch (err) {
    showError(err);
    return;
  }
  state.apiBase = (config.apiBase ?? "").replace(/\/$/, "");
  state.tokens = config.tokens ?? [];
  renderPlans();
  if (state.tokens.length === 0) {
    showError(new ApiError(0, "no_callers", "/dev/config.json lists no tokens"));
    return;
  }

  let saved = null;
  try {
    saved = localStorage.getItem(CALLER_KEY);
  } catch {
    // storage disabled
  }
  const select = $("token-select");
  state.tokens.forEach((t, i) => select.append(new Option(`${t.label} (${t.orgId}, ${t.role})`, String(i))));
  const index = Math.max(0, state.tokens.findIndex((t) => t.label === saved));
  select.value = String(index);
  selectCaller(index);

  loadInvoices();
  // Back from Checkout or the portal: the first render of the plan is what Stripe says, not what
  // the webhook has delivered so far.
  await (outcome ? syncStatus() : refreshStatus());
  if (outcome === "success") {
    await pollUntilActive();
    loadInvoices(); // the first invoice
  }
}

init();
