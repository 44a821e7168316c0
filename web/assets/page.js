// The page at `/`: find the bearer token, check it, then show the wizard.
// The token comes from the URL fragment (#token=…), never the query: a
// fragment is not sent to servers, logged by proxies or put in Referer.

// Imported, not statically: the token check below then runs while the
// wizard's modules load (index.html preloads them) instead of after.
const wizardLoaded = import('./account-connect-wizard.js');

/** sessionStorage: survives a reload of this tab, gone when the tab closes. */
const STORAGE_KEY = 'account-connect-token';

const form = document.getElementById('token-form');
const field = document.getElementById('token');
const fieldError = document.getElementById('token-error');
const wizard = document.querySelector('account-connect-wizard');
// The API lives beside the page (its origin, or its path prefix behind a gateway).
const baseUrl = new URL('.', window.location.href).href.replace(/\/$/, '');

function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const token = params.get('token');
  if (token) {
    // Off the address bar, so a copied or shared URL does not carry it.
    params.delete('token');
    const rest = params.toString();
    window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${rest ? `#${rest}` : ''}`);
  }
  return token;
}

/** '' when the API accepts the token, else a sentence for the customer. */
async function check(token) {
  try {
    const res = await fetch(`${baseUrl}/v1/connections?limit=1`, {
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      credentials: 'omit',
    });
    if (res.ok) return '';
    if (res.status === 401) return 'This access token was not accepted: it may have expired. Paste a new one.';
    if (res.status === 403) return 'This access token does not allow connecting accounts.';
    return 'The service could not check the token right now. Try again in a moment.';
  } catch {
    return 'The service could not be reached. Check your network connection and try again.';
  }
}

function askForToken(message) {
  wizard.hidden = true;
  form.hidden = false;
  fieldError.textContent = message || '';
  field.setAttribute('aria-invalid', String(Boolean(message)));
  if (message) field.focus();
}

/**
 * Show the wizard for `token`. A token from the fragment or this tab's
 * storage is almost always good, so the wizard shows at once and the check
 * runs beside it; a typed one is checked first, so a typo never flashes it.
 */
async function start(token, { optimistic }) {
  const checked = Promise.all([check(token), wizardLoaded]).then(
    ([problem]) => problem,
    () => 'Part of this page could not be loaded. Reload the page to try again.',
  );
  if (optimistic) show(token);
  const problem = await checked;
  if (problem) {
    sessionStorage.removeItem(STORAGE_KEY);
    wizard.removeAttribute('token');
    askForToken(problem);
    return;
  }
  sessionStorage.setItem(STORAGE_KEY, token);
  if (!optimistic) show(token);
}

function show(token) {
  form.hidden = true;
  wizard.setAttribute('base-url', baseUrl);
  wizard.setAttribute('token', token);
  wizard.hidden = false;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = field.value.trim();
  if (!token) { askForToken('Paste your access token.'); return; }
  field.value = '';
  start(token, { optimistic: false });
});

// A link may also name the Spot account (#token=…&accountId=act-…).
const accountId = new URLSearchParams(window.location.hash.slice(1)).get('accountId');
if (accountId) wizard.setAttribute('account-id', accountId);
const token = tokenFromFragment() || sessionStorage.getItem(STORAGE_KEY);
if (token) start(token, { optimistic: true }); else askForToken('');
