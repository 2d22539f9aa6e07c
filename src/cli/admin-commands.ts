/**
 * `kallglot-gw calls | reload | drain`: an operator's front end to the running daemon's admin API (GET /calls,
 * POST /admin/reload, POST /admin/drain). The daemon is found the way it was configured — HTTP_HOST/HTTP_PORT and
 * ADMIN_TOKEN from the same environment or GATEWAY_CONFIG file — so on the gateway's own host the commands need no
 * flags; --url and --token override. Exit codes: 0 done, 1 the daemon refused or could not be reached, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import type { CliCommand, CliIo } from './command.ts';

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const REQUEST_TIMEOUT_MS = 10_000;

interface Options {
  url?: string;
  token?: string;
  json?: boolean;
  help?: boolean;
}

interface Target {
  baseUrl: string;
  token: string;
}

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** A failure the operator can act on: printed as one line, with the exit code to return. */
class CliFailure extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const COMMON_USAGE = `options:
  --url URL      admin API of the daemon (default: http://HTTP_HOST:HTTP_PORT from the gateway's configuration)
  --token TOKEN  admin bearer token (default: ADMIN_TOKEN from the gateway's configuration)`;

export const runCallsCommand: CliCommand = (io) =>
  run(
    io,
    'calls',
    `usage: kallglot-gw calls [--json] [--url URL] [--token TOKEN]\n  --json         raw JSON rows`,
    callsCommand,
  );

export const runReloadCommand: CliCommand = (io) =>
  run(io, 'reload', 'usage: kallglot-gw reload [--url URL] [--token TOKEN]', reloadCommand);

export const runDrainCommand: CliCommand = (io) =>
  run(io, 'drain', 'usage: kallglot-gw drain [--url URL] [--token TOKEN]', drainCommand);

async function run(
  io: CliIo,
  name: string,
  usage: string,
  body: (io: CliIo, target: Target, opts: Options) => Promise<number>,
): Promise<number> {
  try {
    const opts = parseOptions(io.argv, name);
    if (opts.help) {
      io.stdout(`${usage}\n${COMMON_USAGE}\n`);
      return 0;
    }
    return await body(io, resolveTarget(io, opts), opts);
  } catch (err) {
    if (!(err instanceof CliFailure)) throw err;
    io.stderr(`kallglot-gw ${name}: ${err.message}\n`);
    if (err.exitCode === 2) io.stderr(`${usage}\n${COMMON_USAGE}\n`);
    return err.exitCode;
  }
}

function parseOptions(argv: string[], name: string): Options {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliFailure((err as Error).message, 2);
  }
  // The dispatcher may or may not pass the subcommand's own name along; anything else is a mistake.
  const extra = parsed.positionals.filter((p, i) => !(i === 0 && p === name));
  if (extra.length > 0) throw new CliFailure(`unexpected argument: ${extra[0]}`, 2);
  return parsed.values;
}

/** --url/--token first; whatever is missing comes from the daemon's own configuration. */
function resolveTarget(io: CliIo, opts: Options): Target {
  if (opts.url !== undefined && opts.token !== undefined) return { baseUrl: cleanUrl(opts.url), token: opts.token };
  let http: { host: string; port: number; adminToken: string };
  try {
    http = loadConfig({ env: io.env }).http;
  } catch (err) {
    throw new CliFailure(
      `cannot read the gateway configuration to find the daemon (${(err as Error).message}); pass --url and --token`,
      2,
    );
  }
  const token = opts.token ?? http.adminToken;
  if (!token) {
    throw new CliFailure('no admin token: pass --token or set ADMIN_TOKEN to the value the daemon runs with', 2);
  }
  return { baseUrl: cleanUrl(opts.url ?? urlOf(http.host, http.port)), token };
}

/** The address a local client reaches a daemon listening on `host` at: a wildcard means this machine. */
function urlOf(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '') return `http://127.0.0.1:${port}`;
  if (host === '::') return `http://[::1]:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

function cleanUrl(url: string): string {
  try {
    return new URL(url).toString().replace(/\/+$/, '');
  } catch {
    throw new CliFailure(`--url is not a URL: ${url}`, 2);
  }
}

async function adminRequest(target: Target, method: 'GET' | 'POST', path: string): Promise<Reply> {
  let res: Response;
  try {
    res = await fetch(`${target.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliFailure(
      `cannot reach the gateway at ${target.baseUrl} (${networkReason(err)}): is the daemon running there? ` +
        '(--url, or HTTP_HOST/HTTP_PORT as the daemon has them)',
    );
  }
  const body = parseBody(await res.text());
  if (res.status === 401) {
    throw new CliFailure(
      `the gateway at ${target.baseUrl} refused the admin token (401): --token or ADMIN_TOKEN must match the daemon's ADMIN_TOKEN`,
    );
  }
  if (res.status === 404 && body.error === 'admin_api_disabled') {
    throw new CliFailure(
      `the admin API is disabled on the gateway at ${target.baseUrl}: start it with ADMIN_TOKEN set`,
    );
  }
  if (res.status === 404 && body.error === 'not_found') {
    throw new CliFailure(`${target.baseUrl} does not serve ${method} ${path} (404): is --url a kallglot gateway?`);
  }
  return { status: res.status, body };
}

function parseBody(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function networkReason(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

function unexpected(reply: Reply, what: string): CliFailure {
  const detail = typeof reply.body.message === 'string' ? reply.body.message : JSON.stringify(reply.body);
  return new CliFailure(`${what} failed: HTTP ${reply.status} ${detail}`);
}

async function callsCommand(io: CliIo, target: Target, opts: Options): Promise<number> {
  const reply = await adminRequest(target, 'GET', '/calls');
  if (reply.status !== 200 || !Array.isArray(reply.body.calls)) throw unexpected(reply, 'GET /calls');
  const calls = reply.body.calls as Array<Record<string, unknown>>;
  if (opts.json) {
    io.stdout(`${JSON.stringify(calls, null, 2)}\n`);
    return 0;
  }
  if (calls.length === 0) {
    io.stdout('no active calls\n');
    return 0;
  }
  io.stdout(formatCallsTable(calls, Date.now()));
  return 0;
}

/** One row per call, columns padded to their widest cell. */
export function formatCallsTable(calls: Array<Record<string, unknown>>, now: number): string {
  const header = ['CALL ID', 'FROM', 'TO', 'ROUTE', 'SESSION', 'AGE'];
  const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? `${v}` : '-');
  const rows = calls.map((c) => [
    text(c.call_id),
    text(c.from_user),
    text(c.to_user),
    text(c.route),
    text(c.session_id),
    typeof c.invite_at === 'number' ? formatAge(now - c.invite_at) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n${calls.length} active call${calls.length === 1 ? '' : 's'}\n`;
}

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

async function reloadCommand(io: CliIo, target: Target): Promise<number> {
  const reply = await adminRequest(target, 'POST', '/admin/reload');
  const { body } = reply;
  if (reply.status === 200) {
    const n = Number(body.rules);
    io.stdout(
      `routing rules reloaded from ${String(body.file)}: ${n} rule${n === 1 ? '' : 's'}, default ${String(body.defaultMode)}\n`,
    );
    return 0;
  }
  if (reply.status !== 422) throw unexpected(reply, 'POST /admin/reload');
  const errors = Array.isArray(body.errors) ? (body.errors as Array<{ message?: unknown }>) : [];
  const kept = Number(body.keptRules);
  io.stderr(`kallglot-gw reload: the routing rules were refused; the previous ${kept} rule(s) stay in force:\n`);
  for (const e of errors) io.stderr(`  ${typeof e.message === 'string' ? e.message : JSON.stringify(e)}\n`);
  return 1;
}

async function drainCommand(io: CliIo, target: Target): Promise<number> {
  const reply = await adminRequest(target, 'POST', '/admin/drain');
  if (reply.status !== 202) throw unexpected(reply, 'POST /admin/drain');
  const active = Number(reply.body.activeCalls);
  const calls = `${active} active call${active === 1 ? '' : 's'}`;
  if (reply.body.alreadyDraining === true) {
    io.stdout(`the gateway was already draining: ${calls}\n`);
    return 0;
  }
  io.stdout(
    `draining: new calls get 503; ${calls} may finish within ${String(reply.body.drainTimeoutSec)} s, ` +
      'then the gateway stops\n',
  );
  return 0;
}
