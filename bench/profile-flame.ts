/**
 * The flame graph of a V8 CPU profile (`npm run bench -- --cpu-prof DIR`), in two forms:
 *  - `--folded`: one line per stack, `root;caller;callee <microseconds>`, the input of every flame graph renderer
 *    (flamegraph.pl, inferno, speedscope's "import");
 *  - default: the same graph as indented text, each frame with its inclusive share of the busy time, down to the
 *    frames of at least MIN_PERCENT (default 1.5): the widest bars, readable in a terminal or a note.
 * Usage: node bench/profile-flame.ts FILE.cpuprofile [--folded] [MIN_PERCENT]
 * Frames of one function in one file are one frame (line numbers dropped), so a hot function's calls merge.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Frame {
  name: string;
  selfUs: number;
  totalUs: number;
  children: Map<string, Frame>;
}

const ROOT = path.resolve(import.meta.dirname, '..');
const SKIPPED = new Set(['(root)', '(idle)']);

function frameName({ functionName, url }: ProfileNode['callFrame']): string {
  const fn = functionName || '(anonymous)';
  if (!url) return fn;
  const file = url.startsWith('node:') ? url : path.relative(ROOT, url.replace(/^file:\/\//, ''));
  return `${fn} ${file.replace(/^.*node_modules\//, '')}`;
}

/** The call tree with self time per node, merged by frame name along each path. */
function buildTree(profile: Profile): Frame {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfById = new Map<number, number>();
  for (const [i, id] of profile.samples.entries())
    selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const root: Frame = { name: 'all', selfUs: 0, totalUs: 0, children: new Map() };
  for (const [id, us] of selfById) {
    const stack: string[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      stack.push(frameName(byId.get(at)!.callFrame));
    }
    stack.reverse();
    if (stack.includes('(idle)')) continue;
    let frame = root;
    frame.totalUs += us;
    for (const name of stack.filter((n) => !SKIPPED.has(n))) {
      let child = frame.children.get(name);
      if (!child) {
        child = { name, selfUs: 0, totalUs: 0, children: new Map() };
        frame.children.set(name, child);
      }
      child.totalUs += us;
      frame = child;
    }
    frame.selfUs += us;
  }
  return root;
}

function printFolded(frame: Frame, prefix: string[]): void {
  const stack = frame.name === 'all' ? prefix : [...prefix, frame.name.replaceAll(';', ',')];
  if (frame.selfUs > 0 && stack.length > 0) console.log(`${stack.join(';')} ${Math.round(frame.selfUs)}`);
  for (const child of frame.children.values()) printFolded(child, stack);
}

function printTree(frame: Frame, total: number, minPercent: number, depth: number): void {
  const children = [...frame.children.values()].sort((a, b) => b.totalUs - a.totalUs);
  for (const child of children) {
    const percent = (100 * child.totalUs) / total;
    if (percent < minPercent) continue;
    const self = child.selfUs > 0 ? ` (self ${((100 * child.selfUs) / total).toFixed(1)}%)` : '';
    console.log(`${'  '.repeat(depth)}${percent.toFixed(1).padStart(5)}% ${child.name}${self}`);
    printTree(child, total, minPercent, depth + 1);
  }
}

const args = process.argv.slice(2);
const file = args.find((a) => a.endsWith('.cpuprofile'));
if (!file) {
  console.error('usage: node bench/profile-flame.ts FILE.cpuprofile [--folded] [MIN_PERCENT]');
  process.exit(2);
}
const tree = buildTree(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile);
if (args.includes('--folded')) {
  printFolded(tree, []);
} else {
  const minPercent = Number(args.find((a) => /^\d+(\.\d+)?$/.test(a)) ?? '1.5');
  console.log(`busy: ${(tree.totalUs / 1e6).toFixed(1)} s; frames with at least ${minPercent}% of it, inclusive`);
  printTree(tree, tree.totalUs, minPercent, 0);
}
