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
import { createHmac } from 'node:crypto';
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

async function axeHere(page, name) { await axe(page, name); }

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
const CLINICIAN = 'demo-clinician';
const entries = (bundle) => (bundle.entry ?? []).map((e) => e.resource);
const nameOf = (p) => {
  const n = (p.name ?? []).find((x) => x.use === 'official') ?? (p.name ?? [])[0] ?? {};
  return n.text ?? [...(n.prefix ?? []), ...(n.given ?? []), n.family].filter(Boolean).join(' ');
};

scenario('a clinician signs in and sees the patients in their care', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  check(await page.getByRole('heading', { name: `Welcome, ${CLINICIAN}` }).count() === 1, 'home page by role');
  await axeHere(page, 'home');
  await page.getByRole('link', { name: 'Open the patient list' }).click();
  const mine = entries(await fhir(CLINICIAN, 'Patient?_count=100'));
  check(mine.length > 0, 'the demo clinician cares for someone');
  const rows = await page.locator('tbody tr td:first-child').allInnerTexts();
  check(JSON.stringify([...rows].sort()) === JSON.stringify(mine.map(nameOf).sort()),
    `list ${JSON.stringify(rows)} vs FHIR ${JSON.stringify(mine.map(nameOf))}`);
  for (const p of mine) console.log(`patient-name: ${nameOf(p)}`);
  await visit(page, '/patients', { shot: 'patient-list' });
  // Search by name: POSTed, so the name is not in the URL.
  const family = mine[0].name[0].family;
  await page.getByLabel('Name').fill(family);
  await page.getByRole('button', { name: 'Search' }).click();
  check(!page.url().includes(encodeURIComponent(family)) && !page.url().includes(family), `the name is in the URL ${page.url()}`);
  const found = await page.locator('tbody tr td:first-child').allInnerTexts();
  check(found.includes(nameOf(mine[0])), `search by family name found ${JSON.stringify(found)}`);
});

scenario('the chart summary shows what the record holds, with where it came from', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  const [p] = entries(await fhir(CLINICIAN, 'Patient?_count=1'));
  await visit(page, `/patients/${p.id}`, { shot: 'chart-summary' });
  check(await page.getByRole('heading', { level: 1 }).innerText() === nameOf(p), 'the chart names the patient');
  // Active problems: the record's own words, as many as FHIR finds (up to 8 shown).
  const problems = entries(await fhir(CLINICIAN, `Condition?patient=${p.id}&clinical-status=active,recurrence,relapse&_count=100`));
  const shown = await page.locator('#s-problems ~ ul .what').allInnerTexts();
  const want = problems.map((c) => c.code.text ?? c.code.coding[0].display);
  check(shown.length === Math.min(want.length, 8), `problems shown ${shown.length}, in the record ${want.length}`);
  for (const s of shown) check(want.includes(s), `problem "${s}" is not in the record`);
  if (want.length > 8) check(await page.getByRole('link', { name: `Show all ${want.length}` }).count() >= 1, 'nothing cut silently');
  // Every entry says where it came from.
  const froms = await page.locator('.entries .from').allInnerTexts();
  check(froms.length > 0 && froms.every((f) => f.trim().length > 0), 'every entry names its source');
  // The newest encounter names the organization its serviceProvider is, read through FHIR.
  const encounters = entries(await fhir(CLINICIAN, `Encounter?patient=${p.id}&_count=1&_sort=-date`));
  const provider = await fhir(CLINICIAN, encounters[0].serviceProvider.reference);
  const firstEncounter = await page.locator('#s-encounters ~ ul li').first().innerText();
  check(firstEncounter.includes(provider.name), `the newest encounter names ${provider.name}: ${firstEncounter}`);
  // The demo gives every section of the summary something to show.
  for (const key of ['problems', 'medications', 'allergies', 'immunizations', 'encounters', 'results', 'vitals', 'reports', 'documents']) {
    check(await page.locator(`#s-${key} ~ ul li`).count() > 0, `the ${key} section is empty`);
  }
  // A long list folds and says how many there are: nothing is cut silently.
  const encounterTotal = (await fhir(CLINICIAN, `Encounter?patient=${p.id}&_summary=count`)).total;
  check(encounterTotal > 8, `the demo patient has ${encounterTotal} encounters`);
  await page.locator('#s-encounters ~ p').getByRole('link', { name: `Show all ${encounterTotal}` }).click();
  check(await page.locator('tbody tr').count() === encounterTotal, 'the section page lists every encounter');
  await visit(page, page.url().replace(BASE, ''));

  // The HTML note: shown, with nothing of its hostile markup left.
  await page.goto(`${BASE}/patients/${p.id}`);
  const notes = entries(await fhir(CLINICIAN, `DocumentReference?patient=${p.id}&_count=50`));
  const htmlNote = notes.find((d) => d.content.some((c) => (c.attachment.contentType ?? '').startsWith('text/html')));
  check(htmlNote, 'the demo has an HTML note');
  await page.goto(`${BASE}/patients/${p.id}/documents/${htmlNote.id}`);
  await visit(page, page.url().replace(BASE, ''));
  const noteHtml = page.locator('.note-html');
  check(await noteHtml.count() === 1 && (await noteHtml.innerText()).includes('Allergy review'), 'the HTML note is shown');
  for (const bad of ['script', 'img', 'iframe', 'form', 'input', 'button', 'a[href^="javascript"]', '[onerror]', '[style]']) {
    check(await noteHtml.locator(bad).count() === 0, `the note kept ${bad}`);
  }
});

scenario('a patient outside my care shows the break-the-glass form, not data', async ({ page, signIn }) => {
  const all = entries(await fhir('demo-system-admin', 'Patient?_count=100'));
  const mine = new Set(entries(await fhir(CLINICIAN, 'Patient?_count=100')).map((p) => p.id));
  const other = all.find((p) => !mine.has(p.id));
  check(other, 'the demo has a patient outside the clinician\'s care');
  await signIn(CLINICIAN);
  const resp = await visit(page, `/patients/${other.id}`);
  check(resp.status() === 403, `status ${resp.status()}`);
  const text = await page.locator('main').innerText();
  check(!text.includes(other.name[0].family), 'the page names the hidden patient');
  check(await page.getByLabel(/Reason/).count() === 1, 'the form asks for a reason');
  // Too short a reason: refused next to the field, still no data.
  await page.getByLabel(/Reason/).fill('short');
  await page.getByLabel(/Reason/).evaluate((e) => e.removeAttribute('minlength'));
  await page.getByRole('button', { name: 'Open the record' }).click();
  check((await page.locator('#reason-error').innerText()).includes('at least 10'), 'reason refused in plain words');
  await page.getByLabel(/Reason/).fill('Unconscious in the emergency department');
  await page.getByRole('button', { name: 'Open the record' }).click();
  check(await page.getByRole('heading', { level: 1 }).innerText() === nameOf(other), 'after breaking the glass the chart opens');
});

scenario('a form without its CSRF token and an ended session get no data', async ({ page, context, signIn }) => {
  await signIn(CLINICIAN);
  const mine = entries(await fhir(CLINICIAN, 'Patient?_count=1'));
  const family = mine[0].name[0].family;
  // The same search the page makes, without the token.
  const r = await page.request.post(`${BASE}/patients`, { form: { name: family }, maxRedirects: 0 });
  check(r.status() === 403, `no token: ${r.status()}`);
  check(!(await r.text()).includes(family), 'no token: the answer names the patient');
  const r2 = await page.request.post(`${BASE}/patients`, { form: { name: family, csrf: 'x'.repeat(64) }, maxRedirects: 0 });
  check(r2.status() === 403, `wrong token: ${r2.status()}`);
  // A session the server no longer has (signed out elsewhere, or idle past the limit).
  const cookies = await context.cookies();
  await context.clearCookies();
  await context.addCookies(cookies.map((c) => (c.name === 'oxehr_session' ? { ...c, value: 'ended-session-id' } : c)));
  await page.goto(`${BASE}/patients/${mine[0].id}`);
  check(page.url().endsWith('/session-ended'), `an ended session goes to ${page.url()}`);
  check(!(await page.content()).includes(family), 'the ended-session page names a patient');
  await axeHere(page, 'session ended');
});

scenario('a trend plots every value the record holds, with a table beside it', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  const [p] = entries(await fhir(CLINICIAN, 'Patient?_count=1'));
  // Body weight (LOINC 29463-7), as the FHIR API finds it for this patient.
  const code = 'http://loinc.org|29463-7';
  const obs = entries(await fhir(CLINICIAN, `Observation?patient=${p.id}&code=${encodeURIComponent(code)}&_count=500`));
  check(obs.length > 1, `the demo patient has ${obs.length} body weights`);
  await page.goto(`${BASE}/patients/${p.id}`);
  await page.locator('#s-vitals ~ ul').getByRole('link', { name: 'Body Weight' }).click();
  check(page.url().includes('/trend?code='), `the summary links to the trend: ${page.url()}`);
  await visit(page, page.url().replace(BASE, ''), { shot: 'trend' });
  check(await page.locator('svg.trend circle.point').count() === obs.length, 'one point per value');
  const rows = await page.locator('tbody tr').count();
  check(rows === obs.length, `table rows ${rows} vs ${obs.length} values`);
  const unit = obs[0].valueQuantity.unit;
  check((await page.locator('svg.trend text.unit').innerHTML()).includes(unit), `the axis names the unit ${unit}`);
  // Newest first in the table, with its value rounded as a person reads it.
  const newest = [...obs].sort((a, b) => b.effectiveDateTime.localeCompare(a.effectiveDateTime))[0];
  const firstRow = await page.locator('tbody tr').first().innerText();
  check(firstRow.includes(String(Math.round(newest.valueQuantity.value * 100) / 100)), `newest value in "${firstRow}"`);
  // Choose another period: the last year holds only what FHIR finds since then.
  await page.getByLabel('Period').selectOption('1y');
  await page.getByRole('button', { name: 'Show' }).click();
  const since = new Date(); since.setFullYear(since.getFullYear() - 1);
  const recent = obs.filter((o) => o.effectiveDateTime.slice(0, 10) >= since.toISOString().slice(0, 10));
  check(await page.locator('tbody tr').count() === recent.length, `last year: ${recent.length} values`);
  // Choose another measurement (one the chart offers, not blood pressure, whose two panel
  // codes are one measurement): every value FHIR finds for it.
  const choices = await page.getByLabel('Measurement').locator('option')
    .evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
  const [other, label] = choices.find(([v]) => v !== code && !v.endsWith('85354-9')) ?? [];
  check(other, `the record offers another measurement: ${JSON.stringify(choices)}`);
  await page.getByLabel('Measurement').selectOption(other);
  await page.getByLabel('Period').selectOption('all');
  await page.getByRole('button', { name: 'Show' }).click();
  const values = entries(await fhir(CLINICIAN, `Observation?patient=${p.id}&code=${encodeURIComponent(other)}&_count=500`));
  check(await page.locator('tbody tr').count() === values.length, `${label}: ${values.length} values`);
  check((await page.getByRole('heading', { level: 1 }).innerText()).startsWith(label), `the chart is ${label}`);
});

/// RFC 6238 TOTP (HMAC-SHA-1, 6 digits, 30-second steps) of a base32 secret.
function totp(base32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

function cli(args, input) {
  return execFileSync(process.env.OXEHR_BIN, [...args, '--data', process.env.OXEHR_DATA], {
    env: { ...process.env, OXEHR_LOG: 'error' }, input,
  }).toString();
}

scenario('staff sign in with an authenticator code', async ({ page, signIn }) => {
  const org = cli(['user', 'list']).split('\n').find((l) => l.startsWith(CLINICIAN + ' ')).trim().split(/\s+/)[2];
  const password = 'a long clinician password 4 mfa';
  cli(['user', 'add', 'mfa-clinician', '--role', 'clinician', '--organization', org, '--password-stdin'], `${password}\n`);
  const tryCode = async (code) => {
    await page.goto(`${BASE}/`);
    await page.getByLabel('User name').fill('mfa-clinician');
    await page.getByLabel('Password').fill(password);
    await page.getByLabel(/Authenticator code/).fill(code);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  // Not enrolled yet: refused, in plain words.
  await tryCode('');
  check((await page.locator('.error').innerText()).includes('authenticator'), 'an account without an authenticator is refused');
  const secret = cli(['user', 'enrol-mfa', 'mfa-clinician']).match(/secret \(base32\): (\S+)/)[1];
  // Without the code, or with a wrong one: refused.
  await tryCode('');
  check(await page.getByRole('heading', { name: 'Sign in' }).count() === 1, 'no code: still the sign-in page');
  const right = totp(secret);
  await tryCode(right === '000000' ? '111111' : '000000');
  check(await page.getByRole('heading', { name: 'Sign in' }).count() === 1, 'a wrong code: still the sign-in page');
  await tryCode(totp(secret));
  check(await page.getByRole('heading', { name: 'Welcome, mfa-clinician' }).count() === 1, `with the code: ${page.url()}`);
});

scenario('signing out ends the session', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.goto(`${BASE}/patients`);
  check(await page.getByRole('heading', { name: 'Sign in' }).count() === 1, `after sign-out: ${page.url()}`);
});

scenario("today's schedule lists my appointments in time order, each linking to the chart", async ({ page, signIn }) => {
  // The clinician's practitioner, as their account names it; today as the server counts
  // it (UTC), and times in UTC as the page shows them.
  const person = cli(['user', 'list']).split('\n').find((l) => l.startsWith(CLINICIAN + ' ')).trim().split(/\s+/)[3];
  check(person.startsWith('Practitioner/'), `the demo clinician is ${person}`);
  const today = new Date().toISOString().slice(0, 10);
  const appointments = entries(await fhir(CLINICIAN, `Appointment?actor=${person}&date=${today}&_count=100`))
    .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  check(appointments.length > 0, 'the demo clinician has appointments today');
  const patients = new Map(entries(await fhir(CLINICIAN, 'Patient?_count=100')).map((p) => [`Patient/${p.id}`, p]));
  const hm = (t) => new Date(t).toISOString().slice(11, 16);
  const want = appointments.map((a) => {
    const ref = a.participant.map((x) => x.actor?.reference).find((r) => r?.startsWith('Patient/'));
    return { time: a.end ? `${hm(a.start)}–${hm(a.end)}` : hm(a.start), name: nameOf(patients.get(ref)), ref };
  });
  await signIn(CLINICIAN);
  await page.getByRole('link', { name: "Open today's schedule" }).click();
  check(new URL(page.url()).pathname === '/schedule', `the home page opens the schedule: ${page.url()}`);
  await visit(page, '/schedule', { shot: 'schedule' });
  const rows = await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    time: tr.cells[0].innerText.trim(), name: tr.cells[1].innerText.trim(),
  })));
  const got = JSON.stringify(rows);
  const expected = JSON.stringify(want.map(({ time, name }) => ({ time, name })));
  check(got === expected, `schedule ${got} vs FHIR ${expected}`);
  // A patient's name opens their chart.
  await page.locator('tbody tr').first().getByRole('link', { name: want[0].name }).click();
  check(new URL(page.url()).pathname === `/patients/${want[0].ref.slice('Patient/'.length)}`, `the row links to ${page.url()}`);
  check(await page.getByRole('heading', { level: 1 }).innerText() === want[0].name, 'the chart of the first patient of the day');
});

// ---------------------------------------------------------------------------------
/// The newest `rtype` of patient `pid` as `user` sees it through FHIR.
async function newest(user, rtype, query) {
  return entries(await fhir(user, `${rtype}?${query}&_sort=-_lastUpdated&_count=1`))[0];
}
const formToken = (page) => page.locator('main input[name=csrf]').first().inputValue();

scenario('a clinician writes into the chart, and a refusal shows next to its field', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  const [p] = entries(await fhir(CLINICIAN, 'Patient?_count=1'));
  const vitalsBefore = (await fhir(CLINICIAN, `Observation?patient=${p.id}&category=vital-signs&_summary=count`)).total;
  await page.goto(`${BASE}/patients/${p.id}`);
  await page.getByRole('link', { name: 'Record vital signs' }).click();
  await visit(page, page.url().replace(BASE, ''));
  // A word where a number goes: records refuses it, the page says so at the field, nothing is saved.
  await page.getByLabel('Systolic').fill('128');
  await page.getByLabel('Diastolic').fill('eighty');
  await page.getByLabel('Heart rate').fill('fast');
  await page.getByRole('button', { name: 'Save vital signs' }).click();
  check((await page.locator('#e-diastolic').innerText()).includes('Enter a number'), 'the diastolic refusal is next to its field');
  check((await page.locator('#e-heart_rate').innerText()).includes('Enter a number'), 'every refused field is named at once');
  check(await page.getByLabel('Diastolic').getAttribute('aria-invalid') === 'true', 'the field is marked invalid');
  check(await page.getByLabel('Systolic').inputValue() === '128', 'what was typed is kept');
  await axeHere(page, 'vital signs form with refusals');
  await shoot(page, 'form-refusal');
  const vitalsAfterRefusal = (await fhir(CLINICIAN, `Observation?patient=${p.id}&category=vital-signs&_summary=count`)).total;
  check(vitalsAfterRefusal === vitalsBefore, `a refused form saved something: ${vitalsBefore} → ${vitalsAfterRefusal}`);
  await page.getByLabel('Diastolic').fill('82');
  await page.getByLabel('Heart rate').fill('64');
  await page.getByRole('button', { name: 'Save vital signs' }).click();
  check((await page.locator('.saved').innerText()).includes('saved'), 'back on the chart, saved');
  const bp = await newest(CLINICIAN, 'Observation', `patient=${p.id}&code=http://loinc.org|85354-9`);
  const sys = bp.component.find((c) => c.code.coding[0].code === '8480-6').valueQuantity;
  const dia = bp.component.find((c) => c.code.coding[0].code === '8462-4').valueQuantity;
  check(sys.value === 128 && dia.value === 82 && sys.code === 'mm[Hg]', `stored BP ${sys.value}/${dia.value} ${sys.code}`);
  const hr = await newest(CLINICIAN, 'Observation', `patient=${p.id}&code=http://loinc.org|8867-4`);
  check(hr.valueQuantity.value === 64, `stored heart rate ${hr.valueQuantity.value}`);
  check((await fhir(CLINICIAN, `Observation?patient=${p.id}&category=vital-signs&_summary=count`)).total === vitalsBefore + 2, 'two observations written');
  // The chart shows the new values, dated today, from the clinician's organization (its Provenance).
  const prov = entries(await fhir(CLINICIAN, `Provenance?target=Observation/${hr.id}`))[0];
  check(prov?.agent?.[0]?.onBehalfOf?.reference?.startsWith('Organization/'), 'a Provenance names the organization');
  const org = await fhir(CLINICIAN, prov.agent[0].onBehalfOf.reference);
  const hrRow = page.locator('#s-vitals ~ ul li').filter({ hasText: 'Heart rate' });
  check((await hrRow.innerText()).includes(org.name), `the heart rate row names ${org.name}: ${await hrRow.innerText()}`);

  // A problem.
  await page.getByRole('link', { name: 'Add a problem' }).click();
  await visit(page, page.url().replace(BASE, ''));
  await page.getByLabel(/^Problem/).fill('Seasonal allergic rhinitis');
  // A browser without a date picker lets any text through: the date is records' to refuse.
  await page.getByLabel('Onset date').evaluate((e) => { e.type = 'text'; });
  await page.getByLabel('Onset date').fill('2024-02-30');
  await page.getByRole('button', { name: 'Add the problem' }).click();
  check((await page.locator('#e-onset').innerText()).includes('Enter a date'), 'an impossible date is refused at its field');
  await page.getByLabel('Onset date').evaluate((e) => { e.type = 'text'; });
  await page.getByLabel('Onset date').fill('2024-03-01');
  await page.getByRole('button', { name: 'Add the problem' }).click();
  const cond = await newest(CLINICIAN, 'Condition', `patient=${p.id}`);
  check(cond.code.text === 'Seasonal allergic rhinitis' && cond.onsetDateTime === '2024-03-01', `stored problem ${JSON.stringify(cond.code)}`);
  check((await page.locator('#s-problems ~ ul .what').allInnerTexts()).includes('Seasonal allergic rhinitis'), 'the problem is on the chart');

  // An allergy.
  await page.getByRole('link', { name: 'Add an allergy' }).click();
  await visit(page, page.url().replace(BASE, ''));
  await page.getByLabel(/^Substance/).fill('Penicillin V');
  await page.getByLabel('Kind of substance').selectOption('medication');
  await page.getByLabel('Risk of a severe reaction').selectOption('high');
  await page.getByLabel('Reaction', { exact: true }).fill('Hives');
  await page.getByLabel('Severity of the reaction').selectOption('moderate');
  await page.getByRole('button', { name: 'Add the allergy' }).click();
  const allergy = await newest(CLINICIAN, 'AllergyIntolerance', `patient=${p.id}`);
  check(allergy.code.text === 'Penicillin V' && allergy.criticality === 'high' && allergy.category[0] === 'medication'
    && allergy.reaction[0].manifestation[0].text === 'Hives' && allergy.reaction[0].severity === 'moderate', `stored allergy ${JSON.stringify(allergy)}`);
  check((await page.locator('#s-allergies ~ ul .what').allInnerTexts()).includes('Penicillin V'), 'the allergy is on the chart');

  // A note: markup typed into it is text, not markup.
  await page.getByRole('link', { name: 'Write a note' }).click();
  await visit(page, page.url().replace(BASE, ''));
  await page.getByLabel(/^Kind of note/).selectOption('11506-3');
  await page.getByLabel('Title').fill('Follow-up visit');
  const noteText = 'Feels better.\nBP 128/82. <script>alert(1)</script> Review in 3 months.';
  await page.getByLabel(/^Note/).fill(noteText);
  await page.getByRole('button', { name: 'Save the note' }).click();
  const doc = await newest(CLINICIAN, 'DocumentReference', `patient=${p.id}`);
  check(Buffer.from(doc.content[0].attachment.data, 'base64').toString() === noteText, 'the note is stored as typed');
  await page.locator('#s-documents ~ ul').getByRole('link', { name: 'Follow-up visit' }).first().click();
  await visit(page, page.url().replace(BASE, ''));
  check((await page.locator('.note-text').innerText()) === noteText, 'the note reads as typed');
  check(await page.locator('main script').count() === 0, 'no script reached the page');

  // A prescription: from the record's own medications when it has some, else free text.
  await page.goto(`${BASE}/patients/${p.id}/add/prescription`);
  await visit(page, page.url().replace(BASE, ''));
  const known = entries(await fhir(CLINICIAN, `MedicationRequest?patient=${p.id}&_count=200`)).filter((m) => m.medicationCodeableConcept);
  const options = (await page.getByLabel('Medication from the record').locator('option').allInnerTexts()).slice(1);
  const names = [...new Set(known.map((m) => m.medicationCodeableConcept.text ?? m.medicationCodeableConcept.coding[0].display))];
  check(JSON.stringify([...options].sort()) === JSON.stringify(names.sort()), `options ${JSON.stringify(options)} vs the record's ${JSON.stringify(names)}`);
  if (known.length > 0) {
    await page.getByLabel('Medication from the record').selectOption({ index: 1 });
  } else {
    await page.getByLabel('Or another medication').fill('Amoxicillin 500 MG Oral Capsule');
  }
  await page.getByLabel(/^Dosage instructions/).fill('1 capsule three times a day for 7 days');
  await page.getByLabel('Refills').fill('1.5');
  await page.getByRole('button', { name: 'Prescribe' }).click();
  check((await page.locator('#e-refills').innerText()).includes('whole number'), 'a fractional refill count is refused at its field');
  await page.getByLabel('Refills').fill('0');
  await page.getByRole('button', { name: 'Prescribe' }).click();
  const rx = await newest(CLINICIAN, 'MedicationRequest', `patient=${p.id}`);
  check(rx.dosageInstruction[0].text === '1 capsule three times a day for 7 days' && rx.intent === 'order' && rx.status === 'active', `stored prescription ${JSON.stringify(rx)}`);
  if (known.length > 0) {
    const first = known.find((m) => (m.medicationCodeableConcept.text ?? m.medicationCodeableConcept.coding[0].display) === [...options].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))[0]);
    check(JSON.stringify(rx.medicationCodeableConcept.coding) === JSON.stringify(first.medicationCodeableConcept.coding), 'coded as the record codes it');
  } else {
    check(rx.medicationCodeableConcept.text === 'Amoxicillin 500 MG Oral Capsule', 'free text medication');
  }
  check((await page.locator('#s-medications ~ ul .detail').allInnerTexts()).includes('1 capsule three times a day for 7 days'), 'the prescription is on the chart');
});

scenario('a write to a patient outside my care, or without the form token, saves nothing', async ({ page, signIn }) => {
  const NURSE = 'demo-nurse';
  const all = entries(await fhir('demo-system-admin', 'Patient?_count=100'));
  const mine = new Set(entries(await fhir(NURSE, 'Patient?_count=100')).map((p) => p.id));
  const other = all.find((p) => !mine.has(p.id));
  const before = (await fhir('demo-system-admin', 'Condition?_summary=count')).total;
  await signIn(NURSE);
  await page.goto(`${BASE}/patients/${[...mine][0]}/add/problem`);
  const token = await formToken(page);
  // An edited URL: the nurse's own valid token, another patient's id.
  const r = await page.request.post(`${BASE}/patients/${other.id}/add/problem`, { form: { csrf: token, problem: 'Injected problem' }, maxRedirects: 0 });
  check(r.status() === 403, `outside care: ${r.status()}`);
  const body = await r.text();
  check(body.includes('not in your organization') && !body.includes(other.name[0].family), 'the break-the-glass page, naming nobody');
  // No token.
  const r2 = await page.request.post(`${BASE}/patients/${[...mine][0]}/add/problem`, { form: { problem: 'Forged problem' }, maxRedirects: 0 });
  check(r2.status() === 403, `no token: ${r2.status()}`);
  const after = (await fhir('demo-system-admin', 'Condition?_summary=count')).total;
  check(after === before, `a refused form wrote a condition: ${before} → ${after}`);
  // The nurse's page reads are in the audit trail with the address they came from.
  const audit = entries(await fhir('demo-system-admin', 'AuditEvent?_count=50'))
    .filter((e) => e.agent?.[0]?.who?.identifier?.value === NURSE);
  check(audit.length > 0 && audit.every((e) => e.agent[0].network?.address === '127.0.0.1'), `audit of the nurse's pages: ${JSON.stringify(audit.map((e) => e.agent[0].network))}`);
});

// ---------------------------------------------------------------------------------
scenario('an app asks for access: sign-in and consent pages, then the code goes back to the app', async ({ page }) => {
  const redirect = 'http://127.0.0.1:9/callback';
  cli(['client', 'add', '--name', 'Growth <Chart> & Co', '--client-id', 'browser-test-app', '--redirect-uri', redirect]);
  // The app's end of the redirect, answered here (nothing listens on port 9).
  await page.route(`${redirect}**`, (r) => r.fulfill({ status: 200, contentType: 'text/plain', body: 'the app' }));
  const url = new URL(`${BASE}/auth/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: 'browser-test-app', redirect_uri: redirect,
    scope: 'launch/patient patient/Observation.rs', state: 's-123', aud: `${BASE}/fhir`,
    // RFC 7636 Appendix B's challenge.
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  })) url.searchParams.set(k, v);
  await visit(page, url.pathname + url.search, { shot: 'smart-sign-in' });
  check((await page.locator('main').innerText()).includes('Growth <Chart> & Co asks to access'), 'the app is named, as text');
  check(await page.locator('main script').count() === 0, 'the name is not markup');
  await page.getByLabel('User name').fill('demo-patient');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  check(await page.getByRole('heading', { name: 'Allow access?' }).count() === 1, 'the consent page follows');
  await axeHere(page, 'consent');
  await page.setViewportSize(PHONE);
  const consentOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(consentOverflow <= 0, `the consent page is ${consentOverflow}px wider than a 375px screen`);
  await page.setViewportSize(DESKTOP);
  await shoot(page, 'smart-consent');
  const text = await page.locator('main').innerText();
  check(text.includes('results and measurements in your record'), `the scope in words: ${text}`);
  const [me] = entries(await fhir('demo-patient', 'Patient?_count=1'));
  check(text.includes(nameOf(me)), `the consent page names the patient ${nameOf(me)}`);
  const [req] = await Promise.all([
    page.waitForRequest((r) => r.url().startsWith(redirect)),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  const back = new URL(req.url());
  check(back.searchParams.get('state') === 's-123', 'state comes back');
  check((back.searchParams.get('code') ?? '').length > 20, 'a code comes back');
  check(back.searchParams.get('iss') === `${BASE}/fhir`, `iss ${back.searchParams.get('iss')}`);
});

// ---------------------------------------------------------------------------------
// The patient portal and the clinician's inbox (issue 12).
const PATIENT = 'demo-patient';
async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
}
const medName = (m) => m.medicationCodeableConcept?.text ?? m.medicationCodeableConcept?.coding?.[0]?.display;
const myId = async () => entries(await fhir(PATIENT, 'Patient?_count=1'))[0];

scenario('a patient asks for refills; the clinician approves one and a nurse denies one; the patient sees both answers', async ({ page, signIn }) => {
  const me = await myId();
  const first = ((me.name ?? []).find((n) => n.use === 'official') ?? me.name[0]).given[0];
  await signIn(PATIENT);
  check(await page.getByRole('heading', { name: `Hello, ${first}` }).count() === 1, `the portal home greets ${first}`);
  await visit(page, '/', { shot: 'portal-home' });
  // The record's own pages in the portal's frame: the summary, a section, a report.
  await visit(page, `/portal/${me.id}`);
  check(await page.getByRole('heading', { level: 1 }).innerText() === nameOf(me), 'my record');
  check(await page.getByRole('link', { name: 'Record vital signs' }).count() === 0, 'no chart forms in the portal');
  await visit(page, `/portal/${me.id}/medications`);
  const [note] = entries(await fhir(PATIENT, `DocumentReference?patient=${me.id}&_count=1`));
  check(note, 'the demo patient has a note');
  await visit(page, `/portal/${me.id}/documents/${note.id}`);
  check(await page.locator('.document').count() === 1, 'a note opens in the portal');
  await page.goto(`${BASE}/`);
  await page.getByRole('link', { name: 'Medications and refills' }).click();
  check(new URL(page.url()).pathname === `/portal/${me.id}/refills`, `refills page ${page.url()}`);
  await visit(page, `/portal/${me.id}/refills`);
  // The active medications, as FHIR lists them for the patient.
  const active = entries(await fhir(PATIENT, `MedicationRequest?patient=${me.id}&status=active&_count=100`));
  check(active.length >= 2, 'the demo patient takes at least two medications');
  const shown = await page.locator('#h-active ~ ul > li > .what').allInnerTexts();
  check(JSON.stringify([...shown].sort()) === JSON.stringify(active.map(medName).sort()), `medications ${JSON.stringify(shown)} vs FHIR ${JSON.stringify(active.map(medName))}`);
  // A prescription with an open request (the demo's) offers no second one.
  const open = entries(await fhir(PATIENT, `Task?patient=${me.id}&status=requested&_count=100`)).map((t) => t.focus?.reference);
  const requestable = active.filter((m) => !open.includes(`MedicationRequest/${m.id}`));
  for (const m of active) {
    const buttons = await page.getByRole('button', { name: `Request a refill of ${medName(m)}` }).count();
    check(buttons === (requestable.includes(m) ? 1 : 0), `${medName(m)}: ${buttons} request buttons`);
  }
  check(requestable.length >= 2, 'two prescriptions to ask about');
  const [a, b] = [...requestable].sort((x, y) => medName(x).localeCompare(medName(y)));
  for (const [m, note] of [[a, 'Running low, thank you'], [b, '']]) {
    const item = page.locator('#h-active ~ ul > li').filter({ hasText: medName(m) });
    if (note) await item.getByLabel('Note for your care team').fill(note);
    await item.getByRole('button', { name: `Request a refill of ${medName(m)}` }).click();
    check((await page.locator('.saved').innerText()).includes('refill request was sent'), 'sent');
  }
  // A Task in the record for each, owned by an organization.
  const tasks = entries(await fhir(PATIENT, `Task?patient=${me.id}&_count=100`));
  const taskOf = (m) => tasks.find((t) => t.focus?.reference === `MedicationRequest/${m.id}`);
  check(taskOf(a)?.status === 'requested' && taskOf(b)?.status === 'requested', `tasks ${JSON.stringify(tasks.map((t) => t.status))}`);
  check(taskOf(a).owner.reference.startsWith('Organization/'), 'owned by an organization');
  check(await page.getByRole('button', { name: `Request a refill of ${medName(a)}` }).count() === 0, 'no second request while one is open');
  await signOut(page);

  // The clinician's inbox lists both; approve the first.
  await signIn(CLINICIAN);
  await page.getByRole('link', { name: 'Inbox' }).click();
  await visit(page, '/inbox', { shot: 'inbox' });
  const rows = page.locator('#h-refills ~ ul > li');
  check((await rows.filter({ hasText: medName(a) }).count()) === 1 && (await rows.filter({ hasText: medName(b) }).count()) === 1, 'both requests are in the inbox');
  check((await rows.filter({ hasText: medName(a) }).innerText()).includes('Running low, thank you'), 'with the note');
  await rows.filter({ hasText: medName(a) }).getByRole('button', { name: /^Approve the refill/ }).click();
  check((await page.locator('.saved').innerText()).startsWith('Approved'), 'approved');
  const done = entries(await fhir(CLINICIAN, `Task?patient=${me.id}&focus=MedicationRequest/${a.id}&_count=10`))[0];
  check(done.status === 'completed', `task ${done.status}`);
  const rx = await fhir(CLINICIAN, done.output[0].valueReference.reference);
  check(rx.priorPrescription.reference === `MedicationRequest/${a.id}` && rx.status === 'active', `the new prescription ${JSON.stringify(rx.priorPrescription)}`);
  await signOut(page);

  // A nurse may not approve but denies the second with a reason.
  await signIn('demo-nurse');
  await page.goto(`${BASE}/inbox`);
  const row = page.locator('#h-refills ~ ul > li').filter({ hasText: medName(b) });
  check(await row.getByRole('button', { name: /^Approve/ }).count() === 0, 'a nurse is not offered approval');
  await row.getByLabel(/Reason, if you deny it/).fill('Please book a review visit first');
  await row.getByRole('button', { name: 'Deny' }).click();
  check((await page.locator('.saved').innerText()).startsWith('Not approved'), 'denied');
  await signOut(page);

  // The patient sees both answers.
  await signIn(PATIENT);
  await page.goto(`${BASE}/portal/${me.id}/refills`);
  const answers = page.locator('#h-requests ~ ul > li');
  check((await answers.filter({ hasText: medName(a) }).innerText()).includes('Approved'), 'the approval is shown');
  const denied = await answers.filter({ hasText: medName(b) }).innerText();
  check(denied.includes('Not approved') && denied.includes('Please book a review visit first'), `the denial and its reason: ${denied}`);
});

scenario('a patient and the clinician write to each other; unread counts follow on both sides', async ({ page, signIn }) => {
  const me = await myId();
  await signIn(PATIENT);
  await page.getByRole('link', { name: 'Messages' }).first().click();
  await visit(page, `/portal/${me.id}/messages`);
  // The choice of whom to write to: the organizations with the patient in care.
  const options = await page.getByLabel('To').locator('option').allInnerTexts();
  check(options.length >= 1, 'someone to write to');
  // A message without words is refused in a sentence, on a page that passes axe too.
  await page.getByLabel('Subject').fill('Empty');
  await page.getByLabel('Message', { exact: true }).evaluate((e) => e.removeAttribute('required'));
  await page.getByRole('button', { name: 'Send' }).click();
  check(await page.getByRole('heading', { name: 'The message was not sent' }).count() === 1, 'an empty message is refused');
  await axeHere(page, 'a refused form');
  await page.goto(`${BASE}/portal/${me.id}/messages`);
  const subject = 'When should I take my blood pressure pills?';
  await page.getByLabel('Subject').fill(subject);
  await page.getByLabel('Message', { exact: true }).fill('Morning or evening? <b>not bold</b>');
  await page.getByRole('button', { name: 'Send' }).click();
  check(await page.getByRole('heading', { level: 1 }).innerText() === subject, 'the new thread opens');
  const sent = await newest(PATIENT, 'Communication', `patient=${me.id}`);
  check(sent.payload[0].contentString === 'Morning or evening? <b>not bold</b>' && sent.recipient[0].reference.startsWith('Organization/'), `stored ${JSON.stringify(sent.recipient)}`);
  check(await page.locator('main b').count() === 0, 'markup in a message is text');
  await signOut(page);

  await signIn(CLINICIAN);
  await page.goto(`${BASE}/inbox`);
  const thread = page.locator('#h-messages ~ ul > li').filter({ hasText: subject });
  check((await thread.innerText()).includes('1 unread'), `the inbox counts it: ${await thread.innerText()}`);
  await thread.getByRole('link', { name: subject }).click();
  await visit(page, page.url().replace(BASE, ''));
  // Assign the thread to a colleague: the practitioners of the clinician's organization.
  const org = cli(['user', 'list']).split('\n').find((l) => l.startsWith(CLINICIAN + ' ')).trim().split(/\s+/)[2];
  const roles = await fhir(CLINICIAN, `PractitionerRole?organization=Organization/${org}&active=true&_include=PractitionerRole:practitioner&_count=200`);
  const colleagues = (roles.entry ?? []).map((e) => e.resource).filter((r) => r.resourceType === 'Practitioner');
  check(colleagues.length >= 1, 'the organization has a practitioner to assign to');
  const offered = (await page.getByLabel('Assign to').locator('option').allInnerTexts()).slice(1);
  check(JSON.stringify([...offered].sort()) === JSON.stringify(colleagues.map(nameOf).sort()), `colleagues ${JSON.stringify(offered)} vs FHIR ${JSON.stringify(colleagues.map(nameOf))}`);
  await page.getByLabel('Assign to').selectOption({ label: nameOf(colleagues[0]) });
  await page.getByRole('button', { name: 'Assign' }).click();
  check((await page.locator('main').innerText()).includes(`Assigned to ${nameOf(colleagues[0])}`), 'assigned');
  const first = await fhir(CLINICIAN, `Communication/${sent.id}`);
  check(first.recipient.some((r) => r.reference === `Practitioner/${colleagues[0].id}`), `stored: ${JSON.stringify(first.recipient)}`);
  await page.getByLabel('Your reply').fill('In the morning, with breakfast.');
  await page.getByRole('button', { name: 'Send reply' }).click();
  check((await page.locator('.message').allInnerTexts()).some((t) => t.includes('In the morning, with breakfast.')), 'the reply is in the thread');
  await page.goto(`${BASE}/inbox`);
  check(await page.locator('#h-messages ~ ul > li').filter({ hasText: subject }).count() === 0, 'read: no longer unread in the inbox');
  const reply = await newest(CLINICIAN, 'Communication', `patient=${me.id}`);
  check(reply.recipient[0].reference === `Patient/${me.id}` && reply.partOf[0].reference === `Communication/${sent.id}`, `the reply ${JSON.stringify(reply.partOf)}`);
  await signOut(page);

  // Unread for the patient, as FHIR counts it: messages to them not yet received.
  const unread = async () => (await fhir(PATIENT, `Communication?patient=${me.id}&recipient=Patient/${me.id}&received:missing=true&_summary=count`)).total;
  const words = (n) => (n === 0 ? 'No unread messages' : n === 1 ? '1 unread message' : `${n} unread messages`);
  const before = await unread();
  check(before >= 1, 'the answer is unread');
  await signIn(PATIENT);
  check((await page.locator('#h-messages ~ p').innerText()).includes(words(before)), `the home page counts ${before}`);
  await page.goto(`${BASE}/portal/${me.id}/messages`);
  check((await page.locator('#h-threads ~ ul > li').filter({ hasText: subject }).innerText()).includes('1 unread'), 'the thread counts it');
  await page.getByRole('link', { name: subject }).click();
  await visit(page, page.url().replace(BASE, ''), { shot: 'message-thread' });
  check(await unread() === before - 1, 'opening the thread read its one message');
  await page.goto(`${BASE}/`);
  check((await page.locator('#h-messages ~ p').innerText()).includes(words(before - 1)), 'the home page follows');
});

scenario("the patient's results trend and access log: a clinician's visit and a break-the-glass, in plain words", async ({ page, signIn }) => {
  // A patient outside the demo organization's care (as its front desk sees it: the
  // front desk never breaks the glass), with an account of their own.
  const all = entries(await fhir('demo-system-admin', 'Patient?_count=100'));
  const mine = new Set(entries(await fhir('demo-front-desk', 'Patient?_count=100')).map((p) => p.id));
  const other = all.find((p) => !mine.has(p.id));
  const password = 'a long patient password for the log';
  cli(['user', 'add', 'log-patient', '--role', 'patient', '--person', `Patient/${other.id}`, '--password-stdin'], `${password}\n`);
  // The nurse opens the record in an emergency.
  const reason = 'Unconscious on arrival, no family reachable';
  await signIn('demo-nurse');
  await page.goto(`${BASE}/patients/${other.id}`);
  await page.getByLabel(/Reason/).fill(reason);
  await page.getByRole('button', { name: 'Open the record' }).click();
  check(await page.getByRole('heading', { level: 1 }).innerText() === nameOf(other), 'the nurse sees the chart');
  await signOut(page);
  const nurseOrg = cli(['user', 'list']).split('\n').find((l) => l.startsWith('demo-nurse ')).trim().split(/\s+/)[2];
  const orgName = (await fhir('demo-system-admin', `Organization/${nurseOrg}`)).name;

  await page.goto(`${BASE}/`);
  await page.getByLabel('User name').fill('log-patient');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // Results over time: the first kind of measurement, as a chart.
  await page.getByRole('link', { name: 'Results over time' }).click();
  await visit(page, page.url().replace(BASE, ''), { shot: 'portal-trend' });
  check(await page.locator('figure.chart svg').count() === 1, 'a trend chart');
  await page.getByRole('link', { name: 'Who looked' }).click();
  await visit(page, `/portal/${other.id}/access-log`, { shot: 'access-log' });
  const emergency = page.locator('tr.emergency');
  check(await emergency.count() >= 1, 'the break-the-glass entry is highlighted');
  const text = await emergency.first().innerText();
  check(text.includes('demo-nurse') && text.includes(reason) && text.includes(orgName), `emergency row: ${text}`);
  const rows = await page.locator('tbody tr').allInnerTexts();
  check(rows.some((r) => r.includes('demo-nurse') && r.includes('Opened your details')), 'the nurse opening the record is listed');
  check(!rows.some((r) => r.includes('log-patient') || r.includes('You')), 'own visits are left out by default');
});

scenario('a patient books, the clinic confirms, the patient moves one appointment and cancels another', async ({ page, signIn }) => {
  const me = await myId();
  await signIn(PATIENT);
  await page.getByRole('link', { name: 'Appointments' }).first().click();
  await visit(page, `/portal/${me.id}/appointments`, { shot: 'booking' });
  // What is offered: the free future Slots, as the server lists them for the patient.
  const radios = page.locator('input[name=slot]');
  const offered = await radios.evaluateAll((rs) => rs.map((r) => r.value));
  check(offered.length > 0, 'free times are offered');
  const slots = await Promise.all(offered.slice(0, 40).map((id) => fhir('demo-system-admin', `Slot/${id}`)));
  check(slots.every((sl) => sl.status === 'free' && Date.parse(sl.start) > Date.now()), 'every offered time is a free future Slot');
  const labelOf = async (id) => page.locator(`label[for="slot-${id}"]`).innerText();
  const labels = await Promise.all(offered.map(labelOf));
  const direct = offered.find((_, i) => !labels[i].includes('the clinic confirms'));
  const confirmFirst = offered.filter((_, i) => labels[i].includes('the clinic confirms')).slice(0, 1);
  check(direct && confirmFirst.length === 1, 'times booked at once and times the clinic confirms are offered');
  // Book one at once.
  await page.locator(`#slot-${direct}`).check();
  await page.getByLabel('What is it about?').fill('Sore knee after running');
  await page.getByRole('button', { name: 'Book this time' }).click();
  check((await page.locator('.saved').innerText()).startsWith('Booked'), 'booked');
  check((await fhir('demo-system-admin', `Slot/${direct}`)).status === 'busy', 'the Slot is busy');
  const booked = entries(await fhir(PATIENT, `Appointment?patient=${me.id}&slot=Slot/${direct}&_count=5`));
  check(booked.length === 1 && booked[0].status === 'booked', `one booked Appointment: ${JSON.stringify(booked.map((a) => a.status))}`);
  check(await page.locator(`#slot-${direct}`).count() === 0, 'a booked time is no longer offered');
  // Book one the clinic confirms: it waits.
  await page.locator(`#slot-${confirmFirst[0]}`).check();
  await page.getByRole('button', { name: 'Book this time' }).click();
  check((await page.locator('.saved').innerText()).startsWith('Requested'), 'requested');
  const proposed = entries(await fhir(PATIENT, `Appointment?patient=${me.id}&slot=Slot/${confirmFirst[0]}&_count=5`))[0];
  check(proposed.status === 'proposed', `waiting: ${proposed.status}`);
  check((await page.locator('#h-upcoming ~ ul > li').allInnerTexts()).some((t) => t.includes('Waiting for the clinic to confirm')), 'the list says it waits');
  await signOut(page);

  // The clinic confirms it from the inbox.
  await signIn(CLINICIAN);
  await page.goto(`${BASE}/inbox`);
  const req = page.locator('#h-appointments ~ ul > li').filter({ hasText: nameOf(me) });
  check(await req.count() >= 1, 'the request is in the inbox');
  await req.first().getByRole('button', { name: /^Confirm/ }).click();
  check((await page.locator('.saved').innerText()).startsWith('Confirmed'), 'confirmed');
  check((await fhir(CLINICIAN, `Appointment/${proposed.id}`)).status === 'booked', 'booked after confirmation');
  await signOut(page);

  // The patient moves the first appointment to another time, then cancels the second.
  await signIn(PATIENT);
  await page.goto(`${BASE}/portal/${me.id}/appointments`);
  await page.getByRole('link', { name: /^Change the time of Sore knee after running/ }).click();
  await visit(page, page.url().replace(BASE, ''));
  const later = (await page.locator('input[name=slot]').evaluateAll((rs) => rs.map((r) => r.value)))
    .find((id) => id !== direct && id !== confirmFirst[0]);
  const laterLabel = await labelOf(later);
  check(!laterLabel.includes('the clinic confirms'), 'moved to a time booked at once');
  await page.locator(`#slot-${later}`).check();
  await page.getByRole('button', { name: 'Move to this time' }).click();
  check((await page.locator('.saved').innerText()).startsWith('Moved'), 'moved');
  check((await fhir('demo-system-admin', `Slot/${direct}`)).status === 'free', 'the old time is free again');
  check((await fhir('demo-system-admin', `Slot/${later}`)).status === 'busy', 'the new time is taken');
  check((await fhir(PATIENT, `Appointment/${booked[0].id}`)).status === 'cancelled', 'the old appointment is cancelled');
  const row = page.locator('#h-upcoming ~ ul > li').filter({ hasText: 'Blood pressure check' });
  await row.getByLabel('Reason for cancelling').fill('Feeling better');
  await row.getByRole('button', { name: /^Cancel/ }).click();
  check((await page.locator('.saved').innerText()).startsWith('Cancelled'), 'cancelled');
  const gone = await fhir(PATIENT, `Appointment/${proposed.id}`);
  check(gone.status === 'cancelled' && gone.cancelationReason?.text === 'Feeling better', `cancelled with the reason: ${JSON.stringify(gone.cancelationReason)}`);
  check((await fhir('demo-system-admin', `Slot/${confirmFirst[0]}`)).status === 'free', 'its time is free again');
});

scenario("a patient stops an organization seeing the record: its clinician's next request gets no data; undoing restores it", async ({ page, signIn }) => {
  const me = await myId();
  const org = cli(['user', 'list']).split('\n').find((l) => l.startsWith(CLINICIAN + ' ')).trim().split(/\s+/)[2];
  const orgName = (await fhir('demo-system-admin', `Organization/${org}`)).name;
  // The reason shown is the record's own: its visits there, counted from FHIR.
  const visits = entries(await fhir(PATIENT, `Encounter?patient=${me.id}&service-provider=Organization/${org}&_count=1000`));
  await signIn(PATIENT);
  await page.getByRole('link', { name: 'Sharing' }).click();
  await visit(page, `/portal/${me.id}/sharing`, { shot: 'sharing' });
  const row = page.locator('.entries > li').filter({ hasText: orgName });
  const text = await row.innerText();
  check(text.includes('Can see the record') && text.includes(`${visits.length} visits`), `the row says why: ${text}`);
  await row.getByRole('button', { name: `Stop ${orgName} seeing the record` }).click();
  check((await page.locator('.saved').innerText()).startsWith('Saved'), 'saved');
  const consent = entries(await fhir(PATIENT, `Consent?patient=${me.id}&status=active&_count=10`))
    .find((c) => c.provision?.actor?.[0]?.reference?.reference === `Organization/${org}`);
  check(consent?.provision?.type === 'deny', `a denying Consent: ${JSON.stringify(consent?.provision)}`);
  await signOut(page);
  await signIn(CLINICIAN);
  const r = await page.request.get(`${BASE}/patients/${me.id}`);
  check(r.status() === 403 && !(await r.text()).includes(me.name[0].family), `the clinician after the denial: ${r.status()}`);
  await signOut(page);
  await signIn(PATIENT);
  await page.goto(`${BASE}/portal/${me.id}/sharing`);
  await page.locator('.entries > li').filter({ hasText: orgName }).getByRole('button', { name: `Undo my choice for ${orgName}` }).click();
  check((await fhir(PATIENT, `Consent/${consent.id}`)).status === 'inactive', 'the choice is withdrawn');
  await signOut(page);
  await signIn(CLINICIAN);
  const r2 = await page.request.get(`${BASE}/patients/${me.id}`);
  check(r2.status() === 200, `the clinician after undoing: ${r2.status()}`);
});

scenario('a patient downloads the record as FHIR JSON, as a C-CDA summary and as a printable page', async ({ page, signIn }) => {
  const me = await myId();
  // $everything through the FHIR API, as the patient: every page of it.
  const want = [];
  let next = `Patient/${me.id}/$everything?_count=1000`;
  while (next) {
    const b = await fhir(PATIENT, next);
    want.push(...entries(b));
    const link = (b.link ?? []).find((l) => l.relation === 'next');
    next = link ? link.url.replace(`${BASE}/fhir/`, '') : null;
  }
  await signIn(PATIENT);
  await page.getByRole('link', { name: 'Download or print the record' }).click();
  await visit(page, `/portal/${me.id}/download`, { shot: 'download' });
  const r = await page.request.get(`${BASE}/portal/${me.id}/download/record.json`);
  check(r.status() === 200 && (r.headers()['content-disposition'] ?? '').startsWith('attachment'), `download: ${r.status()} ${r.headers()['content-disposition']}`);
  const bundle = await r.json();
  const key = (x) => `${x.resourceType}/${x.id}`;
  const got = new Set(bundle.entry.map((e) => key(e.resource)));
  check(bundle.resourceType === 'Bundle' && bundle.type === 'collection', 'a FHIR collection Bundle');
  check(got.size === want.length && want.every((x) => got.has(key(x))), `the file holds $everything: ${got.size} vs ${want.length}`);
  // The C-CDA summary: a CDA document naming the patient, with every immunization's CVX
  // code and every active problem's SNOMED code that $everything gives.
  const x = await page.request.get(`${BASE}/portal/${me.id}/download/record.xml`);
  check(x.status() === 200 && (x.headers()['content-disposition'] ?? '').startsWith('attachment'), `summary download: ${x.status()} ${x.headers()['content-disposition']}`);
  const xml = await x.text();
  check(xml.includes('<ClinicalDocument') && xml.includes(me.name[0].family), 'the summary is a CDA document naming the patient');
  const codes = (type, system) => want.filter((r) => r.resourceType === type)
    .flatMap((r) => ((type === 'Immunization' ? r.vaccineCode : r.code)?.coding ?? []).filter((c) => c.system === system).map((c) => c.code));
  const cvx = codes('Immunization', 'http://hl7.org/fhir/sid/cvx');
  const snomed = codes('Condition', 'http://snomed.info/sct');
  check(cvx.length + snomed.length > 0 && [...cvx, ...snomed].every((c) => xml.includes(`code="${c}"`)), `the summary holds every immunization and problem code: ${cvx.length} CVX, ${snomed.length} SNOMED`);
  await page.goto(`${BASE}/portal/${me.id}/download`);
  await page.getByRole('link', { name: 'Open the printable record' }).click();
  await visit(page, `/portal/${me.id}/print`, { shot: 'printable-record' });
  check(await page.getByRole('heading', { level: 1 }).innerText() === `Health record of ${nameOf(me)}`, 'the printable page names the patient');
  const active = entries(await fhir(PATIENT, `MedicationRequest?patient=${me.id}&status=active&_count=100`));
  const text = await page.locator('article').innerText();
  check(active.every((m) => text.includes(medName(m))), 'every active medication is on the printable page');
  await page.emulateMedia({ media: 'print' });
  check(await page.locator('header.top').isHidden(), 'the page header is not printed');
  await page.emulateMedia({ media: 'screen' });
});

/// A FHIR write as `user` (a token from the CLI, as `fhir` reads).
async function fhirWrite(user, method, pathAndQuery, body) {
  await fhir(user, 'metadata').catch(() => {});
  const r = await fetch(`${BASE}/fhir/${pathAndQuery}`, {
    method,
    headers: { authorization: `Bearer ${tokens[user]}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${pathAndQuery} as ${user}: ${r.status} ${await r.text()}`);
  return r.json();
}

scenario("a parent acts for a child; a 15-year-old's confidential result stays private to them; revoking ends access", async ({ page, signIn }) => {
  // The demo proxy looks after the youngest demo patient.
  const [child] = entries(await fhir('demo-system-admin', 'Patient?_sort=-birthdate&_count=1'));
  await signIn('demo-proxy');
  const listed = await page.locator('.entries .what').allInnerTexts();
  check(JSON.stringify(listed) === JSON.stringify([nameOf(child)]), `the proxy looks after ${JSON.stringify(listed)}`);
  await visit(page, '/', { shot: 'proxy-home' });
  await page.getByRole('link', { name: nameOf(child) }).click();
  await visit(page, `/portal/${child.id}/home`);
  check((await page.locator('main').innerText()).includes('You are acting for'), 'the page says whose record it is');
  check(await page.getByRole('link', { name: 'Who looked' }).count() === 0, 'no access log for a proxy');
  await page.goto(`${BASE}/portal/${child.id}`);
  check(await page.getByRole('heading', { level: 1 }).innerText() === nameOf(child), 'the child\'s record opens');
  const other = entries(await fhir('demo-system-admin', 'Patient?_count=100')).find((p) => p.id !== child.id);
  const r = await page.request.get(`${BASE}/portal/${other.id}`);
  check(r.status() === 403, `another patient: ${r.status()}`);
  await signOut(page);

  // A 15-year-old with an ordinary and a confidential result, an account of their own,
  // and a parent they give access to from the portal.
  const born = new Date(); born.setUTCFullYear(born.getUTCFullYear() - 15); born.setUTCDate(born.getUTCDate() - 10);
  const teen = await fhirWrite('demo-system-admin', 'POST', 'Patient', {
    resourceType: 'Patient', name: [{ use: 'official', family: 'Okafor', given: ['Ada'] }],
    gender: 'female', birthDate: born.toISOString().slice(0, 10),
  });
  const obs = (code, text, security) => ({
    resourceType: 'Observation', status: 'final', ...(security ? { meta: { security } } : {}),
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code }], text }, subject: { reference: `Patient/${teen.id}` }, effectiveDateTime: '2026-11-02', valueString: 'Negative',
  });
  await fhirWrite('demo-system-admin', 'POST', 'Observation', obs('58410-2', 'Blood count'));
  await fhirWrite('demo-system-admin', 'POST', 'Observation', obs('21613-5', 'Sexual health screen',
    [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }]));
  const pw = 'a long password for the family test';
  cli(['user', 'add', 'ada-okafor', '--role', 'patient', '--person', `Patient/${teen.id}`, '--password-stdin'], `${pw}\n`);
  cli(['user', 'add', 'ada-parent', '--role', 'proxy', '--password-stdin'], `${pw}\n`);
  const signInAs = async (user) => {
    await page.goto(`${BASE}/`);
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(pw);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  await signInAs('ada-okafor');
  await page.getByRole('link', { name: 'Family access', exact: true }).click();
  await visit(page, `/portal/${teen.id}/proxies`);
  await page.getByLabel('Their name').fill('Chidi Okafor');
  await page.getByLabel('Their oxehr user name').fill('ada-parent');
  await page.getByLabel('How they are related').selectOption('PRN');
  await page.getByRole('button', { name: 'Give access' }).click();
  check((await page.locator('.saved').innerText()).startsWith('Granted'), 'granted');
  await page.goto(`${BASE}/portal/${teen.id}/results`);
  const own = await page.locator('tbody').innerText();
  check(own.includes('Blood count') && own.includes('Sexual health screen'), `the teen sees both: ${own}`);
  await signOut(page);

  await signInAs('ada-parent');
  check((await page.locator('.entries').innerText()).includes('Aged 12 to 17'), 'the home says what stays private');
  await page.goto(`${BASE}/portal/${teen.id}/results`);
  const theirs = await page.locator('main').innerText();
  check(theirs.includes('Blood count') && !theirs.includes('Sexual health screen'), `the parent sees only the ordinary result: ${theirs}`);
  await signOut(page);

  // The teen revokes; the parent's next request gets nothing.
  await signInAs('ada-okafor');
  await page.goto(`${BASE}/portal/${teen.id}/proxies`);
  await page.getByRole('button', { name: "Revoke Chidi Okafor's access" }).click();
  check((await page.locator('.saved').innerText()).startsWith('Revoked'), 'revoked');
  await signOut(page);
  await signInAs('ada-parent');
  check((await page.locator('main').innerText()).includes('No one has given you access yet'), 'the parent looks after no one');
  const gone = await page.request.get(`${BASE}/portal/${teen.id}/results`);
  check(gone.status() === 403 && !(await gone.text()).includes('Okafor'), `after revoking: ${gone.status()}`);
});

scenario('the portal and the inbox give no data to the wrong person', async ({ page, signIn }) => {
  const me = await myId();
  const all = entries(await fhir('demo-system-admin', 'Patient?_count=100'));
  const someone = all.find((p) => p.id !== me.id);
  await signIn(PATIENT);
  for (const path of ['', '/home', '/refills', '/messages', '/access-log', '/trend', '/medications', '/appointments', '/sharing', '/download', '/download/record.json', '/download/record.xml', '/print']) {
    const r = await page.request.get(`${BASE}/portal/${someone.id}${path}`);
    const body = await r.text();
    check(r.status() === 403 && !body.includes(someone.name[0].family), `another patient's ${path || 'record'}: ${r.status()}`);
  }
  // Another patient's thread, by id.
  const theirs = entries(await fhir('demo-system-admin', `Communication?patient=${someone.id}&_count=1`))[0];
  if (theirs) {
    const r = await page.request.get(`${BASE}/portal/${me.id}/messages/${theirs.id}`);
    check(r.status() === 403 || r.status() === 404, `another patient's thread: ${r.status()}`);
  }
  // A form of the portal posted without its token writes nothing.
  const before = (await fhir(PATIENT, `Task?patient=${me.id}&_summary=count`)).total;
  const [m] = entries(await fhir(PATIENT, `MedicationRequest?patient=${me.id}&status=active&_count=1`));
  const r = await page.request.post(`${BASE}/portal/${me.id}/refills`, { form: { medication: m.id }, maxRedirects: 0 });
  check(r.status() === 403, `no token: ${r.status()}`);
  check((await fhir(PATIENT, `Task?patient=${me.id}&_summary=count`)).total === before, 'nothing written');
  // The inbox is staff's, and each organization's own.
  const inbox = await page.request.get(`${BASE}/inbox`);
  check(inbox.status() === 403, `a patient opening the inbox: ${inbox.status()}`);
  await signOut(page);
  const otherOrg = entries(await fhir('demo-system-admin', 'Organization?_count=100'))
    .map((o) => o.id)
    .find((id) => id !== cli(['user', 'list']).split('\n').find((l) => l.startsWith(CLINICIAN + ' ')).trim().split(/\s+/)[2]);
  const password = 'a long password of another clinic';
  cli(['user', 'add', 'other-clinician', '--role', 'clinician', '--organization', otherOrg, '--no-mfa', '--password-stdin'], `${password}\n`);
  await page.goto(`${BASE}/`);
  await page.getByLabel('User name').fill('other-clinician');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.goto(`${BASE}/inbox`);
  const text = await page.locator('main').innerText();
  check(text.includes('No refill requests are waiting') && text.includes('No unread messages')
    && text.includes('No appointments are waiting'), `another organization's inbox: ${text}`);
  const r2 = await page.request.get(`${BASE}/portal/${me.id}`);
  check(r2.status() === 403, `staff opening the portal: ${r2.status()}`);
});

// ---------------------------------------------------------------------------------
scenario('incoming records: a registration from another system that may be a known patient is compared and merged; a message that could not be filed waits for the administrator', async ({ page, signIn }) => {
  // The demo's registration system registered, under its own number, a person the
  // practice knows (oxehr's demo: crates/oxehr/src/demo/exchange.rs).
  const [arrived] = entries(await fhir(CLINICIAN, 'Patient?identifier=DR-40417'));
  check(arrived, 'the demo registration arrived');
  const same = entries(await fhir(CLINICIAN, `Patient?family=${encodeURIComponent(arrived.name[0].family)}&birthdate=${arrived.birthDate}&_count=10`))
    .filter((p) => p.id !== arrived.id);
  check(same.length === 1, `one known patient of that name and birth date: ${same.length}`);
  const known = same[0];
  // The chart names where the arrival came from.
  await signIn(CLINICIAN);
  await visit(page, `/patients/${arrived.id}`, { shot: 'chart-hl7-source' });
  const sources = await page.locator('main').innerText();
  check(sources.includes('registration message (HL7 v2 ADT^A04)'), 'the chart names the HL7 message an entry came from');
  // The review page: the two records side by side, the clinician sees no message queue.
  await visit(page, '/review', { shot: 'review' });
  const pair = page.locator('article.dup-pair');
  check(await pair.count() === 1, `one pair listed: ${await pair.count()}`);
  const text = await pair.innerText();
  check(text.includes(nameOf(arrived).split(' ').pop()) && text.includes('DR-40417'), 'the arrived record is shown with its number');
  check(text.includes('date of birth') && text.includes('Almost certainly the same person'), `what agrees and how sure: ${text}`);
  check(await page.getByRole('heading', { name: 'Messages that could not be filed' }).count() === 0, 'the message queue is for administrators');
  await signOut(page);
  // The administrator sees the message that could not be filed, with its reason.
  await signIn('demo-system-admin');
  await visit(page, '/review', { shot: 'review-admin' });
  const held = await page.locator('#h-held ~ ul li').allInnerTexts();
  check(held.length === 1 && held[0].includes('ORU^R01') && held[0].includes('OBX'), `held: ${JSON.stringify(held)}`);
  await signOut(page);
  // The clinician merges them: one record, which holds the arrival's visit.
  await signIn(CLINICIAN);
  await page.goto(`${BASE}/review`);
  await page.getByRole('button', { name: `Merge into ${nameOf(known)}'s record` }).click();
  check((await page.locator('[role=status]').innerText()).includes('now one'), 'merged');
  const after = (await fhir(CLINICIAN, `Patient/${arrived.id}`));
  check(after.active === false && after.link?.[0]?.other?.reference === `Patient/${known.id}`, 'the arrival points to the known record');
  const visits = entries(await fhir(CLINICIAN, `Encounter?patient=${known.id}&_count=200`));
  check(visits.some((e) => JSON.stringify(e).includes('DV-1001')), "the arrival's visit is on the known record");
  check(await page.locator('article.dup-pair').count() === 0, 'the pair left the list');
  // The merged-away chart says where its entries went.
  await visit(page, `/patients/${arrived.id}`, { shot: 'chart-merged' });
  await page.getByRole('link', { name: 'Open the record it was merged into' }).click();
  check(page.url().endsWith(`/patients/${known.id}`), `the link leads to the known record: ${page.url()}`);
});

scenario('the chart shows care due and risk scores with why; the worklist lists who is due; the portal says what is due', async ({ page, signIn }) => {
  await signIn(CLINICIAN);
  // A patient in my care with a gap open, as the FHIR API's $care-gaps says.
  const mine = entries(await fhir(CLINICIAN, 'Patient?_count=50'));
  let p = null;
  let open = [];
  for (const candidate of mine) {
    const gaps = await fhir(CLINICIAN, `Patient/${candidate.id}/$care-gaps?status=open-gap`);
    const issues = gaps.parameter[0].resource.entry.map((e) => e.resource).filter((r) => r.resourceType === 'DetectedIssue');
    if (issues.length > 0) { p = candidate; open = issues; break; }
  }
  check(p, 'a demo patient in my care has a care gap open');
  await visit(page, `/patients/${p.id}`, { shot: 'chart-care-due' });
  const due = page.locator('.care-due .gap-open');
  check(await due.count() === open.length, `open gaps on the page ${await due.count()} vs the API ${open.length}`);
  const titles = await page.locator('.care-due .gap-open .what').allInnerTexts();
  for (const di of open) check(titles.includes(di.code.text), `the chart lists "${di.code.text}": ${JSON.stringify(titles)}`);
  // Why: the rule's reason, in the record's own words, and the guideline. The status it
  // opens with ("Due: ", "Due by 1 Dec 2026: ") is left out: the line shows it already.
  const first = page.locator('.care-due .gap-open').first();
  await first.locator('summary').click();
  const why = await first.locator('details').innerText();
  const firstDi = open.find((di) => di.code.text === (titles[0] ?? ''));
  const reason = firstDi.detail.replace(/^Due(?: by [^:]+)?: (.)/, (_, c) => c.toUpperCase());
  check(reason !== firstDi.detail, `an open gap's reason opens with its status: "${firstDi.detail}"`);
  check(why.includes(reason) && !why.includes('Due:'), `the reason "${reason}" in "${why}"`);
  const state = await first.locator('.gap-state').innerText();
  check(/^Due (since|by|now)/.test(state), `the status beside the title: "${state}"`);
  check(why.includes('Guideline'), 'the guideline is named');
  // Risk scores: the ones the API worked out, with their values.
  const scores = (await fhir(CLINICIAN, `Patient/${p.id}/$risk-scores`)).parameter ?? [];
  const part = (s, n) => s.part.find((x) => x.name === n);
  const computed = scores.filter((s) => part(s, 'status').valueCode === 'computed');
  const shown = await page.locator('.risk-scores li').allInnerTexts();
  for (const s of computed) {
    check(shown.some((t) => t.includes(part(s, 'title').valueString) && t.includes(part(s, 'display').valueString)),
      `the chart shows ${part(s, 'title').valueString} ${part(s, 'display').valueString}`);
  }
  // The worklist of that rule: the patient is on it, with the API's count of rows.
  const rule = (await fhir(CLINICIAN, `Patient/${p.id}/$care-gaps?status=open-gap`)).parameter[0].resource.entry
    .map((e) => e.resource).find((r) => r.resourceType === 'GuidanceResponse').moduleUri.split('care-gap-rule/')[1];
  const ruleId = rule.split('/')[0];
  const list = await fhir(CLINICIAN, `Patient/$care-gaps?rule=${ruleId}&_count=50`);
  const rows = (list.entry ?? []).filter((e) => e.resource.resourceType === 'DetectedIssue');
  await page.goto(`${BASE}/`);
  // The home page counts the patients due for each rule, as the worklist lists them.
  const everyone = (await fhir(CLINICIAN, `Patient/$care-gaps?rule=${ruleId}&_count=500`)).entry ?? [];
  const duePatients = new Set(everyone.filter((e) => e.resource.resourceType === 'DetectedIssue').map((e) => e.resource.patient.reference)).size;
  const ruleLine = await page.locator('.due-summary li').filter({ has: page.locator(`a[href="/care-due?rule=${ruleId}"]`) }).innerText();
  check(ruleLine.endsWith(duePatients === 1 ? ': 1 patient' : `: ${duePatients} patients`),
    `the home page counts ${duePatients} due: "${ruleLine}"`);
  await shoot(page, 'home-care-due');
  await page.getByRole('link', { name: 'Open the list' }).click();
  await page.getByLabel('Care').selectOption(ruleId);
  await page.getByRole('button', { name: 'Show' }).click();
  await visit(page, page.url().replace(BASE, ''), { shot: 'care-due' });
  check(await page.locator('table.worklist tbody tr').count() === rows.length, `worklist rows vs the API's ${rows.length}`);
  check((await page.locator('table.worklist').innerText()).includes(nameOf(p)), `${nameOf(p)} is on the list`);
  await page.getByRole('link', { name: nameOf(p) }).first().click();
  check(page.url().endsWith(`/patients/${p.id}`), 'the list links to the chart');
  await signOut(page);
  // The patient's own portal: "Due for", in plain words, the same gaps.
  await signIn(PATIENT);
  const [me] = entries(await fhir(PATIENT, 'Patient?_count=1'));
  const myGaps = (await fhir(PATIENT, `Patient/${me.id}/$care-gaps`)).parameter[0].resource.entry
    .map((e) => e.resource).filter((r) => r.resourceType === 'DetectedIssue');
  await visit(page, `/portal/${me.id}`, { shot: 'portal-due-for' });
  if (myGaps.length > 0) {
    check(await page.getByRole('heading', { name: 'Due for' }).count() === 1, 'the portal says what is due');
    check(await page.locator('.risk-scores').count() === 0, 'risk scores are for the care team');
  }
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
