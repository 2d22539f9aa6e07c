/**
 * `kallglot-gw targets`: the Telnyx SBCs the running daemon resolved (RFC 3263 NAPTR/SRV) and whether calls may use
 * them (OPTIONS probes, INVITEs that went unanswered), read from its GET /healthz (`telnyxTargets`). /healthz needs no
 * admin token, so neither does this command. Exit codes: 0 shown, 1 the daemon could not be read, 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import type { CliCommand, CliIo } from './command.ts';

const USAGE = `usage: kallglot-gw targets [--json] [--url URL]
  --url URL      the daemon's HTTP address (default: http://HTTP_HOST:HTTP_PORT from the gateway's configuration)
  --json         the raw list
`;
const REQUEST_TIMEOUT_MS = 10_000;

export const runTargetsCommand: CliCommand = async (io) => {
  let opts: { url?: string; json?: boolean; help?: boolean };
  try {
    opts = parseArgs({
      args: io.argv,
      options: { url: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
  } catch (err) {
    io.stderr(`kallglot-gw targets: ${(err as Error).message.split('\n')[0]}\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    io.stdout(USAGE);
    return 0;
  }
  const base = opts.url ?? daemonUrl(io);
  if (base === undefined) return 2;
  const targets = await fetchTargets(io, base.replace(/\/+$/, ''));
  if (targets === undefined) return 1;
  io.stdout(opts.json ? `${JSON.stringify(targets, null, 2)}\n` : formatTargetsTable(targets));
  return 0;
};

/** Where a local client reaches the daemon configured in this environment (a wildcard host means this machine). */
function daemonUrl(io: CliIo): string | undefined {
  try {
    const { host, port } = loadConfig({ env: io.env }).http;
    if (host === '0.0.0.0' || host === '') return `http://127.0.0.1:${port}`;
    if (host === '::') return `http://[::1]:${port}`;
    return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
  } catch (err) {
    io.stderr(`kallglot-gw targets: cannot read the gateway configuration (${(err as Error).message}); pass --url\n`);
    return undefined;
  }
}

async function fetchTargets(io: CliIo, base: string): Promise<Array<Record<string, unknown>> | undefined> {
  let body: unknown;
  try {
    const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    body = await res.json();
  } catch (err) {
    io.stderr(`kallglot-gw targets: cannot read ${base}/healthz (${(err as Error).message}): is the daemon running?\n`);
    return undefined;
  }
  const list = (body as { telnyxTargets?: unknown } | null)?.telnyxTargets;
  if (!Array.isArray(list)) {
    io.stderr(`kallglot-gw targets: ${base}/healthz lists no telnyxTargets: is --url a kallglot gateway?\n`);
    return undefined;
  }
  return list as Array<Record<string, unknown>>;
}

/** One row per SBC, columns padded to their widest cell. */
export function formatTargetsTable(targets: Array<Record<string, unknown>>): string {
  if (targets.length === 0)
    return 'no Telnyx targets resolved yet (no call and no probe so far, or TELNYX_OUTBOUND_PROXY is set)\n';
  const text = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : '-');
  const header = ['TARGET', 'NAME', 'STATE', 'LAST PROBE'];
  const rows = targets.map((t) => {
    const probe = t.lastProbe as { result?: unknown } | undefined;
    const failures = Number(t.probeFailures) || 0;
    const until = typeof t.downUntil === 'string' ? ` until ${t.downUntil}` : '';
    return [
      text(t.target),
      text(t.name),
      t.up === true ? 'up' : `down (${text(t.down)}${until})`,
      probe ? `${text(probe.result)}${failures ? `, ${failures} failed in a row` : ''}` : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const down = targets.filter((t) => t.up !== true).length;
  return `${[header, ...rows].map(line).join('\n')}\n${targets.length} target(s), ${down} down\n`;
}
