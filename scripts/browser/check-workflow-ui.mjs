// Opens an event's workflow page in the Temporal Web UI with headless Debian
// Chromium, saves a full-page screenshot and fails unless the page shows the
// event code and the expected state. Run by ../browser-check.sh:
//
//   node check-workflow-ui.mjs <workflow page URL> <event code> <state> <screenshot.png> <dump dir>
//
// In UI 2.42.1 the static summary and the current details are on the
// workflow's "User Metadata" tab, each rendered in an <iframe>, so the text
// checked is the page's plus every frame's.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, code, state, screenshot, dumpDir] = process.argv.slice(2);
if (!dumpDir) {
  console.error('usage: node check-workflow-ui.mjs <url> <event code> <state> <screenshot.png> <dump dir>');
  process.exit(2);
}
const timeout = 30_000;

// launch() gives Chromium a fresh temporary --user-data-dir and removes it on close.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let text = '';
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.setDefaultTimeout(timeout);
  // Not 'networkidle': the UI keeps polling, so the network never goes quiet.
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.getByTestId('user-metadata-tab').click();

  const allText = async () => {
    const parts = [];
    for (const frame of page.frames()) parts.push(await frame.innerText('body').catch(() => ''));
    return parts.join('\n');
  };
  const eventRe = new RegExp(`\\bevent ${code.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'i');
  const stateRe = new RegExp(`State:\\s*${state}\\b`);
  const deadline = Date.now() + timeout;
  do {
    text = await allText();
    if (eventRe.test(text) && stateRe.test(text)) break;
    await page.waitForTimeout(500);
  } while (Date.now() < deadline);

  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true });
  fs.mkdirSync(dumpDir, { recursive: true });
  fs.writeFileSync(path.join(dumpDir, 'page.html'), await page.content());
  fs.writeFileSync(path.join(dumpDir, 'page.txt'), text);

  const missing = [];
  if (!eventRe.test(text)) missing.push(`the event code "${code}"`);
  if (!stateRe.test(text)) missing.push(`"State: ${state}"`);
  if (missing.length) {
    console.error(`FAIL: ${url} does not show ${missing.join(' or ')} within ${timeout / 1000}s`);
    console.error(`page text and DOM: ${dumpDir}/page.txt, page.html; screenshot: ${screenshot}`);
    process.exitCode = 1;
  } else {
    console.log(`ok: the workflow page shows event ${code} and State: ${state}; screenshot ${screenshot}`);
  }
} catch (err) {
  console.error(`FAIL: could not check ${url}: ${err.message.split('\n')[0]}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
