// The demo billing page: plain ES2020, no build step, no dependencies.
//
// It is also the reference a frontend team copies from. The parts worth copying:
//   - callApi():           how to call the billing API with the caller's JWT as a bearer token,
//   - ApiError / showError / handleActionError():  how to branch on `error.code` (never on the message),
//   - stripeReturn() / syncStatus(): when Checkout or the portal sends the user back, ask the backend
//     to read Stripe (POST /billing/sync) before showing the plan: the webhook may not have arrived yet,
//   - showReturnBanner() / pollUntilActive(): the banner, and waiting for a payment Stripe still confirms,
//   - previewChange() / confirmChange(): show what a plan change costs (a server-side quote, `previewId`)
//     before applying exactly that quote,
//   - showPayment() / watchPayment(): a change is applied only once its invoice is paid (402
//     payment_failed / payment_requires_action, 409 payment_outstanding): say why, link to Stripe's
//     hosted invoice page (card, 3-D Secure), and ask the backend to read Stripe when the user comes back,
//   - renderStatus(): a pending change is shown as pending, never as granted; a scheduled cancellation
//     (`cancelAt`, however it was set) as "Cancels on",
//   - loadInvoices():      paging with the opaque `nextCursor`,
//   - isBillingAdmin() / applyRole(): members are not offered what only billing admins may do (display
//     only: the API checks the role of every call),
//   - featureItems() / limitItems(): the catalog's display names, never its raw keys.
// Everything that comes from /dev/*.json (the callers' tokens, the plan catalog file) is the local
// gateway's convenience: a real frontend gets its token from its identity provider.

const ENDED_STATUSES = new Set(["canceled", "incomplete_expired"]); // a new subscription is needed
const PAID_STATUSES = new Set(["active", "trialing"]);
const OUTSTANDING_STATUSES = new Set(["past_due", "unpaid", "incomplete"]); // an unpaid invoice: no change until paid
// Errors about paying for a change. Branch on these codes, never on the message. `message` when an invoice
// waits to be paid (`hostedInvoiceUrl`); `nothingMade` for a 402 without one: a change that is made only if
// paid at once (one that removes the per-site add-on) and was not made at all.
const PAYMENT_TEXT = {
  payment_failed: {
    message: "Your card was declined, so your plan has not changed. Pay the invoice with another card: the change applies once it is paid.",
    nothingMade: "Your card was declined. Nothing was changed and nothing was charged: update the card under Manage subscription, then try again.",
    action: "Pay the invoice",
  },
  payment_requires_action: {
    message: "Your bank asks you to confirm this payment (3-D Secure). Your plan has not changed yet: it changes once the payment is confirmed.",
    nothingMade:
      "Your bank asks you to confirm this payment (3-D Secure), but a change that removes the extra sites is made only if it is paid at once: " +
      "nothing was changed and nothing was charged. Keep the extra sites in this change and remove them afterwards, or use another card (Manage subscription).",
    action: "Confirm the payment",
  },
  payment_outstanding: {
    message: "An invoice of this subscription is unpaid, so the plan cannot be changed now. Pay it first.",
    action: "Pay the open invoice",
  },
};
// After the user opens the invoice to pay (in another tab), ask the backend to read Stripe every few
// seconds while this tab is visible, for a few minutes at most (the backend reads Stripe at most once per
// organization every 5 s whatever the page does).
const PAYMENT_POLL_MS = 3000;
const PAYMENT_WATCH_MS = 5 * 60_000;
const LIVE_HINT = "Change your plan under Change plan, or in Manage subscription";
// What the status calls the fallback plan's entitlements when no subscription pays for a plan.
const FREE_TIER = "Free";
// Where the token names the caller's role, and the roles that manage billing (RoleClaim, AdminRoles):
// /dev/config.json gives the stack's, these are the template's defaults. Read for display only: the
// API authorizes every call from the verified token.
const DEFAULT_ROLE_CLAIM = "org_role";
const DEFAULT_ADMIN_ROLES = ["owner", "admin"];
const CALLER_KEY = "billing-demo.caller"; // localStorage: the label of the chosen caller

const state = {
  apiBase: "", // "" means same origin
  tokens: [], // [{label, orgId, role, token}]
  token: null, // the selected caller's JWT
  admin: false, // its role claim names a billing admin (display only)
  roleClaim: DEFAULT_ROLE_CLAIM,
  adminRoles: new Set(DEFAULT_ADMIN_ROLES),
  catalog: null, // /dev/plans.json
  interval: "month", // the plans' monthly/yearly switch: what a checkout buys
  status: null, // the last GET /billing/status answer, null while unknown
  statusSeq: 0, // only the newest status request may render (the caller can change meanwhile)
  busy: false, // a checkout, portal or subscription request is in flight (or the browser is leaving for Stripe)
  // The last successful preview: {key: "plan:siteQuantity:interval", previewId}. Only that change may be confirmed,
  // and it is confirmed with that quote (the server's proration moment and amount, never the page's).
  preview: null,
  // The invoice a change waits for or is blocked by: {code, change, pending, watching, until}, null when none.
  payment: null,
  paymentTimer: null, // the next watchPayment() tick
  invoiceCursor: null, // nextCursor of the last invoice page, null when there are no more
  invoiceSeq: 0, // like statusSeq, for the invoice list
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Calling the API
// ---------------------------------------------------------------------------------------------

/**
 * A failed call. `code` is stable and meant for code; `message` is meant for people.
 *
 * `hostedInvoiceUrl` (payment_failed, payment_requires_action, payment_outstanding) is Stripe's hosted
 * page of the invoice to pay: a bearer link, shown as a link, never logged. The 402 of
 * payment_requires_action also carries `clientSecret`, for a frontend that loads Stripe.js and finishes
 * 3-D Secure in place (`stripe.handleNextAction({clientSecret})`); this page sends the user to the
 * hosted invoice page instead, which does the same with no Stripe.js, so it does not keep it.
 */
class ApiError extends Error {
  constructor(status, code, message, field = undefined, hostedInvoiceUrl = null) {
    super(message);
    this.status = status; // HTTP status, 0 when the server was not reached
    this.code = code;
    this.field = field; // the request field at fault, when there is one
    this.hostedInvoiceUrl = hostedInvoiceUrl || null;
  }
}

/**
 * Call the billing API as the selected caller and resolve with the JSON answer.
 *
 * The caller's JWT goes in `Authorization: Bearer <token>`. The organization and the role come
 * from that token only (never send an org id): API Gateway's authorizer verifies it, and the
 * backend decides who may do what. The page hides admin actions from members (applyRole), but a
 * member's call to an admin route still answers 403 forbidden.
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
  if (error?.code) throw new ApiError(response.status, error.code, error.message, error.field, error.hostedInvoiceUrl);
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

/**
 * Show a checkout, portal or subscription error, then react to what its code means. `change` is the
 * plan change that was sent, when it was one.
 */
function handleActionError(err, quantityInput = null, change = null) {
  if (err.code in PAYMENT_TEXT) {
    // Not applied: the change waits for its invoice (402), or an unpaid invoice blocks it (409).
    clearError();
    showPayment(err, change);
    refreshStatus(); // shows the change as pending; plan and entitlements are as before
    loadInvoices(); // the invoice to pay
    return;
  }
  switch (err.code) {
    case "change_in_progress": // another tab (or a double click elsewhere) is changing the plan right now
      showError(new ApiError(err.status, err.code, "Another plan change of this organization is in progress. Wait a moment: the page reloads the plan"));
      setTimeout(refreshStatus, 2000);
      return;
    case "invalid_preview": // the quote expired (10 minutes) or the subscription changed since
      showError(new ApiError(err.status, err.code, "This preview has expired or no longer matches the subscription: press Preview again"));
      clearPreview();
      updateActions();
      $("preview-change").focus();
      return;
  }
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

/** Features by the catalog's display names (`features` in plans.json); the key stays in data-feature. */
function featureItems(features) {
  return features.map((feature) => el("li", { "data-feature": feature, text: state.catalog.features[feature] ?? feature }));
}

/** Limits by the catalog's display names and units (`limits` in plans.json): "Storage 10 GB". */
function limitItems(limits, suffixes = {}) {
  return Object.entries(limits).map(([key, value]) => {
    const { name = key, unit } = state.catalog.limits[key] ?? {};
    const amount = unit ? `${value} ${unit}` : String(value);
    return el("div", {}, el("dt", { text: name }), el("dd", { "data-limit": key, text: `${amount}${suffixes[key] ?? ""}` }));
  });
}

// ---------------------------------------------------------------------------------------------
// Subscription rules the page needs (the backend enforces them; the page only explains them)
// ---------------------------------------------------------------------------------------------

/** A subscription that has not ended: checkout answers 409 subscription_exists, use the portal. */
const isLive = (sub) => Boolean(sub) && !ENDED_STATUSES.has(sub.status);
const isPaid = (sub) => Boolean(sub) && PAID_STATUSES.has(sub.status);
/** A cancellation is scheduled: `cancelAt` however it was set (Dashboard, portal, API), or at period end. */
const isCancelling = (sub) => Boolean(sub?.cancelAt || sub?.cancelAtPeriodEnd);
const cancelDate = (sub) => sub.cancelAt ?? (sub.cancelAtPeriodEnd ? sub.currentPeriodEnd : null);
/** Nothing waits for a payment: no pending change, no unpaid invoice holding the subscription. */
const paymentSettled = (sub) => !sub?.pendingChange && !OUTSTANDING_STATUSES.has(sub?.status);

/** What the catalog lists a plan with `sites` extra sites for at an interval (minor units). */
function listPrice(planKey, sites, interval = "month") {
  const prices = state.catalog.plans[planKey]?.prices[interval];
  return prices ? prices.base + sites * (prices.site ?? 0) : 0;
}

/** The same per month (a yearly price counts a twelfth), to say upgrade or downgrade. */
const monthlyPrice = (planKey, sites, interval = "month") => listPrice(planKey, sites, interval) / (interval === "year" ? 12 : 1);

/** What paying yearly saves on a plan with `sites` extra sites, against twelve monthly invoices (0: none). */
function yearlySaving(planKey, sites) {
  const yearly = listPrice(planKey, sites, "year");
  return yearly ? Math.max(0, 12 * listPrice(planKey, sites) - yearly) : 0;
}

/** The interval a checkout of the plan bills at: the switch's, where the plan offers it. */
const intervalFor = (planKey) => (state.catalog.plans[planKey]?.prices[state.interval] ? state.interval : "month");

const planName = (key) => state.catalog.plans[key]?.name ?? key;
const sitesText = (n) => (n > 0 ? ` with ${n} extra site${n === 1 ? "" : "s"}` : "");

/** "Upgrade to Enterprise with 4 extra sites pending payment: ..." (granted only once paid). */
function pendingText(sub, pending) {
  const before = monthlyPrice(sub.plan, sub.siteQuantity, sub.interval ?? "month");
  const after = monthlyPrice(pending.plan, pending.siteQuantity, sub.interval ?? "month");
  const kind = after > before ? "Upgrade" : after < before ? "Downgrade" : "Change";
  const lapses = pending.expiresAt ? `; Stripe drops it on ${formatDate(pending.expiresAt)} if it is still unpaid` : "";
  return (
    `${kind} to ${planName(pending.plan)}${sitesText(pending.siteQuantity)} pending payment: ` +
    `your plan stays ${planName(sub.plan)} until its invoice is paid${lapses}.`
  );
}

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
  // A grandfathered subscriber has the features of its own version, not the current one's.
  const features = plan?.versions[String(sub.planVersion)]?.features ?? plan?.features;
  if (granted && sameFeatures(status.entitlement.features, features)) return { key: sub.plan, fallback: false };
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
    $("free-tier-note").hidden = true;
    $("period").textContent = "";
    $("features").replaceChildren();
    $("limits").replaceChildren();
    updateActions();
    return;
  }
  const sub = status.subscription;
  const current = entitledPlan(status);
  // The free tier has the fallback plan's entitlements at no charge: it is not that plan, which is also sold.
  planEl.textContent = current.fallback ? FREE_TIER : planName(current.key);
  planEl.dataset.plan = current.key; // whose features and limits apply: the fallback plan's on the free tier
  const freeNote = $("free-tier-note");
  freeNote.hidden = !current.fallback;
  freeNote.textContent = current.fallback ? freeTierText(sub) : "";
  $("status-state").textContent = sub ? sub.status : "none"; // Stripe's own status string
  $("limit-sites").textContent = status.entitlement.limits.sites ?? "—";

  let period = "";
  if (isLive(sub)) {
    const cancelsOn = cancelDate(sub);
    const billed = sub.interval === "year" ? " (billed yearly)" : ""; // monthly is the default: no note
    if (sub.status === "trialing" && sub.trialEnd) period = `Trial ends on ${formatDate(sub.trialEnd)}`;
    else if (cancelsOn) period = `Cancels on ${formatDate(cancelsOn)}`;
    else if (sub.currentPeriodEnd) period = `Renews on ${formatDate(sub.currentPeriodEnd)}${billed}`;
  }
  $("period").textContent = period;
  // A change waiting for its invoice grants nothing: the plan, features and limits above are what is paid.
  const pending = isLive(sub) ? sub.pendingChange : null;
  const pendingEl = $("pending-change");
  pendingEl.hidden = !pending;
  pendingEl.textContent = pending ? pendingText(sub, pending) : "";
  pendingEl.dataset.plan = pending?.plan ?? "";
  $("features").replaceChildren(...featureItems(status.entitlement.features));
  $("limits").replaceChildren(...limitItems(status.entitlement.limits));
  if (isLive(sub)) fillChangeForm(sub);
  if (state.payment) {
    if (pending) state.payment.pending = pending; // the change the invoice is for, as Stripe has it
    if (state.payment.watching && paymentSettled(sub)) finishPayment(sub);
  }
  updateActions();
}

/** On the free tier: that no subscription pays for a plan, or why the subscription's plan does not apply. */
function freeTierText(sub) {
  if (!isLive(sub)) return "No paid subscription: the free features and limits below apply, at no charge.";
  // A price the catalog does not know (the backend's alarm UnknownSubscriptionPrice): nothing names its plan.
  if (!sub.plan) return "The subscription's price is not one of this catalog's plans: the free features and limits below apply until billing support fixes it.";
  return `The ${planName(sub.plan)} subscription is ${sub.status}: the free features and limits below apply until it is active again.`;
}

/** Show/hide and enable/disable the buttons and mark the current plan, from the last status. */
function updateActions() {
  const status = state.status;
  const sub = status?.subscription;
  const live = isLive(sub);
  // Only the plan of a live subscription is current: the free tier is no plan's card.
  const subscribedKey = live ? sub.plan : null;
  for (const card of document.querySelectorAll("#plans .plan")) {
    card.classList.toggle("current", card.dataset.plan === subscribedKey);
    card.querySelector(".choose-plan").disabled = state.busy || live;
    card.querySelector(".choose-hint").hidden = !live;
  }
  $("manage-subscription").disabled = state.busy || !status?.hasStripeCustomer;

  // Cancel while it runs, resume while a cancellation is pending (admins only: see applyRole).
  const cancelling = live && isCancelling(sub);
  $("cancel-at-period-end").hidden = $("cancel-now").hidden = !live || cancelling;
  $("resume").hidden = !cancelling;
  $("change-plan").hidden = !live;
  for (const id of ["cancel-at-period-end", "cancel-now", "resume", "preview-change"]) $(id).disabled = state.busy;
  $("confirm-change").disabled = state.busy || state.preview?.key !== changeKey(wantedChange());
}

/** Pre-fill the change form with the subscription's plan and site quantity. */
function fillChangeForm(sub) {
  $("change-plan-select").value = sub.plan;
  $("change-sites").value = String(sub.siteQuantity);
  $("change-interval").value = sub.interval ?? "month";
  syncSitesInput();
  clearPreview();
}

/** Plans without a per-site add-on take no sites: 0, disabled. */
function syncSitesInput() {
  const input = $("change-sites");
  const hasSites = Boolean(state.catalog.plans[$("change-plan-select").value]?.siteLimit);
  input.disabled = !hasSites;
  if (!hasSites) input.value = "0";
}

/** The change the form describes, and its key (what a preview was for). */
function wantedChange() {
  return { plan: $("change-plan-select").value, siteQuantity: siteQuantity($("change-sites")), interval: $("change-interval").value };
}
const changeKey = (change) => `${change.plan}:${change.siteQuantity}:${change.interval}`;

function clearPreview() {
  state.preview = null; // any edit needs a new preview (a new quote) before it can be confirmed
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
  const open = invoice.status === "open"; // unpaid: its hosted page takes the payment
  const day = (iso) => (iso ? formatDate(iso) : "—");
  const { periodStart: start, periodEnd: end } = invoice;
  const period = start === end ? day(start) : `${day(start)} – ${day(end)}`;
  return el("tr", { class: "invoice", "data-invoice": invoice.id },
    el("td", { text: invoice.number ?? invoice.id }),
    el("td", { class: "invoice-period", text: period }),
    el("td", {}, el("span", { class: "invoice-status", "data-status": invoice.status ?? "", text: invoice.status ?? "—" })),
    el("td", { class: "amount", text: money(invoice.amountDue, invoice.currency, true) }),
    el("td", { class: "amount", text: money(invoice.amountPaid, invoice.currency, true) }),
    el("td", { class: "links" }, link(invoice.hostedInvoiceUrl, open ? "Pay" : "View"), " ", link(invoice.invoicePdf, "PDF")),
  );
}

function renderPlans() {
  const { plans, maxSiteQuantity } = state.catalog;
  const offersYearly = Object.values(plans).some((plan) => plan.prices.year);
  $("interval-switch").hidden = !offersYearly;
  const best = Math.max(0, ...Object.keys(plans).map((key) => {
    const monthly = 12 * listPrice(key, 0);
    return monthly ? Math.round((100 * yearlySaving(key, 0)) / monthly) : 0;
  }));
  $("yearly-saving").textContent = best > 0 ? `Save up to ${best}%` : "";
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
  );
  const interval = intervalFor(key);
  const prices = plan.prices[interval];
  card.append(el("p", { class: "plan-price", "data-interval": interval, text: `${money(prices.base)} / ${interval}` }));
  if (state.interval === "year" && interval === "month") card.append(el("p", { class: "muted plan-interval-note", text: "Billed monthly only" }));
  const saving = interval === "year" ? yearlySaving(key, 0) : 0;
  if (saving > 0) card.append(el("p", { class: "plan-saving", text: `Save ${money(saving)} a year` }));
  if (plan.trial) {
    const cardNote = plan.trial.cardLess ? "no card needed" : "card required";
    card.append(el("p", { class: "plan-trial", text: `${plan.trial.days}-day free trial, ${cardNote}` }));
  }
  const siteLimit = plan.siteLimit;
  if (prices.site !== null) {
    card.append(el("p", { class: "site-price", text: `+ ${money(prices.site)} / ${interval} per extra site` }));
  }
  card.append(
    el("ul", { class: "tags" }, ...featureItems(plan.features)),
    el("dl", { class: "limits" }, ...limitItems(plan.limits, siteLimit ? { [siteLimit]: " + extra sites" } : {})),
  );

  let quantity = null;
  if (prices.site !== null) {
    const max = state.catalog.maxSiteQuantity;
    quantity = el("input", {
      type: "number", class: "site-quantity", id: `sites-${key}`,
      min: "0", max: String(max), step: "1", value: "0", inputmode: "numeric",
    });
    const total = el("p", { class: "plan-total admin-only", "aria-live": "polite" });
    const updateTotal = () => {
      const n = siteQuantity(quantity);
      const valid = Number.isInteger(n) && n >= 0 && n <= max;
      quantity.setAttribute("aria-invalid", String(!valid));
      total.textContent = valid
        ? `Total: ${money(listPrice(key, n, interval))} / ${interval}`
        : `Enter 0 to ${max} extra sites`;
    };
    quantity.addEventListener("input", updateTotal);
    updateTotal();
    card.append(el("div", { class: "field admin-only" }, el("label", { for: quantity.id, text: "Extra sites" }), quantity), total);
  }

  const hint = el("p", { class: "choose-hint admin-only", id: `plan-${key}-hint`, text: LIVE_HINT });
  hint.hidden = true;
  const button = el("button", {
    type: "button", class: "choose-plan admin-only", "aria-describedby": hint.id, text: `Choose ${plan.name}`,
  });
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
  const body = { plan: planKey, interval: intervalFor(planKey) };
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
async function runAction(button, action, change = null) {
  clearError();
  if (!state.payment) $("payment").hidden = true; // a "nothing was changed" note is old news now
  state.busy = true;
  updateActions();
  button.setAttribute("aria-busy", "true");
  try {
    await action();
  } catch (err) {
    handleActionError(err, $("change-sites"), change);
  } finally {
    state.busy = false;
    button.removeAttribute("aria-busy");
    updateActions();
  }
}

/**
 * GET /billing/subscription/preview: what the change costs now, and the next invoice. The answer is a
 * quote the server keeps for 10 minutes (`previewId`, until `expiresAt`): confirming names it, so the
 * change is charged exactly `amountDueNow`.
 */
function previewChange() {
  const wanted = wantedChange();
  return runAction($("preview-change"), async () => {
    const query = new URLSearchParams({ plan: wanted.plan, siteQuantity: String(wanted.siteQuantity), interval: wanted.interval });
    const preview = await callApi(`/billing/subscription/preview?${query}`);
    if (changeKey(wanted) !== changeKey(wantedChange())) return; // edited meanwhile: stale
    state.preview = { key: changeKey(wanted), previewId: preview.previewId };
    const when = preview.nextInvoiceDate ? ` on ${formatDate(preview.nextInvoiceDate)}` : "";
    const until = preview.expiresAt
      ? ` · Price held until ${new Date(preview.expiresAt).toLocaleTimeString("en-US", { timeStyle: "short" })}`
      : "";
    $("preview-result").textContent =
      `Due now: ${money(preview.amountDueNow, preview.currency, true)} · ` +
      `Next invoice: ${money(preview.nextInvoiceTotal, preview.currency, true)}${when}${until}`;
  });
}

/**
 * POST /billing/subscription with the preview's quote: {"plan", "siteQuantity", "previewId"} (no amount,
 * no date: the server prices the change). 200: paid and applied. 402: not applied, the invoice waits for
 * a payment (handleActionError -> showPayment).
 */
function confirmChange() {
  const wanted = wantedChange();
  const preview = state.preview;
  if (preview?.key !== changeKey(wanted)) return; // the button is disabled then
  const body = { plan: wanted.plan, siteQuantity: wanted.siteQuantity, interval: wanted.interval, previewId: preview.previewId };
  return runAction(
    $("confirm-change"),
    async () => {
      applyStatus(await callApi("/billing/subscription", { method: "POST", body }));
      loadInvoices(); // the proration invoice
    },
    wanted,
  );
}

// ---------------------------------------------------------------------------------------------
// Paying for a change: Stripe applies it only once its invoice is paid
// ---------------------------------------------------------------------------------------------

/**
 * A change that was not applied (402) or not accepted (409 payment_outstanding): say why, and link to
 * the invoice's hosted page, where the user pays with another card or passes 3-D Secure. It opens in a
 * new tab (Stripe's hosted invoice page has no way back to the app); watchPayment() takes over from the
 * click on. A 402 without an invoice changed nothing in Stripe: nothing to pay, nothing to wait for.
 */
function showPayment(err, change) {
  const text = PAYMENT_TEXT[err.code];
  const invoice = Boolean(err.hostedInvoiceUrl);
  const nothingMade = !invoice && err.status === 402 && Boolean(text.nothingMade);
  stopPayment();
  if (!nothingMade) state.payment = { code: err.code, change, pending: null, watching: false, until: 0 };
  const box = $("payment");
  box.dataset.code = err.code;
  $("payment-message").textContent = `${nothingMade ? text.nothingMade : text.message} (${err.code})`;
  const link = $("pay-invoice");
  link.hidden = !invoice;
  if (invoice) link.href = err.hostedInvoiceUrl;
  else link.removeAttribute("href");
  link.textContent = text.action;
  $("check-payment").hidden = nothingMade;
  const note = $("payment-note");
  note.hidden = nothingMade;
  note.textContent = invoice
    ? "The invoice opens in a new tab. Come back here once it is paid: the page then checks with Stripe."
    : "Pay it from the invoice list below, then come back here.";
  box.hidden = false;
}

/** Forget the payment being waited for (done, another caller, or a new one). */
function stopPayment() {
  clearTimeout(state.paymentTimer);
  state.paymentTimer = null;
  state.payment = null;
  $("payment").hidden = true;
}

/**
 * The user went to pay (or says they did): POST /billing/sync now and every few seconds while this tab
 * is visible, for a few minutes, until nothing waits for a payment any more (renderStatus ->
 * finishPayment). The webhook would bring the applied change too; the sync does not wait for it.
 */
function watchPayment() {
  const payment = state.payment;
  if (!payment) return;
  payment.watching = true;
  payment.until = Date.now() + PAYMENT_WATCH_MS;
  if (state.paymentTimer === null) state.paymentTimer = setTimeout(paymentTick, PAYMENT_POLL_MS);
}

async function paymentTick() {
  state.paymentTimer = null;
  if (!state.payment?.watching || Date.now() > state.payment.until) return; // "check now" starts it again
  if (document.visibilityState === "visible" && !state.busy) await syncStatus();
  if (state.payment?.watching && state.paymentTimer === null) state.paymentTimer = setTimeout(paymentTick, PAYMENT_POLL_MS);
}

/** Back in this tab while a payment is awaited: ask Stripe at once rather than at the next tick. */
function paymentReturn() {
  if (state.payment?.watching && document.visibilityState === "visible") syncStatus();
}

/** Nothing waits for a payment any more: the change applied (paid), or Stripe dropped it. */
function finishPayment(sub) {
  const target = state.payment.change ?? state.payment.pending;
  stopPayment();
  const applied = target && sub && sub.plan === target.plan && sub.siteQuantity === target.siteQuantity;
  const banner = $("return-banner");
  banner.textContent = applied
    ? `Payment received: your plan is now ${planName(sub.plan)}${sitesText(sub.siteQuantity)}.`
    : "Nothing is waiting for a payment any more.";
  banner.dataset.billing = "paid";
  banner.hidden = false;
  loadInvoices();
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

/**
 * Whether a token's role claim names a billing admin. The payload is decoded, not verified: this only
 * decides what the page offers. Identity providers send the role as a string or a list.
 */
function isBillingAdmin(token) {
  try {
    const base64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
    const role = claims[state.roleClaim];
    return (Array.isArray(role) ? role : [role]).some((r) => state.adminRoles.has(r));
  } catch {
    return false; // not a JWT: offer nothing the API would refuse
  }
}

/**
 * Members see the plan, the invoices and the plans, not the actions only billing admins may take
 * (checkout, portal, plan change, cancel, resume): CSS hides every `.admin-only` control while
 * <body> lacks data-billing-admin. Display only: the API still answers a member's call with 403.
 */
function applyRole() {
  document.body.toggleAttribute("data-billing-admin", state.admin);
  $("member-note").hidden = state.admin;
}

function selectCaller(index) {
  const caller = state.tokens[index] ?? state.tokens[0];
  state.token = caller.token;
  state.admin = isBillingAdmin(caller.token);
  applyRole();
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
  $("pay-invoice").addEventListener("click", watchPayment); // opens in a new tab (target=_blank)
  $("check-payment").addEventListener("click", () => {
    watchPayment();
    syncStatus();
  });
  document.addEventListener("visibilitychange", paymentReturn);
  $("change-plan-select").addEventListener("change", () => {
    syncSitesInput();
    clearPreview();
    updateActions();
  });
  for (const id of ["change-sites", "change-interval"]) {
    $(id).addEventListener("input", () => {
      clearPreview();
      updateActions();
    });
  }
  for (const radio of document.querySelectorAll('input[name="interval"]')) {
    radio.addEventListener("change", () => {
      state.interval = radio.value;
      renderPlans();
      updateActions(); // the new cards' buttons follow the subscription as before
    });
  }
  $("token-select").addEventListener("change", (event) => {
    selectCaller(Number(event.target.value));
    clearError();
    stopPayment(); // another organization's invoice is not this caller's to pay
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
      paymentReturn();
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
  state.roleClaim = config.roleClaim ?? DEFAULT_ROLE_CLAIM;
  state.adminRoles = new Set(config.adminRoles ?? DEFAULT_ADMIN_ROLES);
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
