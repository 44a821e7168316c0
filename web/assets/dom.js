// Small DOM helpers shared by the wizard's modules. No framework: each step
// builds its nodes once and updates them in place, so focus and checkbox
// state survive live updates.

/** h('p', {class: 'x', onclick: f}, 'text', child) → element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    // Properties, not attributes, for the live state of form controls.
    else if (k === 'checked' || k === 'value' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace all children of el. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let counter = 0;
/** A document-unique id, for label/aria-* references. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

const numberFormat = new Intl.NumberFormat('en-US');
export const formatNumber = (n) => numberFormat.format(n);

/** The console domain of each partition (aws-rules.md, "Partitions"). */
export const CONSOLE_DOMAINS = {
  aws: 'console.aws.amazon.com',
  'aws-us-gov': 'console.amazonaws-us-gov.com',
  'aws-cn': 'console.amazonaws.cn',
};

export const PARTITION_NAMES = {
  aws: 'AWS (commercial)',
  'aws-us-gov': 'AWS GovCloud (US)',
  'aws-cn': 'AWS China',
};

/** A link that opens in a new tab and says so to screen readers. */
export function externalLink(href, text) {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text,
    h('span', { class: 'visually-hidden' }, ' (opens in a new tab)'));
}

/**
 * A Copy button for `getText()`. `what` names the copied thing for screen
 * readers ("Copy external ID"); the visible text stays "Copy". The result
 * is announced in the button's own live region, so no colour or icon is
 * the only signal.
 */
export function copyButton(what, getText) {
  const status = h('span', { class: 'copy-status', role: 'status' });
  const button = h('button', {
    type: 'button',
    class: 'copy',
    'aria-label': `Copy ${what}`,
    onclick: async () => {
      const ok = await copyText(getText());
      status.textContent = ok ? 'Copied' : 'Copy failed: select the text and copy it yourself';
      clearTimeout(button.timer);
      button.timer = setTimeout(() => { status.textContent = ''; }, 4000);
    },
  }, 'Copy');
  return h('span', { class: 'copy-group' }, button, status);
}

async function copyText(text) {
  // navigator.clipboard needs a secure context (https or localhost); the
  // textarea fallback covers plain-http deployments and older browsers.
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the fallback (permission denied, unfocused page)
  }
  const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  area.remove();
  return ok;
}

/** Minified-size bar of one policy against IAM's limit, with the numbers in text. */
export function sizeBar(size, limit, label) {
  const pct = Math.min(100, Math.round((size / limit) * 100));
  const over = size > limit;
  const fill = h('span', { class: `bar-fill${over ? ' over' : pct >= 90 ? ' near' : ''}` });
  // CSSOM, not a style attribute: a strict style-src CSP allows it.
  fill.style.width = `${pct}%`;
  return h('div', { class: 'size' },
    h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'size-text' },
      `${label}: ${formatNumber(size)} of ${formatNumber(limit)} characters (${pct}%)`,
      over ? ' — over the limit' : ''));
}

/** Pretty JSON for people; IAM ignores whitespace in sizes. */
export const pretty = (doc) => JSON.stringify(doc, null, 2);
