/**
 * Reads a V8 CPU profile (`node --cpu-prof`, e.g. `npm run bench -- --cpu-prof DIR`) and prints where the time went:
 * the functions with the most self time, and self time summed per source file and per area (our code by folder,
 * each dependency, Node's internals, GC, idle). Usage: node bench/profile-top.ts FILE.cpuprofile [TOP=30]
 * Self time is where the CPU was when sampled; the per-area sums are what the flame graph's widest bars show.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const ROOT = path.resolve(import.meta.dirname, '..');

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8/native (program)';
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  if (url.startsWith('node:')) return `node: ${url.slice(5).split('/')[0]}`;
  const file = url.replace(/^file:\/\//, '');
  const rel = path.relative(ROOT, file);
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
  if (dep) return `dep: ${dep[1]}`;
  const parts = rel.split(path.sep);
  return parts[0] === 'src' ? `src/${parts.length > 2 ? parts.slice(1, -1).join('/') : parts[1]}` : rel;
}

function top(map: Map<string, number>, total: number, n: number, title: string): void {
  console.log(`\n| ${title} | self ms | % of samples |\n|---|---|---|`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`| ${k.replaceAll('|', '\\|')} | ${v.toFixed(0)} | ${((100 * v) / total).toFixed(1)} |`);
  }
}

const [file, n = '30'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-top.ts FILE.cpuprofile [TOP]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
for (const [i, id] of profile.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
const fns = new Map<string, number>();
const files = new Map<string, number>();
const areas = new Map<string, number>();
let total = 0;
let idle = 0;
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const ms = us / 1000;
  const a = area(url, functionName);
  if (a === 'idle') {
    idle += ms;
    continue;
  }
  total += ms;
  const where = url ? `${path.relative(ROOT, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'} ${where}`.trim();
  fns.set(key, (fns.get(key) ?? 0) + ms);
  const f = url ? path.relative(ROOT, url.replace(/^file:\/\//, '')) : functionName;
  files.set(f, (files.get(f) ?? 0) + ms);
  areas.set(a, (areas.get(a) ?? 0) + ms);
}
console.log(`profile: ${(total / 1000).toFixed(1)} s busy, ${(idle / 1000).toFixed(1)} s idle`);
top(areas, total, Number(n), 'area');
top(files, total, Number(n), 'file');
top(fns, total, Number(n), 'function');
