/**
 * Ladder diagrams of one call: who sent what between the PBX, the gateway, Telnyx and Kallglot, in time order.
 * Every arrow comes from a record: the PBX and Telnyx arrows from the two SIPp message logs, the Kallglot arrows from
 * the daemon's JSON log lines of each API attempt.
 */
import { headerOf, type TracedMessage } from './sipp-run.ts';

export const LANES = ['PBX', 'gateway', 'Telnyx', 'Kallglot'] as const;
export type Lane = (typeof LANES)[number];

export interface LadderEvent {
  /** Epoch milliseconds (fractional). */
  time: number;
  from: Lane;
  to: Lane;
  label: string;
  /** Kallglot API arrows: which call they belong to. */
  op?: 'create' | 'end';
}

/** The daemon's JSON log line, as far as the ladder reads it. */
export interface DaemonLine {
  msg: string;
  time?: unknown;
  [key: string]: unknown;
}

const TIME_WIDTH = 9;
const GAP = 28;

function abbreviateSession(s: string): string {
  return s.replace(/\bsess_([0-9a-f]{6})[0-9a-f]+/g, 'sess_$1…');
}

function sipLabel(m: TracedMessage): string {
  const cseqMethod = headerOf(m.text, 'CSeq')?.split(/\s+/)[1] ?? '';
  const status = /^SIP\/2\.0\s+(\d{3})\s*(.*)$/.exec(m.startLine);
  if (status !== null) {
    const suffix = cseqMethod !== 'INVITE' ? ` (${cseqMethod})` : '';
    return `${status[1]} ${status[2]}${suffix}`;
  }
  const [method = '?', uri = ''] = m.startLine.split(/\s+/);
  // Only the INVITE's Request-URI says something (the number, or the Kallglot session on the translated leg).
  const user = method === 'INVITE' ? /^sips?:([^@;]+)@/.exec(uri)?.[1] : undefined;
  return abbreviateSession(user !== undefined ? `${method} ${user}` : method);
}

/** Arrows between `peer` and the gateway, from the SIPp log of the side playing `peer`. */
export function sipEvents(messages: TracedMessage[], peer: 'PBX' | 'Telnyx'): LadderEvent[] {
  const out: LadderEvent[] = [];
  const byKey = new Map<string, { event: LadderEvent; count: number }>();
  for (const m of messages) {
    // UDP retransmissions repeat the transaction's Via branch and CSeq: one arrow, with a count.
    const key = `${m.direction}|${m.startLine}|${headerOf(m.text, 'Via')}|${headerOf(m.text, 'CSeq')}`;
    const seen = byKey.get(key);
    if (seen !== undefined) {
      seen.count += 1;
      seen.event.label = `${seen.event.label.replace(/ ×\d+$/, '')} ×${seen.count}`;
      continue;
    }
    const sentByPeer = m.direction === 'sent';
    const event: LadderEvent = {
      time: m.time,
      from: sentByPeer ? peer : 'gateway',
      to: sentByPeer ? 'gateway' : peer,
      label: sipLabel(m),
    };
    byKey.set(key, { event, count: 1 });
    out.push(event);
  }
  return out;
}

export function lineTime(line: DaemonLine): number {
  return typeof line.time === 'number' ? line.time : Date.parse(String(line.time));
}

/** Request and response arrows of every Kallglot API attempt the daemon logged (LOG_LEVEL=debug). */
export function kallglotEvents(lines: DaemonLine[]): LadderEvent[] {
  const endReasons = new Map<unknown, unknown>();
  for (const l of lines) if (l.msg === 'ending Kallglot session') endReasons.set(l.sessionId, l.reason);
  const out: LadderEvent[] = [];
  for (const l of lines) {
    if (l.msg !== 'kallglot request ok' && l.msg !== 'kallglot request failed') continue;
    if (l.op !== 'create' && l.op !== 'end') continue;
    const answered = lineTime(l);
    const sent = answered - (typeof l.ms === 'number' ? l.ms : 0);
    const sessionId = String(l.sessionId ?? '');
    const path =
      l.op === 'create'
        ? 'POST /v1/sessions'
        : `POST /v1/sessions/${abbreviateSession(sessionId)}/end (${endReasons.get(l.sessionId) ?? '?'})`;
    let answer: string;
    if (l.msg === 'kallglot request failed') answer = `${l.status ?? ''} ${l.code ?? 'error'}`.trim();
    else answer = l.op === 'create' ? `201 ${sessionId}` : '200 ended';
    out.push({ time: sent, from: 'gateway', to: 'Kallglot', label: path, op: l.op });
    out.push({ time: answered, from: 'Kallglot', to: 'gateway', label: answer, op: l.op });
  }
  return out;
}

/**
 * The daemon's log times have millisecond resolution, the SIPp logs microseconds, so a create that took well under
 * a millisecond can land on the wrong side of the INVITEs around it. The gateway creates the session after the PBX's
 * INVITE and before any INVITE to Telnyx (whose Request-URI may carry the session id), so keep the creates there.
 */
function placeCreates(sip: LadderEvent[], creates: LadderEvent[]): void {
  const isInvite = (e: LadderEvent): boolean => e.label.startsWith('INVITE');
  const lower = sip.find((e) => e.from === 'PBX' && isInvite(e))?.time ?? Number.NEGATIVE_INFINITY;
  const upper = sip.find((e) => e.to === 'Telnyx' && isInvite(e))?.time ?? Number.POSITIVE_INFINITY;
  creates.sort((a, b) => a.time - b.time);
  creates.forEach((e, k) => {
    e.time = Math.min(Math.max(e.time, lower + 0.001 * (k + 1)), upper - 0.001 * (creates.length - k));
  });
}

export function callEvents(pbx: TracedMessage[], telnyx: TracedMessage[], daemon: DaemonLine[]): LadderEvent[] {
  const sip = [...sipEvents(pbx, 'PBX'), ...sipEvents(telnyx, 'Telnyx')];
  const kallglot = kallglotEvents(daemon);
  placeCreates(
    sip,
    kallglot.filter((e) => e.op === 'create'),
  );
  // Stable sort: a request and its answer logged in the same instant keep their order.
  return [...sip, ...kallglot].sort((a, b) => a.time - b.time);
}

function laneX(lane: Lane): number {
  return TIME_WIDTH + LANES.indexOf(lane) * GAP;
}

function drawArrow(row: string[], e: LadderEvent): void {
  const [a, b] = [laneX(e.from), laneX(e.to)];
  const [lo, hi] = [Math.min(a, b), Math.max(a, b)];
  const cells = hi - lo - 1;
  let label = ` ${e.label} `;
  if (label.length > cells - 2) label = ` ${e.label.slice(0, cells - 5)}… `;
  const fill = '─'.repeat(Math.max(0, cells - 1 - label.length));
  const body = a < b ? `${label}${fill}▶` : `◀${fill}${label}`;
  for (let i = 0; i < cells; i++) {
    const ch = body[i] ?? '─';
    const crossing = row[lo + 1 + i] === '│' && ch === '─';
    row[lo + 1 + i] = crossing ? '┼' : ch;
  }
}

/** Writes `text` into the row of characters from column `at`. */
function put(row: string[], at: number, text: string): void {
  for (let i = 0; i < text.length; i++) row[at + i] = text[i] ?? ' ';
}

export function renderLadder(events: LadderEvent[]): string[] {
  const width = laneX('Kallglot') + 1;
  const header = Array.from({ length: width + 4 }, () => ' ');
  put(header, TIME_WIDTH - 4, 'ms');
  for (const lane of LANES) put(header, Math.max(0, laneX(lane) - Math.floor(lane.length / 2)), lane);
  const lines = [header.join('').trimEnd()];
  const t0 = events[0]?.time ?? 0;
  for (const e of events) {
    const row = Array.from({ length: width }, () => ' ');
    for (const lane of LANES) row[laneX(lane)] = '│';
    drawArrow(row, e);
    const ms = (e.time - t0).toFixed(1).padStart(TIME_WIDTH - 3);
    lines.push(`${ms}${row.join('').slice(ms.length)}`.trimEnd());
  }
  return lines;
}
