// The permission picker (products with nested integrations, each with its
// actions behind a disclosure) and the rendered-policy view (documents,
// Copy buttons, sizes against IAM's limit, the split into several policies).

import { h, fill, uid, copyButton, sizeBar, pretty, formatNumber } from './dom.js';

/** A button that shows and hides `panel`; the name says whose actions. */
function disclosure(visibleText, owner, panel) {
  const id = uid('actions');
  panel.id = id;
  panel.hidden = true;
  const button = h('button', {
    type: 'button',
    class: 'disclosure',
    'aria-expanded': 'false',
    'aria-controls': id,
    onclick: () => {
      const open = button.getAttribute('aria-expanded') !== 'true';
      button.setAttribute('aria-expanded', String(open));
      panel.hidden = !open;
    },
  }, visibleText, h('span', { class: 'visually-hidden' }, ` of ${owner}`));
  return button;
}

function actionList(bundle) {
  return h('ul', { class: 'actions' }, bundle.actions.map((a) => h('li', {}, h('code', {}, a))));
}

function actionsToggle(bundle) {
  const list = actionList(bundle);
  const n = bundle.actions.length;
  return [disclosure(`${n} ${n === 1 ? 'action' : 'actions'}`, bundle.name, list), list];
}

/**
 * Checkboxes for the catalog's products and integrations. An integration
 * needs its product: unticking a product unticks and disables its
 * integrations, and ticking it again brings back the ticks they had.
 * `onChange({products, integrations})` fires on every change.
 */
export class PermissionTree {
  constructor(catalog, initial, onChange) {
    this.onChange = onChange;
    this.products = new Set(initial.products);
    this.integrations = new Set(initial.integrations);
    this.boxes = []; // {box, kind, id, product}
    this.element = h('fieldset', { class: 'tree' },
      h('legend', {}, 'Products and integrations'),
      h('ul', { class: 'bundles' },
        this.coreItem(catalog.core),
        catalog.products.map((p) => this.productItem(p))));
    this.sync();
  }

  coreItem(core) {
    const [toggle, list] = actionsToggle(core);
    return h('li', { class: 'bundle core' },
      h('div', { class: 'row' }, h('span', { class: 'bundle-name' }, core.name), toggle),
      h('p', { class: 'desc' }, core.description),
      list);
  }

  checkbox(kind, bundle, product) {
    const id = uid(kind);
    const descId = uid('desc');
    const box = h('input', {
      type: 'checkbox', id, 'aria-describedby': descId,
      onchange: () => this.toggle(kind, bundle.id, box.checked),
    });
    this.boxes.push({ box, kind, id: bundle.id, product });
    const [toggle, list] = actionsToggle(bundle);
    return [
      h('div', { class: 'row' }, box, h('label', { for: id }, bundle.name), toggle),
      h('p', { class: 'desc', id: descId }, bundle.description),
      list,
    ];
  }

  productItem(p) {
    const integrations = p.integrations.length
      ? h('ul', { class: 'integrations', 'aria-label': `${p.name} integrations` },
        p.integrations.map((i) => h('li', { class: 'bundle integration' }, this.checkbox('integration', i, p.id))))
      : null;
    return h('li', { class: 'bundle product' }, this.checkbox('product', p, p.id), integrations);
  }

  toggle(kind, id, on) {
    const set = kind === 'product' ? this.products : this.integrations;
    if (on) set.add(id); else set.delete(id);
    this.sync();
    this.onChange(this.selection());
  }

  /** Reflect the sets in the boxes; integrations follow their product. */
  sync() {
    for (const { box, kind, id, product } of this.boxes) {
      if (kind === 'product') {
        box.checked = this.products.has(id);
        box.disabled = this.locked;
      } else {
        const productOn = this.products.has(product);
        box.checked = productOn && this.integrations.has(id);
        box.disabled = this.locked || !productOn;
      }
    }
  }

  setLocked(locked) {
    this.locked = locked;
    this.sync();
  }

  selection() {
    const products = [...this.products];
    const on = new Set(products);
    const integrations = this.boxes
      .filter((b) => b.kind === 'integration' && on.has(b.product) && this.integrations.has(b.id))
      .map((b) => b.id);
    return { products, integrations };
  }
}

/**
 * Fill `container` with a rendered answer ({policies, totalSize, sizeLimit}):
 * one block per document with its name, size bar, Copy button and JSON.
 */
export function renderPolicies(container, answer, headingTag = 'h4') {
  const { policies, sizeLimit } = answer;
  const several = policies.length > 1;
  return fill(container,
    several
      ? h('p', { class: 'split-note' },
        `The permissions are larger than one managed policy can hold (${formatNumber(sizeLimit)} characters), `
        + `so they are split into ${policies.length} policies. Create each one and attach all of them to the role.`)
      : null,
    policies.map((p, i) => {
      const name = policyName(p, i, policies.length);
      return h('section', { class: 'policy', 'aria-label': `${name} policy` },
        h('div', { class: 'policy-head' },
          h(headingTag, {}, name),
          copyButton(`${name} JSON`, () => pretty(p.document))),
        sizeBar(p.size, sizeLimit, 'Size'),
        h('pre', { class: 'json', tabindex: '0', role: 'region', 'aria-label': `${name} JSON` },
          pretty(p.document)));
    }));
}

/** Spot-Policy for one document; Spot-Policy-1, -2, … for several. */
export function policyName(policy, index, count) {
  if (policy && policy.name) return policy.name;
  return count > 1 ? `Spot-Policy-${index + 1}` : 'Spot-Policy';
}

/** One line for a live region: how big the policy is, and in how many documents. */
export function sizeSummary(answer) {
  const n = answer.policies.length;
  return `Policy size: ${formatNumber(answer.totalSize)} characters in ${n} ${n === 1 ? 'policy' : 'policies'} `
    + `(limit ${formatNumber(answer.sizeLimit)} per policy).`;
}
