/**
 * The demo's calls as the daemon recorded them in its registry (DATA_DIR/gateway.db). Read once the daemon has
 * stopped: the running daemon holds the database exclusively (that is its instance lock).
 */
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface RegistryRow {
  call_id: string;
  route: string | null;
  fallback_reason: string | null;
  session_id: string | null;
  sip_status: number | null;
  end_reason: string | null;
  session_end_status: string | null;
}

const COLUMNS = [
  'call_id',
  'route',
  'fallback_reason',
  'session_id',
  'sip_status',
  'end_reason',
  'session_end_status',
] as const;

export function readRegistry(dataDir: string, callIds: string[]): RegistryRow[] {
  const db = new DatabaseSync(path.join(dataDir, 'gateway.db'), { readOnly: true });
  try {
    const select = db.prepare(`SELECT ${COLUMNS.join(', ')} FROM calls WHERE call_id = ?`);
    return callIds.flatMap((id) => (select.all(id) as unknown as RegistryRow[]).slice(0, 1));
  } finally {
    db.close();
  }
}

export function renderRows(rows: RegistryRow[]): string[] {
  const cells = [
    [...COLUMNS],
    ...rows.map((r) => COLUMNS.map((c) => (r[c] === null || r[c] === undefined ? '–' : String(r[c])))),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  return cells.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}
