// oxehr's browser scenarios: Debian's Chromium driven by playwright-core, every page
// checked with axe-core (no serious or critical violation). Run by
// crates/oxehr/tests/browser.rs against `oxehr serve --demo`; what a page should show is
// computed from the FHIR API with a token of the same user, never from the page code.
//
// Environment: OXEHR_BASE (http://127.0.0.1:PORT), OXEHR_BIN and OXEHR_DATA (to issue
// tokens), OXEHR_MODULES (node_modules with playwright-core and axe-core), SCREENSHOTS
// (a directory; desktop 1280×800 and phone 375×812 shots are saved there).
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(path.join(process.env.OXEHR_MODULES, 'x.js'));
const { chromium } = require('playwright-core');
const axeSource = require('axe-core').source;

const BASE = process.env.OXEHR_BASE;
const SHOTS = process.env.SCREENSHOTS;
export const PASSWORD = 'oxehr-demo-password';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

const results = [];
function check(cond, what) {
  if (!cond) throw new Error(what);
}

/// A FHIR read or search as `user`, with a token from the CLI.
const tokens = {};
export async function fhir(user, pathAndQuery) {
  tokens[user] ??= execFileSync(process.env.OXEHR_BIN, [
    'token', 'issue', '--user', user, '--data', process.env.OXEHR_DATA,
  ], { env: { ...process.env, OXEHR_LOG: 'error' } }).toString().trim();
  const r = await fetch(`${BASE}/fhir/${pathAndQuery}`, {
    headers: { authorization: `Bearer ${tokens[user]}`, accept: 'application/fhir+json' },
  });
  if (!r.ok) throw new Error(`GET ${pathAndQuery} as ${user}: ${r.status}`);
  return r.json();
}

/// axe-core on the page as it is: no serious or critical violation.
async function axe(page, name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(() => globalThis.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe on ${name}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; ')}`);
}

async function shoot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  for (const [size, vp] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

/// Opens `url`, checks the page with axe at desktop and phone width, and saves
/// screenshots when `shot` names them.
export async function visit(page, url, { shot } = {}) {
  const resp = await page.goto(new URL(url, BASE).href);
  await axe(page, url);
  await page.setViewportSize(PHONE);
  await axe(page, `${url} (phone)`);
  // Nothing wider than the phone's screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${url} is ${overflow}px wider than a 375px screen`);
  await page.setViewportSize(DESKTOP);
  if (shot) await shoot(page, shot);
  return resp;
}

async function signIn(page, user) {
  await page.goto(`${BASE}/`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const scenarios = [];
export function scenario(name, fn) { scenarios.push([name, fn]); }

// ---------------------------------------------------------------------------------
scenario('the sign-in page is the front door, and it is accessible', async ({ page }) => {
  const resp = await visit(page, '/', { shot: 'sign-in' });
  check(resp.status() === 200, `GET / answered ${resp.status()}`);
  check(await page.title() === 'Sign in · oxehr', `title: ${await page.title()}`);
  const csp = resp.headers()['content-security-policy'] ?? '';
  check(csp.includes("default-src 'none'") && !csp.includes('unsafe-inline'), `CSP: ${csp}`);
  check(await page.locator('input[name=csrf]').count() === 1, 'the form carries a CSRF token');
});

// ---------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = 0;
for (const [name, fn] of scenarios) {
  const context = await browser.newContext({ viewport: DESKTOP, javaScriptEnabled: true });
  const page = await context.newPage();
  try {
    await fn({ page, context, signIn: (u) => signIn(page, u) });
    console.log(`ok   ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}\n     ${e.stack ?? e}`);
  } finally {
    await context.close();
  }
}
await browser.close();
console.log(`${scenarios.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
