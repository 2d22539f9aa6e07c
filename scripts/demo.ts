/**
 * `npm run demo`: the gateway at work, with no account and no network. Starts the Kallglot sandbox (in this
 * process, so its records can be read), the real daemon (`node src/main.ts`) on free ports with a temporary
 * DATA_DIR, and SIPp on both sides (a UAS playing Telnyx, a UAC playing the PBX). Places three calls (translated,
 * Kallglot outage, caller CANCEL), draws each one's ladder from the SIPp message logs and the daemon's JSON lines,
 * then prints their rows from the daemon's call registry. Exits 0 when all three behaved as expected, 1 otherwise.
 * Everything it starts is stopped and every temporary directory removed, on every path, Ctrl-C included.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KallglotSandbox } from '../src/kallglot/sandbox.ts';
import { type GatewayProcess, startGateway } from '../test/helpers/gateway.ts';
import { freePort } from '../test/helpers/ports.ts';
import { CALLS, type CallRecord, type DemoCall, placeCall } from './demo/calls.ts';
import { callEvents, renderLadder } from './demo/ladder.ts';
import { type RegistryRow, readRegistry, renderRows } from './demo/registry.ts';
import { stopAllSipp, tracedMessages } from './demo/sipp-run.ts';

const API_KEY = 'sk_demo';
const WIDTH = 100;

const started: { sandbox?: KallglotSandbox; gw?: GatewayProcess; dataDir?: string } = {};
let cleaning: Promise<void> | undefined;
/** Set by Ctrl-C/SIGTERM: the calls' flow stops at its next step instead of reporting on what cleanup tore down. */
let interrupted = false;

class Interrupted extends Error {}

function carryOn(): void {
  if (interrupted) throw new Interrupted('interrupted');
}

/** Idempotent: the normal end, an error and Ctrl-C may all get here. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllSipp();
    await started.gw?.stop();
    await started.sandbox?.stop();
    if (started.dataDir !== undefined) fs.rmSync(started.dataDir, { recursive: true, force: true });
  })();
  return cleaning;
}

function sippInstalled(): boolean {
  const res = spawnSync('sipp', ['-v'], { encoding: 'utf8' });
  return res.error === undefined && /SIPp v[\d.]+/.test(`${res.stdout ?? ''}${res.stderr ?? ''}`);
}

function wrap(text: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return line === '' ? lines : [...lines, line];
}

function sessionNote(r: CallRecord): string {
  if (r.sessions.length === 0) return 'no Kallglot session';
  return r.sessions
    .map((s) => {
      const ended = s.endedAt !== undefined ? `ended ${s.endCalls}× (${s.endReason})` : 'NOT ENDED';
      return `Kallglot session ${s.id} (${s.sourceLanguage} → ${s.targetLanguage}), ${ended}`;
    })
    .join('; ');
}

function outcomeNote(r: CallRecord): string {
  const s = r.summary;
  if (s === undefined) return 'no call summary';
  const fallback = s.fallbackReason !== undefined ? ` (${String(s.fallbackReason)})` : '';
  return `route ${String(s.route)}${fallback}, SIP ${String(s.sipStatus)}, end ${String(s.endReason)}`;
}

function printCall(index: number, call: DemoCall, r: CallRecord, problems: string[]): void {
  const title = `━━ ${index + 1}/${CALLS.length}  ${call.title} `;
  console.log(`\n${title}${'━'.repeat(Math.max(0, WIDTH - title.length))}`);
  for (const line of wrap(call.story)) console.log(line);
  console.log(`Call-ID ${r.callId || '?'} · ${sessionNote(r)}\n`);
  const events = callEvents(tracedMessages(r.pbx.messages), tracedMessages(r.telnyx.messages), r.lines);
  for (const line of renderLadder(events)) console.log(line);
  console.log(problems.length === 0 ? `\n✓ ${outcomeNote(r)}` : `\n✗ ${outcomeNote(r)}`);
  for (const p of problems) console.log(`  ✗ ${p}`);
}

function registryProblems(rows: RegistryRow[], records: CallRecord[]): string[] {
  return records.flatMap((r, i) => {
    const call = CALLS[i] as DemoCall;
    const row = rows.find((x) => x.call_id === r.callId);
    if (row === undefined) return [`${call.title}: no registry row for ${r.callId}`];
    const out: string[] = [];
    if (row.route !== call.row.route)
      out.push(`${call.title}: registry route ${row.route}, expected ${call.row.route}`);
    if (row.sip_status !== call.row.sipStatus)
      out.push(`${call.title}: registry SIP status ${row.sip_status}, expected ${call.row.sipStatus}`);
    if (row.session_id !== null && row.session_end_status !== 'ended')
      out.push(`${call.title}: session end ${row.session_end_status ?? 'not requested'} in the registry`);
    return out;
  });
}

async function startStack(): Promise<{ gw: GatewayProcess; sandbox: KallglotSandbox; uasPort: number }> {
  const sandbox = new KallglotSandbox({ apiKey: API_KEY });
  started.sandbox = sandbox;
  const { url } = await sandbox.start();
  const uasPort = await freePort('both');
  started.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-demo-data-'));
  const gw = await startGateway({
    dataDir: started.dataDir,
    env: {
      KALLGLOT_API_URL: url,
      KALLGLOT_API_KEY: API_KEY,
      TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
      LOG_FORMAT: 'json', // parsed here; a terminal would otherwise get pretty lines
      LOG_LEVEL: 'debug', // each Kallglot API attempt is a debug line: the ladder's Kallglot arrows
    },
  });
  started.gw = gw;
  console.log('kallglot-sip-gateway demo: the real daemon between a SIPp PBX and a SIPp Telnyx, no account needed');
  console.log(`  daemon   node src/main.ts, SIP 127.0.0.1:${gw.sipPort}, DATA_DIR ${gw.dataDir} (temporary)`);
  console.log(`  Kallglot local sandbox at ${url}`);
  console.log(`  Telnyx   SIPp UAS at 127.0.0.1:${uasPort} (TELNYX_OUTBOUND_PROXY)`);
  console.log(`  PBX      SIPp UAC calling 127.0.0.1:${gw.sipPort}`);
  console.log("Ladders: SIP arrows from the two SIPp message logs, Kallglot arrows from the daemon's JSON log lines;");
  console.log("session notes from the sandbox's records. Times in ms from the PBX's INVITE.");
  return { gw, sandbox, uasPort };
}

async function main(): Promise<number> {
  if (!sippInstalled()) {
    console.error('SIPp not found: the demo places its calls with it. Install it with: apt-get install -y sip-tester');
    return 1;
  }
  const t0 = performance.now();
  const env = await startStack();
  const records: CallRecord[] = [];
  const problems: string[] = [];
  for (const [i, call] of CALLS.entries()) {
    carryOn();
    const record = await placeCall(env, call);
    carryOn();
    const found = call.problems(record);
    printCall(i, call, record, found);
    records.push(record);
    problems.push(...found.map((p) => `${call.title}: ${p}`));
  }
  await env.gw.stop(); // the registry is the daemon's own until it exits
  carryOn();
  const rows = readRegistry(
    env.gw.dataDir,
    records.map((r) => r.callId),
  );
  console.log(
    `\nCall registry, read after the daemon stopped (${path.join(env.gw.dataDir, 'gateway.db')}, table calls):`,
  );
  for (const line of renderRows(rows)) console.log(`  ${line}`);
  problems.push(...registryProblems(rows, records));
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  if (problems.length === 0) console.log(`\n✓ All three calls behaved as expected (${seconds} s).`);
  else console.log(`\n✗ ${problems.length} problem(s) (${seconds} s):\n  ${problems.join('\n  ')}`);
  return problems.length === 0 ? 0 : 1;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    console.error(`\n${signal}: stopping the daemon, SIPp and the sandbox…`);
    void cleanup().finally(() => process.exit(130));
  });
}

// After an interruption the signal handler owns the exit (130); the flow only stops.
main().then(
  async (code) => {
    if (interrupted) return;
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    if (interrupted) return;
    console.error(`\n✗ demo failed: ${err instanceof Error ? err.message : String(err)}`);
    await cleanup();
    process.exit(1);
  },
);
