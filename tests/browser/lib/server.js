// Starts the real account-connect server for a test file, on a free port,
// with its own SQLite store, and mints a bearer token for it.
//
// If the binary does not serve every file under web/ byte for byte (an
// asset missing from the Rust allowlist, or a stale build), the page is
// served from web/ by a small front server that passes everything else to
// the binary, so the wizard can still be tested; `webProblems` lists what
// is wrong and the serving test fails on it.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const WEB = path.join(ROOT, 'web');
const BIN = process.env.ACCOUNT_CONNECT_BIN || path.join(ROOT, 'target/debug/account-connect');
/** HS256 wants 32 bytes or more (src/config.rs). */
const SECRET = 'browser-tests-secret-0123456789abcdef';
const ORG = 'org-browser';
const START_TIMEOUT_MS = 20_000;

export const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Every file the binary must serve: [url path, file on disk]. */
export function webFiles() {
  const assets = readdirSync(path.join(WEB, 'assets')).sort();
  return [['/', path.join(WEB, 'index.html')],
    ...assets.map((f) => [`/assets/${f}`, path.join(WEB, 'assets', f)])];
}

export async function startServer(extraEnv = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'account-connect-browser-'));
  const env = {
    ...process.env,
    ACCOUNT_CONNECT_STORE: `sqlite://${path.join(dir, 'test.db')}`,
    ACCOUNT_CONNECT_JWT_SECRET: SECRET,
    // Quiet logs unless asked for: they go to a pipe nobody reads.
    RUST_LOG: process.env.RUST_LOG || 'warn',
    ...extraEnv,
  };
  const child = spawn(BIN, ['serve', '--addr', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const apiOrigin = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in ${START_TIMEOUT_MS} ms:\n${out}\n${stderr}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /account-connect listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${out}\n${stderr}`)); });
  });
  child.stdout.resume();
  const token = execFileSync(BIN, ['token', '--org', ORG], { env }).toString().trim();

  const webProblems = await checkWeb(apiOrigin);
  let front = null;
  let origin = apiOrigin;
  if (webProblems.length) {
    front = await startFront(apiOrigin);
    origin = front.origin;
  }

  return {
    origin,
    apiOrigin,
    token,
    webProblems,
    /** fetch() against the API with the token. */
    api: async (method, p, body) => {
      const res = await fetch(`${apiOrigin}${p}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async stop() {
      if (front) await new Promise((r) => front.server.close(r));
      child.kill('SIGINT');
      await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What the binary serves differently from web/ ([] when all is well). */
async function checkWeb(origin) {
  const problems = [];
  for (const [urlPath, file] of webFiles()) {
    const res = await fetch(`${origin}${urlPath}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) problems.push(`${urlPath}: HTTP ${res.status}`);
    else if (!body.equals(readFileSync(file))) problems.push(`${urlPath}: differs from ${path.relative(ROOT, file)} (rebuild?)`);
    else if (res.headers.get('content-type') !== CONTENT_TYPES[path.extname(file)]) {
      problems.push(`${urlPath}: content-type ${res.headers.get('content-type')}`);
    }
  }
  return problems;
}

/** web/ from disk, everything else proxied to the binary. */
async function startFront(apiOrigin) {
  const files = new Map(webFiles());
  const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    + "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url, 'http://x').pathname;
    const file = files.get(urlPath);
    if (file && req.method === 'GET') {
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(file)],
        'content-security-policy': csp,
        'cache-control': 'no-cache',
      });
      res.end(readFileSync(file));
      return;
    }
    const upstream = http.request(`${apiOrigin}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}
