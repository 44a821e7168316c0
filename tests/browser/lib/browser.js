// Debian's Chromium driven by playwright-core, and the checks every step of
// the wizard gets: axe-core, horizontal overflow at 360 px, console errors,
// and a screenshot for docs/screenshots/.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT } from './server.js';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const SCREENSHOTS = path.join(ROOT, 'docs/screenshots');
export const WIDE = { width: 1000, height: 800 };
export const NARROW = { width: 360, height: 800 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Without the background-networking flags Chromium keeps dialling
    // Google's hosts, which this machine's closed network refuses.
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page that records console errors and uncaught exceptions. `allow`
 * lists patterns a test expects (e.g. the 422 of a refused role, which
 * Chromium reports as "Failed to load resource").
 */
export async function openPage(browser, { viewport = WIDE } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.errors = [];
  page.allow = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => page.errors.push(`exception: ${err.message}`));
  return { context, page };
}

export function assertNoConsoleErrors(page) {
  const unexpected = page.errors.filter((e) => !page.allow.some((re) => re.test(e)));
  assert.deepEqual(unexpected, [], 'console errors on the page');
}

/** axe-core on the whole page (shadow DOM included): no serious or critical violation. */
export async function axe(page, label) {
  // evaluate, not addScriptTag: the page's CSP (rightly) refuses inline scripts.
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE_SOURCE);
  const seen = page.errors.length;
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  // axe itself sets an inline style while it measures, which the page's CSP
  // refuses and reports; that report is the tool's, not the page's.
  page.errors.splice(seen, Infinity, ...page.errors.slice(seen).filter((e) => !/Applying inline style violates/.test(e)));
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  assert.deepEqual(bad, [], `axe violations on step "${label}"`);
}

/** Elements (shadow roots included) sticking out to the right of the viewport. */
export async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out = [];
    const walk = (root) => {
      for (const el of root.querySelectorAll('*')) {
        if (el.shadowRoot) walk(el.shadowRoot);
        if (el.closest('.visually-hidden')) continue;
        const r = el.getBoundingClientRect();
        if (r.width && r.right > width + 1) out.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
        // Text can stick out of a box that itself fits.
        for (const n of el.childNodes) {
          if (n.nodeType !== Node.TEXT_NODE || !n.textContent.trim()) continue;
          const range = document.createRange();
          range.selectNodeContents(n);
          const t = range.getBoundingClientRect();
          if (t.right > width + 1) out.push(`text "${n.textContent.trim().slice(0, 40)}" in ${el.tagName.toLowerCase()} right=${Math.round(t.right)}`);
        }
      }
    };
    walk(document);
    return { scrollWidth: document.documentElement.scrollWidth, width, out: out.slice(-5) };
  });
}

/**
 * The per-step check: axe at the current size, a screenshot, then the
 * same page at 360 px wide must not overflow (a second screenshot if
 * `narrowShot`). `show` is scrolled into view for the pictures.
 */
export async function audit(page, label, { show, narrowShot = false } = {}) {
  await page.evaluate(() => document.fonts.ready);
  await axe(page, label);
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Viewport-sized shots stay small; `show` picks what they should frame.
  if (show) await show.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SCREENSHOTS, `${label}.png`), caret: 'initial' });
  const before = page.viewportSize();
  await page.setViewportSize(NARROW);
  const o = await overflow(page);
  assert.ok(o.scrollWidth <= o.width && o.out.length === 0,
    `step "${label}" overflows at 360 px: scrollWidth ${o.scrollWidth} > ${o.width}; ${o.out.join(', ')}`);
  // Every step is checked at 360 px; only some are kept as pictures, to keep docs/ small.
  if (narrowShot) {
    if (show) await show.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, `${label}-360.png`), caret: 'initial' });
  }
  await page.setViewportSize(before);
}

/** The wizard's step heading (h3) once it reads `title`. */
export async function waitForStep(page, title) {
  await page.getByRole('heading', { level: 3, name: title, exact: true }).waitFor();
}
