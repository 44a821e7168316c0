// The account-connect HTTP API as the wizard uses it. Every failure becomes
// an ApiError whose `message` a customer can act on: the server's own
// `error.message` when it sent one, else a sentence written here.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * A key for the Idempotency-Key header. getRandomValues, not randomUUID:
 * randomUUID exists only in secure contexts, and the page may be served
 * over plain http on a private network.
 */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `wizard-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
  }

  async request(method, path, { body, headers = {}, signal } = {}) {
    const init = {
      method,
      signal,
      headers: { Accept: 'application/json', ...headers },
      // The token travels in a header only; never let the browser attach cookies.
      credentials: 'omit',
    };
    if (this.token) init.headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`${this.baseUrl}${path}`, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network_error',
        'The service could not be reached. Check your network connection and try again.');
    }
    const text = await res.text();
    let json;
    try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
    if (res.ok) return json;
    const err = json && json.error;
    if (err && err.message) throw new ApiError(res.status, err.code, sentence(err.message), err.details);
    throw new ApiError(res.status, `http_${res.status}`, fallbackMessage(res.status));
  }

  partitions() {
    return this.request('GET', '/v1/partitions');
  }

  catalog(partition) {
    return this.request('GET', `/v1/catalog?partition=${encodeURIComponent(partition)}`);
  }

  policies(partition, permissions, signal) {
    return this.request('POST', '/v1/policies', { body: { partition, permissions }, signal });
  }

  createConnection(body, idempotencyKey) {
    return this.request('POST', '/v1/connections', {
      body,
      headers: { 'Idempotency-Key': idempotencyKey },
    });
  }

  connection(id) {
    return this.request('GET', `/v1/connections/${encodeURIComponent(id)}`);
  }

  connections() {
    return this.request('GET', '/v1/connections?limit=50');
  }

  template(id) {
    return this.request('GET', `/v1/connections/${encodeURIComponent(id)}/template`);
  }

  disconnect(id) {
    return this.request('DELETE', `/v1/connections/${encodeURIComponent(id)}`);
  }

  createOrganization(body) {
    return this.request('POST', '/v1/organizations', { body });
  }

  organization(id) {
    return this.request('GET', `/v1/organizations/${encodeURIComponent(id)}`);
  }

  syncOrganization(id) {
    return this.request('POST', `/v1/organizations/${encodeURIComponent(id)}/sync`);
  }

  organizationPreflight(id) {
    return this.request('GET', `/v1/organizations/${encodeURIComponent(id)}/preflight`);
  }

  organizationTemplate(id) {
    return this.request('GET', `/v1/organizations/${encodeURIComponent(id)}/template`);
  }

  verifyRole(id, roleArn) {
    return this.request('POST', `/v1/connections/${encodeURIComponent(id)}/role`, { body: { roleArn } });
  }
}

/** The server writes lower-case clauses; the page shows sentences. */
function sentence(message) {
  const s = message.trim();
  const capital = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function fallbackMessage(status) {
  if (status === 401) return 'Your sign-in token was refused or has expired. Open this page again with a new token.';
  if (status === 403) return 'Your token does not allow this action.';
  if (status === 404) return 'The service does not know this address. It may be an older version.';
  if (status === 429) return 'Too many requests. Wait a moment and try again.';
  if (status >= 500) return 'The service had a problem. Nothing was changed; try again in a moment.';
  return `The request was refused (HTTP ${status}).`;
}
