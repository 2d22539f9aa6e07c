/**
 * Keeps docs/architecture.md true. Reads its module table (one row per module: what it owns, what it may import),
 * computes the real import graph of src/ and fails when:
 *  - a module imports one its row does not list (the table is the rule, the code must follow it);
 *  - the modules' import graph has a cycle;
 *  - anything outside src/sip/ reaches into an engine's internals (src/sip/embedded/, src/sip/drachtio/), except
 *    src/sip/create-engine.ts, the one place that picks an adapter;
 *  - a source file has more than 400 lines.
 * A module is a folder of src/ (src/sip/<sub>/ counts as `sip/<sub>`), or a file at the top of src/ (`app.ts`);
 * src/sip/create-engine.ts, above the engines while the port (`sip`) is below them, is a module of its own.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');
const MAX_FILE_LINES = 400;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** `src/calls/x.ts` → `calls`; `src/sip/embedded/x.ts` → `sip/embedded`; `src/sip/port.ts` → `sip`; `src/app.ts` → `app.ts`. */
function moduleOf(file: string): string {
  const parts = path.relative(SRC, file).split(path.sep);
  if (parts.length === 1) return parts[0] as string;
  if (parts[0] === 'sip' && parts.length > 2) return `sip/${parts[1]}`;
  // The adapter picker is its own module: the port is below the engines, the picker above them.
  if (parts[0] === 'sip' && parts[1] === 'create-engine.ts') return 'sip/create-engine.ts';
  return parts[0] as string;
}

function allowedImports(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
  const rules = new Map<string, Set<string>>();
  for (const line of doc.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const name = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!name || cells.length < 5) continue;
    const may = [...(cells[3] ?? '').matchAll(/`([^`]+)`/g)].map((m) => (m[1] as string).replace(/\/$/, ''));
    rules.set(name.replace(/\/$/, ''), new Set(may));
  }
  return rules;
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)) {
    out.push(path.resolve(path.dirname(file), m[1] as string));
  }
  return out;
}

function findCycle(graph: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      const cycle = visit(m);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of graph.keys()) {
    const cycle = visit(n);
    if (cycle) return cycle;
  }
  return undefined;
}

export function checkArchitecture(): string[] {
  const problems: string[] = [];
  const rules = allowedImports();
  const graph = new Map<string, Set<string>>();
  for (const file of sourceFiles(SRC)) {
    const rel = path.relative(ROOT, file);
    const from = moduleOf(file);
    const lines = fs.readFileSync(file, 'utf8').split('\n').length;
    if (lines > MAX_FILE_LINES) problems.push(`${rel}: ${lines} lines (at most ${MAX_FILE_LINES})`);
    if (!rules.has(from)) problems.push(`${rel}: module \`${from}\` has no row in docs/architecture.md`);
    for (const target of importsOf(file)) {
      const to = moduleOf(target);
      const relTarget = path.relative(ROOT, target);
      const engineInternal = /^src\/sip\/(embedded|drachtio)\//.test(relTarget);
      if (
        engineInternal &&
        !rel.startsWith(`src/sip/${relTarget.split('/')[2]}/`) &&
        rel !== 'src/sip/create-engine.ts'
      ) {
        problems.push(`${rel} imports ${relTarget}: only src/sip/create-engine.ts may pick an engine`);
      }
      if (to === from) continue;
      if (!graph.has(from)) graph.set(from, new Set());
      graph.get(from)?.add(to);
      if (rules.has(from) && !rules.get(from)?.has(to)) {
        problems.push(`${rel} imports ${relTarget}: \`${from}\` may not import \`${to}\` (docs/architecture.md)`);
      }
    }
  }
  const cycle = findCycle(graph);
  if (cycle) problems.push(`import cycle between modules: ${cycle.join(' → ')}`);
  return problems;
}

if (import.meta.main) {
  const problems = checkArchitecture();
  for (const p of problems) process.stderr.write(`architecture: ${p}\n`);
  if (problems.length) process.exit(1);
  process.stdout.write('architecture: the import graph matches docs/architecture.md\n');
}
