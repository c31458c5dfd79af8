// lifeboat.mjs — the e2e suite's machinery, a minimal port of
// tests/integration/lbtest.py to node: a lifeboatd under test in a temp
// directory with free ports, lifeboatctl, a raw SMTP client, and Chromium
// through playwright-core (the system's /usr/bin/chromium, never a download).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const BUILD = path.resolve(process.env.LIFEBOAT_BUILD || 'build-test');
export const PASSWORD = 'correct horse 9 battery';
const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'];

function sanitizerEnv() {
  return {
    ...process.env,
    ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
  };
}

/** A port nobody listens on right now (the kernel's pick for an ephemeral bind). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls fn until it returns a truthy value, which is returned. */
export async function waitFor(fn, { timeout = 15000, interval = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

// ------------------------------------------------------------------ SMTP

/** One SMTP session over a socket: send a line, read the (multi-line) reply. */
class SmtpConn {
  constructor(sock) {
    this.sock = sock;
    this.buf = '';
    this.waiters = [];
    this.closed = false;
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      this.buf += d;
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => {});
  }

  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async reply() {
    const deadline = Date.now() + 30000;
    for (;;) {
      // A reply is complete at a line "DDD text" (space, not '-').
      const m = this.buf.match(/^((?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n)/);
      if (m) {
        this.buf = this.buf.slice(m[1].length);
        const last = m[1].split('\r\n').filter(Boolean).at(-1);
        return { code: Number(last.slice(0, 3)), text: m[1] };
      }
      if (this.closed) throw new Error(`SMTP connection closed; got ${JSON.stringify(this.buf)}`);
      if (Date.now() > deadline) throw new Error('SMTP reply timed out');
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 1000);
      });
    }
  }

  async cmd(line, expect) {
    this.sock.write(line + '\r\n', 'latin1');
    const r = await this.reply();
    if (expect && r.code !== expect) throw new Error(`SMTP ${line.split(' ')[0]}: expected ${expect}, got ${r.text}`);
    return r;
  }
}

/** An SMTP session to 127.0.0.1:port after EHLO: send() one message after
 * another (each returns lifeboatd's queue ID), then quit(). */
export async function smtpSession(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const c = new SmtpConn(sock);
  try {
    const banner = await c.reply();
    if (banner.code !== 220) throw new Error(`SMTP banner: ${banner.text}`);
    await c.cmd('EHLO client.example.org', 250);
  } catch (e) {
    sock.destroy();
    throw e;
  }
  return {
    async send(from, rcpts, data) {
      await c.cmd(`MAIL FROM:<${from}>`, 250);
      for (const r of rcpts) await c.cmd(`RCPT TO:<${r}>`, 250);
      await c.cmd('DATA', 354);
      // Dot-stuffing: a line starting with '.' gets another.
      const body = data.replace(/\r\n\./g, '\r\n..').replace(/^\./, '..');
      const r = await c.cmd(`${body.endsWith('\r\n') ? body : body + '\r\n'}.`, 250);
      const m = r.text.match(/queued as ([A-Za-z0-9]+)/);
      if (!m) throw new Error(`no queue ID in the reply to DATA: ${r.text}`);
      return m[1];
    },
    async quit() {
      await c.cmd('QUIT', 221).catch(() => {});
      sock.destroy();
    },
    destroy() {
      sock.destroy();
    },
  };
}

/** Sends one message (CRLF lines) to 127.0.0.1:port; returns lifeboatd's queue ID. */
export async function smtpSend(port, from, rcpts, data) {
  const s = await smtpSession(port);
  try {
    const qid = await s.send(from, rcpts, data);
    await s.quit();
    return qid;
  } finally {
    s.destroy();
  }
}

export function makeMessage({ from = 'alice@example.org', to, subject, body, msgid }) {
  return [
    `From: Alice Example <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    'Date: Fri, 27 Nov 2026 22:00:00 +0000',
    `Message-ID: ${msgid || `<e2e.${Date.now()}.${Math.random().toString(36).slice(2)}@example.org>`}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    body,
    '',
  ].join('\r\n');
}

// ------------------------------------------------------------------ lifeboatd

export class Lifeboat {
  static DEFAULTS = {
    hostname: 'lifeboat.test',
    retry_min_backoff: '1s',
    retry_max_backoff: '2s',
    queue_lifetime: '1h',
    smtp_timeout: '30s',
    smtp_data_timeout: '30s',
    delivery_timeout: '3s',
    dr_probe_interval: '1s',
    max_message_size: '10M',
    log_level: 'info',
  };

  static async create(overrides = {}) {
    const lb = new Lifeboat();
    lb.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-e2e-'));
    lb.smtpPort = await freePort();
    lb.httpPort = await freePort();
    lb.conf = path.join(lb.dir, 'lifeboat.conf');
    lb.logPath = path.join(lb.dir, 'lifeboatd.log');
    const settings = {
      ...Lifeboat.DEFAULTS,
      data_dir: path.join(lb.dir, 'data'),
      smtp_listen: `127.0.0.1:${lb.smtpPort}`,
      http_listen: `127.0.0.1:${lb.httpPort}`,
      ...overrides,
    };
    fs.writeFileSync(lb.conf, '# written by tests/e2e\n' +
      Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(''));
    return lb;
  }

  get url() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async start() {
    const out = fs.openSync(this.logPath, 'a');
    this.proc = spawn(path.join(BUILD, 'lifeboatd'), ['-c', this.conf, '--foreground'], {
      stdio: ['ignore', out, out],
      env: sanitizerEnv(),
    });
    fs.closeSync(out);
    this.exit = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    let exited = null;
    this.exit.then((e) => { exited = e; });
    await waitFor(async () => {
      if (exited) throw new Error(`lifeboatd exited (${JSON.stringify(exited)}) during start-up:\n${this.log().slice(-4000)}`);
      return (await fetch(`${this.url}/healthz`).then((r) => r.ok).catch(() => false)) &&
        (await smtpBanner(this.smtpPort));
    }, { timeout: 30000, interval: 50, what: 'lifeboatd to listen' });
  }

  /** SIGTERM; resolves to the exit code (the test asserts 0). */
  async stop(timeout = 25000) {
    if (!this.proc) return null;
    const proc = this.proc;
    this.proc = null;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeout);
    const { code, signal } = await this.exit;
    clearTimeout(timer);
    return signal ? `signal ${signal}` : code;
  }

  sanitizerFindings() {
    const log = this.log();
    return SANITIZER_MARKERS.filter((m) => log.includes(m));
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  ctl(args, input) {
    const cp = spawnSync(path.join(BUILD, 'lifeboatctl'), ['-c', this.conf, ...args.map(String)], {
      input: input ?? '',
      encoding: 'utf8',
      env: sanitizerEnv(),
      timeout: 60000,
    });
    const found = SANITIZER_MARKERS.filter((m) => (cp.stderr || '').includes(m));
    if (found.length) throw new Error(`sanitizer report from lifeboatctl ${args.join(' ')}:\n${cp.stderr}`);
    if (cp.status !== 0) {
      throw new Error(`lifeboatctl ${args.join(' ')} exited ${cp.status}\nstdout: ${cp.stdout}\nstderr: ${cp.stderr}`);
    }
    return cp.stdout;
  }

  ctlJson(args) {
    return JSON.parse(this.ctl([...args, '--json']));
  }

  mailbox(email, folder) {
    return this.ctlJson(['mailbox', 'list', email, ...(folder ? ['--folder', folder] : [])]);
  }

  continuityState(domain) {
    const rows = this.ctlJson(['continuity', 'status', domain]);
    return rows[0]?.state;
  }
}

async function smtpBanner(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) {
        sock.write('QUIT\r\n');
        done(data.startsWith('220'));
      }
    });
  });
}

// ------------------------------------------------------------------ Chromium

export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium with a fresh profile (its --user-data-dir, which
 * playwright passes for a persistent context) and no network chatter
 * (TESTING.md). Resolves to a BrowserContext; close() also removes the profile. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeboat-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the login form (scoped to it: the password pages have
 * fields with similar labels). Waits for the mailbox. */
export async function signIn(page, url, email, password = PASSWORD) {
  await page.goto(url + '/');
  const form = page.locator('#login-form');
  await form.getByLabel('Email address').fill(email);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#mail-view').waitFor({ state: 'visible' });
}

// ------------------------------------------------------------------ aiosmtpd sink

const SINK_PY = path.join(path.dirname(new URL(import.meta.url).pathname), 'sink.py');

/** An aiosmtpd destination (tests/e2e/sink.py, lbtest.py's switchable Sink in a
 * Debian python3 child): open(), close(), mode(M), messages(). */
export class Sink {
  static async start({ closed = false } = {}) {
    const s = new Sink();
    s.proc = spawn('/usr/bin/python3', [SINK_PY, ...(closed ? ['--closed'] : [])], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    s.lines = [];
    s.waiters = [];
    s.buf = '';
    s.proc.stdout.setEncoding('utf8');
    s.proc.stdout.on('data', (d) => {
      s.buf += d;
      let i;
      while ((i = s.buf.indexOf('\n')) >= 0) {
        s.lines.push(s.buf.slice(0, i));
        s.buf = s.buf.slice(i + 1);
      }
      const w = s.waiters;
      s.waiters = [];
      for (const f of w) f();
    });
    s.exited = false;
    s.proc.once('exit', () => {
      s.exited = true;
      for (const f of s.waiters) f();
    });
    s.port = JSON.parse(await s.line()).port;
    return s;
  }

  async line() {
    const deadline = Date.now() + 30000;
    while (this.lines.length === 0) {
      if (this.exited) throw new Error('sink.py exited');
      if (Date.now() > deadline) throw new Error('sink.py did not answer');
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 1000);
      });
    }
    return this.lines.shift();
  }

  // One command at a time: replies come back in order.
  async cmd(obj) {
    const prev = this.pending || Promise.resolve();
    const run = prev.then(async () => {
      this.proc.stdin.write(JSON.stringify(obj) + '\n');
      const r = JSON.parse(await this.line());
      if (!r.ok) throw new Error(`sink.py ${obj.cmd}: ${r.error}`);
      return r;
    });
    this.pending = run.catch(() => {});
    return run;
  }

  get route() {
    return `127.0.0.1:${this.port}`;
  }

  open() { return this.cmd({ cmd: 'open' }); }
  close() { return this.cmd({ cmd: 'close' }); }
  mode(mode) { return this.cmd({ cmd: 'mode', mode }); }

  /** Every message so far: {mail_from, rcpt_tos, headers: {lower-name: [values]}, text, attachments}. */
  async messages() {
    return (await this.cmd({ cmd: 'messages' })).messages;
  }

  async stop() {
    if (!this.proc || this.exited) return;
    this.proc.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10000);
    await new Promise((r) => (this.exited ? r() : this.proc.once('exit', r)));
    clearTimeout(timer);
  }
}

/** The first value of a header of a sink message, trimmed ('' when absent). */
export function header(m, name) {
  return (m.headers[name.toLowerCase()]?.[0] ?? '').trim();
}
