// Drives Debian's headless Chromium through the agency desk as a clerk
// would, on a phone-sized screen, and prints what it saw as one JSON report
// on stdout; the Rust test (tests/tests/it/desk.rs) asserts on it.
//
// The desks are given as the addresses aidctl desk printed, which carry
// each session's secret: opening one sets the session cookie.
//
// usage: node desk.mjs <desk-url> <desk-of-a-key-without-RECEIVE> <feed-url> <donor-org-id> <receipt-id> <artifacts-dir>
//                      <desk-of-a-deliverer> <xlsx-with-mistakes> <xlsx-corrected> <receipts-csv> <pool-json>

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [deskLaunch, noRoleLaunch, feed, donor, receiptId, artifacts, deliverLaunch, badSheet, goodSheet, receiptsCsv, authorityLaunch, planCsv, poolJson] = process.argv.slice(2);
const [desk, noRoleDesk, deliverDesk, authorityDesk] = [deskLaunch, noRoleLaunch, deliverLaunch, authorityLaunch].map((url) => new URL(url).origin);
// The deliverer's pool: { asset, commune, category } (category as the form's value, "" for general).
const pool = JSON.parse(poolJson || "{}");
if (!poolJson) {
  console.error("usage: node desk.mjs <desk-url> <no-role-desk-url> <feed-url> <donor-org-id> <receipt-id> <artifacts-dir>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const REFERENCE = "FT-DESK 0000 1234";
const HIDDEN_DONOR = "Trần Thị Mai Hương";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const report = { consoleErrors: [], accessibility: {} };
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
const page = await context.newPage();
// A refusal is answered 422 on purpose (the no-role desk below); any other
// failed load or script error is reported.
page.on("console", (message) => {
  if (message.type() === "error" && !message.text().includes("status of 422")) report.consoleErrors.push(message.text());
});
page.on("pageerror", (error) => report.consoleErrors.push(String(error)));

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
// axe-core's WCAG 2.1 A/AA rules on the page as it is now. The desk's CSP
// keeps scripts out, so the checker runs in a page of its own that loads
// the same HTML with the CSP bypassed.
const audit = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
async function accessibility(name) {
  const auditPage = await audit.newPage();
  await auditPage.setContent(await page.content(), { waitUntil: "load" });
  await auditPage.addStyleTag({ url: desk + "/static/desk.css" });
  await auditPage.addScriptTag({ path: axePath });
  const results = await auditPage.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  report.accessibility[name] = {
    passes: results.passes.length,
    violations: results.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, example: v.nodes[0]?.html.slice(0, 200) })),
  };
  await auditPage.close();
  await page.screenshot({ path: join(artifacts, name + ".png"), fullPage: true });
}

async function facts() {
  return page.evaluate(() => ({
    lang: document.documentElement.lang,
    h1: document.querySelector("h1")?.textContent.trim(),
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
}

// Waits for the preview, or fails with the field error the form shows.
async function preview() {
  await page.click("button[type=submit]");
  await page.waitForSelector("dl.preview, #form-error, h1");
  if (await page.locator("#form-error").count()) {
    throw new Error("the form was refused: " + (await page.textContent("#form-error")));
  }
  await page.waitForSelector("dl.preview");
}

async function fillReceipt(id) {
  await page.fill("#receipt_id", id);
  await page.selectOption("#donor_org_id", donor);
  await page.selectOption("#asset_id", "VND");
  await page.fill("#quantity", "2500000");
  await page.fill("#reference", REFERENCE);
  await page.selectOption("#category", { index: 2 });
  // A name and a phone number: the preview must warn about both.
  await page.fill("#note", "Ủng hộ bữa ăn, liên hệ Nguyễn Văn An 0912345678");
}

// Each desk's printed address, once: the session cookie for the rest.
for (const launch of [deskLaunch, noRoleLaunch, deliverLaunch, authorityLaunch]) {
  await page.goto(launch);
  if (page.url().includes("session=")) throw new Error("the session's secret stayed in the address bar");
}

// Reloads `url` until `selector` shows and `ready(text)` holds: the desk
// reads its key's roles from the log after it starts.
async function until(url, selector, ready) {
  const deadline = Date.now() + 20000;
  for (;;) {
    await page.goto(url);
    const text = (await page.locator(selector).count()) ? await page.textContent(selector) : null;
    if (text !== null && ready(text)) return text;
    if (Date.now() > deadline) throw new Error(`${url}: ${selector} never ready (${text})`);
    await page.waitForTimeout(200);
  }
}

// Home, in Vietnamese, once the key's roles are read.
report.homeStanding = await until(desk + "/", "#standing", (text) => text.includes("RECEIVE"));
report.home = await facts();
report.homeLinks = await page.$$eval("ul.actions a", (links) => links.map((a) => a.getAttribute("href")));
await accessibility("home-vi");

// The form, in English, filled in and previewed.
await page.goto(desk + "/en/receipts/new");
report.form = await facts();
await accessibility("receipt-form-en");
// Checked as the clerk types: a decimal quantity is flagged at once, and
// the flag goes when it is corrected.
await page.fill("#quantity", "2,5");
await page.waitForFunction(() => document.getElementById("live-check").textContent.includes("whole number"));
report.liveCheck = {
  message: await page.textContent("#live-check"),
  invalid: await page.getAttribute("#quantity", "aria-invalid"),
};
await page.fill("#quantity", "2500000");
await page.waitForFunction(() => document.getElementById("live-check").textContent === "");
report.liveCheck.cleared = (await page.getAttribute("#quantity", "aria-invalid")) === null;
await fillReceipt(receiptId);
await preview();
const previewText = await page.textContent("main");
report.preview = {
  warnings: await page.locator(".warning li").count(),
  showsReference: previewText.includes(REFERENCE) || previewText.replace(/\s/g, "").includes(REFERENCE.replace(/\s/g, "")),
};
await accessibility("receipt-preview-en");
const submitted = await page.$$eval("form[action$='/receipts/submit'] input", (inputs) => inputs.map((i) => [i.name, i.value]));

// Signed and submitted.
await page.click("form[action$='/receipts/submit'] button");
await page.waitForSelector("#seq");
report.recorded = {
  seq: Number(await page.textContent("#seq")),
  publicPage: await page.getAttribute("#public-page", "href"),
  qr: await page.locator(".qr svg").count(),
};
await accessibility("receipt-recorded-en");

// The same preview submitted again, as a double click or a resent form
// would: the ledger records it once.
await page.goto(desk + "/en");
await page.evaluate(([action, fields]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = action;
  for (const [name, value] of fields) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}, ["/en/receipts/submit", submitted]);
await page.waitForSelector("#seq");
report.again = {
  seq: Number(await page.textContent("#seq")),
  duplicate: (await page.textContent("p.done")).includes("nothing was recorded twice"),
};

// Submits the preview on the page and returns the entry's seq.
async function submitPreview(segment) {
  await page.click(`form[action$='/${segment}/submit'] button`);
  await page.waitForSelector("#seq, #refusal");
  if (await page.locator("#refusal").count()) {
    throw new Error(`${segment} refused: ` + (await page.textContent("main")));
  }
  return Number(await page.textContent("#seq"));
}

// A pledge the fund records for the donor, to the fund itself.
await page.goto(desk + "/en/pledges/new");
await page.fill("#pledge_id", "desk-pledge-1");
await page.selectOption("#donor_org_id", donor);
await page.selectOption("#recipient_org_id", { index: 1 });
await page.selectOption("#asset_id", "VND");
await page.fill("#quantity", "5.000.000");
await page.fill("#due_date", "2026-12-31");
await preview();
await accessibility("pledge-preview-en");
report.pledge = { seq: await submitPreview("pledges") };

// The pledge cancelled, picked from the open pledges.
await until(desk + "/en/cancellations/new", "#pledge_id", (text) => text.includes("desk-pledge-1"));
await page.selectOption("#pledge_id", "desk-pledge-1");
await page.fill("#reason", "The donor changed plans");
await preview();
report.cancellation = { seq: await submitPreview("cancellations") };

// A commune's need, published.
await page.goto(desk + "/en/needs/new");
await accessibility("need-form-en");
await page.fill("#need_id", "desk-need-1");
await page.selectOption("#need_commune", { index: 1 });
await page.selectOption("#need_category", { index: 2 });
await page.fill("#year", "2026");
await page.selectOption("#asset_id", "VND");
await page.fill("#quantity", "10000000");
await page.fill("#children_targeted", "40");
await page.fill("#description", "School meals for the dry season");
await preview();
report.need = { seq: await submitPreview("needs") };

// A transfer from the fund to the deliverer, drawn from the receipt's
// pool, and its arrival confirmed on the deliverer's desk.
await page.goto(desk + "/en/transfers/new");
await page.fill("#transfer_id", "desk-transfer-1");
await page.selectOption("#to_org_id", pool.deliverer);
await page.selectOption("#asset_id", "VND");
await page.fill("#quantity", "1000");
await page.selectOption("#category", { index: 2 });
await preview();
report.transfer = { seq: await submitPreview("transfers") };
await until(deliverDesk + "/en/arrivals/new", "#transfer_id", (text) => text.includes("desk-transfer-1"));
await accessibility("arrival-form-en");
await page.selectOption("#transfer_id", "desk-transfer-1");
await page.fill("#quantity_received", "1000");
await preview();
report.arrival = { seq: await submitPreview("arrivals") };

// The public page on the feed, once the feed has the entry.
const feedPage = await context.newPage();
const deadline = Date.now() + 30000;
let response;
do {
  response = await feedPage.goto(report.recorded.publicPage);
  if (response.status() === 200) break;
  await feedPage.waitForTimeout(250);
} while (Date.now() < deadline);
report.feed = { status: response.status(), text: await feedPage.textContent("main") };
await feedPage.close();

// A desk whose key may not record receipts: no link to the form, a
// warning on it, and a clear refusal if submitted anyway.
const noRoleStanding = await until(noRoleDesk + "/en", "#standing", (text) => text.includes("PLEDGE"));
const noRoleLinks = await page.$$eval("ul.actions a", (links) => links.map((a) => a.getAttribute("href")));
await page.goto(noRoleDesk + "/en/receipts/new");
const noRoleWarning = await page.textContent("#role-missing");
await fillReceipt(receiptId + "-no-role");
await preview();
await page.click("form[action$='/receipts/submit'] button");
await page.waitForSelector("#refusal");
report.noRole = {
  standing: noRoleStanding,
  links: noRoleLinks,
  warning: noRoleWarning,
  message: await page.textContent("#refusal"),
  reason: (await page.textContent("main code")).trim(),
};
await accessibility("refused-en");

// A donor who asked not to be named, registered on the fund's desk: the
// acknowledgement on screen and as a file to hand over.
await page.goto(desk + "/donors/new");
await page.fill("#name", HIDDEN_DONOR);
await page.selectOption("#kind", { index: 1 });
await preview();
report.hiddenDonor = { previewShowsName: (await page.textContent("main")).includes(HIDDEN_DONOR) };
await accessibility("donor-preview-vi");
await page.click("form[action$='/donors/submit'] button");
await page.waitForSelector("#acknowledgement");
report.hiddenDonor.acknowledgement = await page.textContent("#acknowledgement");
await accessibility("donor-acknowledgement-vi");
const [ackDownload] = await Promise.all([
  page.waitForEvent("download"),
  page.click("form[action$='/donors/acknowledgement'] button"),
]);
report.hiddenDonor.file = join(artifacts, "acknowledgement.txt");
await ackDownload.saveAs(report.hiddenDonor.file);

// The transfer form on the fund's desk (its roles allow it).
await page.goto(desk + "/en/transfers/new");
report.transferForm = await facts();
await accessibility("transfer-form-en");

// One delivery by form on the deliverer's desk.
await page.goto(deliverDesk + "/en/deliveries/new");
await page.fill("#delivery_id", "form-delivery-1");
await page.selectOption("#delivery_commune", pool.commune);
await page.selectOption("#delivery_category", pool.deliveryCategory);
await page.selectOption("#asset_id", pool.asset);
await page.fill("#quantity", "1");
await page.fill("#children_reached", "1");
await page.fill("#period", "2025-12");
await page.selectOption("#commune_code", pool.earmarkCommune);
await page.selectOption("#category", pool.earmarkCategory);
await preview();
await accessibility("delivery-preview-en");
const deliveryEvent = (await page.textContent("dl.preview div:last-child dd code")).trim();
await page.click("form[action$='/deliveries/submit'] button");
await page.waitForSelector("#seq, #refusal");
report.delivery = {
  seq: (await page.locator("#seq").count()) ? Number(await page.textContent("#seq")) : null,
  refusal: (await page.locator("#refusal").count()) ? await page.textContent("main") : null,
  publicPage: (await page.locator("#public-page").count()) ? await page.getAttribute("#public-page", "href") : null,
};

// The delivery reversed, as a mistake: picked from the deliverer's own
// recent entries.
await until(deliverDesk + "/en/reversals/new", "#own-events", () => true);
report.reversal = { offered: await page.$$eval("#own-events option", (options) => options.map((o) => o.value)) };
await page.fill("#target_event_id", deliveryEvent);
await page.fill("#reason", "Entered for the wrong commune");
await preview();
await accessibility("reversal-preview-en");
report.reversal.seq = await submitPreview("reversals");
report.reversal.target = deliveryEvent;

// Spreadsheet import on the deliverer's desk: the file with mistakes, the
// report, the corrected file, and the corrected file again.
async function upload(path, base = deliverDesk, kind = "deliveries") {
  await page.goto(base + "/en/import");
  await page.selectOption("#kind", kind);
  await page.setInputFiles("#file", path);
  await page.click("button[type=submit]");
  await page.waitForSelector("#summary, #upload-error");
  if (await page.locator("#upload-error").count()) {
    throw new Error("the upload was refused: " + (await page.textContent("#upload-error")));
  }
  return {
    toRecord: Number(await page.textContent("#to-record")),
    already: Number(await page.textContent("#already")),
    problems: Number(await page.textContent("#problems")),
  };
}
report.import = {};
report.import.bad = await upload(badSheet);
report.import.bad.rows = await page.$$eval("#report tbody tr", (rows) =>
  rows.map((row) => Array.from(row.querySelectorAll("td"), (cell) => cell.textContent.trim())),
);
report.import.bad.page = await facts();
const reportLink = await page.getAttribute("a[href$='/report.xlsx']", "href");
const download = await page.request.get(deliverDesk + reportLink);
report.import.bad.reportStatus = download.status();
report.import.bad.reportType = download.headers()["content-type"];
await accessibility("import-report-en");
report.import.good = await upload(goodSheet);
await page.click("form[action$='/import/submit'] button");
await page.waitForSelector("#recorded");
report.import.good.recorded = Number(await page.textContent("#recorded"));
report.import.good.progressPage = new URL(page.url()).pathname;
await accessibility("import-submitted-en");
report.import.again = await upload(goodSheet);

// The fund's receipts from a CSV file.
report.import.receipts = await upload(receiptsCsv, desk, "receipts");
await page.click("form[action$='/import/submit'] button");
await page.waitForSelector("#recorded");
report.import.receipts.recorded = Number(await page.textContent("#recorded"));

// The authority's desk: a commune, a school in it, the school's key, and
// a commendation of the donor.
report.authority = {};
await page.goto(authorityDesk + "/en/communes/new");
await page.fill("#new_commune_code", "99001");
await page.fill("#name", "Phước Hà Mới");
await page.fill("#district", "Thuận Nam");
await page.fill("#province", "Ninh Thuận");
await page.fill("#children_count", "120");
await preview();
report.authority.commune = await submitPreview("communes");
await until(authorityDesk + "/en/organisations/new", "#org_commune", (text) => text.includes("99001"));
await accessibility("organisation-form-en");
await page.fill("#new_org_id", "desk-school-1");
await page.fill("#name", "Trường Tiểu học Phước Hà Mới");
await page.selectOption("#org_kind", { label: "School" });
await page.selectOption("#org_commune", "99001");
await preview();
report.authority.organisation = await submitPreview("organisations");
await until(authorityDesk + "/en/keys/new", "#key_org_id", (text) => text.includes("desk-school-1"));
await accessibility("key-form-en");
await page.selectOption("#key_org_id", "desk-school-1");
await page.fill("#public_key", pool.newKey);
await page.check("input[name=role_2]");
await page.check("input[name=role_4]");
await page.fill("#label", "school office");
await preview();
report.authority.key = await submitPreview("keys");
await page.goto(authorityDesk + "/en/commendations/new");
await page.selectOption("#honoree_org_id", donor);
await page.fill("#year", "2025");
await page.fill("#decision_ref", "QD-123-UBND");
await page.fill("#reason", "For school meals");
await preview();
report.authority.commendation = await submitPreview("commendations");
report.authority.plan = { rows: await upload(planCsv, authorityDesk, "plans") };
await page.click("form[action$='/import/submit'] button");
await page.waitForSelector("#recorded");
report.authority.plan.recorded = Number(await page.textContent("#recorded"));

// axe-core on every form page, in both languages, and the import page
// (on the authority's desk, which renders them all; a form its roles do
// not allow carries the warning).
for (const segment of ["receipts", "pledges", "cancellations", "transfers", "arrivals", "deliveries", "needs", "inspections", "reversals", "organisations", "keys", "key-revocations", "communes", "assets", "commendations", "donors"]) {
  for (const lang of ["", "/en"]) {
    await page.goto(`${authorityDesk}${lang}/${segment}/new`);
    await accessibility(`form-${segment}${lang.replace("/", "-") || "-vi"}`);
  }
}
await page.goto(authorityDesk + "/import");
await accessibility("import-vi");

await audit.close();
await browser.close();
console.log(JSON.stringify(report));
