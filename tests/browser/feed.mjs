// Drives Debian's headless Chromium through the public feed and prints what
// it saw as one JSON report on stdout; the Rust test (tests/tests/it/feed.rs)
// asserts on it. Screenshots go to the artifacts folder.
//
// usage: node feed.mjs <base-url> <receipt-id> <bank-reference> <artifacts-dir> <other-receipt-id>

import { chromium } from "playwright-core";
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [base, receiptId, bankReference, artifacts, otherReceiptId] = process.argv.slice(2);
if (!otherReceiptId) {
  console.error("usage: node feed.mjs <base-url> <receipt-id> <bank-reference> <artifacts-dir> <other-receipt-id>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // This machine's network is closed: without these, Chromium keeps trying
  // to reach Google's services.
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

const report = { requests: [], consoleErrors: [] };
// A phone first: the pages are meant for one.
const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 1 });
const page = await context.newPage();
page.on("request", (request) => report.requests.push(request.url()));
page.on("console", (message) => {
  if (message.type() === "error") report.consoleErrors.push(message.text());
});
page.on("pageerror", (error) => report.consoleErrors.push(String(error)));

async function shot(name) {
  await page.screenshot({ path: join(artifacts, name + ".png"), fullPage: true });
}

async function pageFacts() {
  return page.evaluate(() => ({
    lang: document.documentElement.lang,
    title: document.title,
    h1: document.querySelector("h1")?.textContent.trim(),
    nav: Array.from(document.querySelectorAll("nav a"), (a) => a.textContent.trim()),
    // Wider than the viewport means sideways scrolling on a phone.
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    svgCharts: document.querySelectorAll("svg.chart[role=img][aria-label]").length,
  }));
}

// Overview in both languages.
await page.goto(base + "/");
report.overviewVi = await pageFacts();
await shot("overview-vi");
await page.goto(base + "/en");
report.overviewEn = await pageFacts();
await shot("overview-en");

// A commune page, reached by following the first commune link.
await page.goto(base + "/en/communes");
await page.locator("main table a").first().click();
await page.waitForLoadState("load");
report.commune = await pageFacts();
report.commune.code = new URL(page.url()).pathname.split("/").pop();
await shot("commune-en");

async function verifyOnPage(url, name, prepare) {
  await page.goto(url);
  if (prepare) await prepare();
  await page.locator("#verify-button").click();
  await page.waitForSelector("#verify[data-verified]", { timeout: 20000 });
  const outcome = await page.evaluate(() => ({
    verified: document.querySelector("#verify").dataset.verified,
    result: document.querySelector("#verify-result").textContent,
    steps: Array.from(document.querySelectorAll("#verify-steps li"), (li) => ({
      ok: li.className === "ok",
      text: li.textContent,
    })),
    qr: document.querySelectorAll("figure.qr svg").length,
  }));
  await shot(name);
  return outcome;
}

// The real proof.
const receiptUrl = base + "/receipts/" + encodeURIComponent(receiptId);
report.valid = await verifyOnPage(receiptUrl, "verify-valid-vi");
report.validEn = await verifyOnPage(base + "/en/receipts/" + encodeURIComponent(receiptId), "verify-valid-en");

// Tampered answers from the server, each of which the page must refuse.
async function tampered(name, change, prepare) {
  await page.route("**/api/v1/receipts/*/proof", async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    await change(body);
    await route.fulfill({ response, json: body });
  });
  const outcome = await verifyOnPage(receiptUrl, "verify-" + name, prepare);
  await page.unrouteAll({ behavior: "wait" });
  return outcome;
}
const flipHex = (hex) => (hex[0] === "0" ? "1" : "0") + hex.slice(1);
report.tampered = {
  proofHash: await tampered("tampered-proof", (p) => {
    p.inclusion_proof[0] = flipHex(p.inclusion_proof[0]);
  }),
  entry: await tampered("tampered-entry", (p) => {
    // One byte of the entry changed, and the leaf hash made to match it, so
    // only the inclusion proof can catch it.
    const bytes = Buffer.from(p.entry, "base64");
    bytes[bytes.length - 1] ^= 1;
    p.entry = bytes.toString("base64");
    p.leaf_hash = createHash("sha256").update(Buffer.concat([Buffer.from([0]), bytes])).digest("hex");
  }),
  // Another receipt's genuine, valid proof: only the last step, that the
  // entry is this receipt, can catch it.
  // A lying server would serve the page with the other entry's position
  // too, so the page is made to agree with the proof.
  otherReceipt: await (async () => {
    const other = await (
      await page.request.get(base + "/api/v1/receipts/" + encodeURIComponent(otherReceiptId) + "/proof")
    ).json();
    return tampered(
      "tampered-other-receipt",
      (p) => Object.assign(p, other),
      () => page.evaluate((seq) => (document.querySelector("#verify").dataset.seq = String(seq)), other.seq),
    );
  })(),
  treeSize: await tampered("tampered-tree-size", (p) => {
    p.tree_size += 1;
  }),
  checkpointRoot: await tampered("tampered-root", (p) => {
    const lines = p.checkpoint.split("\n");
    const root = Buffer.from(lines[2], "base64");
    root[0] ^= 1;
    lines[2] = root.toString("base64");
    p.checkpoint = lines.join("\n");
  }),
};

// Verify my donation by bank reference: the page posts the reference in a
// form body (SPEC 9.3), so no URL may carry it; the donor lands on the
// receipt and verifies it in the browser.
await page.goto(base + "/en/verify");
const before = report.requests.length;
const posted = [];
const onRequest = (request) => {
  if (request.method() === "POST") posted.push({ url: request.url(), body: request.postData() || "" });
};
page.on("request", onRequest);
await page.fill("#bank-ref", bankReference);
await Promise.all([page.waitForURL("**/receipts/**"), page.click("#reference-form button[type=submit]")]);
page.off("request", onRequest);
const landedOn = page.url();
await page.locator("#verify-button").click();
await page.waitForSelector("#verify[data-verified]", { timeout: 20000 });
report.byReference = {
  url: landedOn,
  requests: report.requests.slice(before),
  posted,
  h1: (await pageFacts()).h1,
  verified: await page.evaluate(() => document.querySelector("#verify").dataset.verified),
};
await shot("verify-by-reference-en");

// Accessibility: axe-core's WCAG 2.1 A/AA rules on the main pages, in a
// context that lets the checker's script past the pages' CSP.
const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const audit = await browser.newContext({ viewport: { width: 390, height: 844 }, bypassCSP: true });
const auditPage = await audit.newPage();
report.accessibility = {};
const overlaps = await (await fetch(base + "/api/v1/overlaps")).json();
const audited = ["/", "/en/communes", "/communes/" + report.commune.code, "/en/donors", "/en/overlaps", "/verify", "/en/log", "/receipts/" + encodeURIComponent(receiptId)];
// One finding's events, when the demo has a finding.
if (overlaps.findings.length > 0) {
  audited.push("/overlaps/" + encodeURIComponent(overlaps.findings[0].finding));
}
for (const path of audited) {
  await auditPage.goto(base + path);
  if (path.startsWith("/receipts/")) {
    await auditPage.locator("#verify-button").click();
    await auditPage.waitForSelector("#verify[data-verified]", { timeout: 20000 });
  }
  await auditPage.addScriptTag({ path: axePath });
  const results = await auditPage.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  report.accessibility[path] = {
    passes: results.passes.length,
    violations: results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.length,
      example: v.nodes[0]?.html.slice(0, 200),
    })),
  };
}
await audit.close();

await browser.close();
console.log(JSON.stringify(report));
