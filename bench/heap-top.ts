/**
 * Reads a V8 heap snapshot (`npm run bench -- --soak 300 --heap-snapshot DIR`, or any `.heapsnapshot`) and prints
 * what fills the heap: objects grouped by constructor (strings, arrays, closures and buffers by kind), with their
 * count and summed self size. Self size, not retained size: a transaction that keeps a message alive shows up as the
 * message's own objects (strings, header arrays), which is what shrinking them would save.
 * Usage: node bench/heap-top.ts FILE.heapsnapshot [TOP=30]
 */
import fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, n = '30'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/heap-top.ts FILE.heapsnapshot [TOP]');
  process.exit(2);
}
const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt]!] ?? '?';
  const size = snap.nodes[i + sizeAt]!;
  total += size;
  // Objects by constructor; strings, code, arrays and the like by their kind (their "name" is their content).
  const name = type === 'object' || type === 'closure' ? snap.strings[snap.nodes[i + nameAt]!] : undefined;
  const key = name !== undefined ? `${type === 'closure' ? 'closure ' : ''}${name}` : `(${type})`;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += size;
  groups.set(key, g);
}
console.log(
  `heap snapshot: ${(total / 2 ** 20).toFixed(1)} MiB in ${(snap.nodes.length / width).toLocaleString()} objects`,
);
console.log('\n| objects | count | self MiB | % |\n|---|---|---|---|');
for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(n))) {
  console.log(
    `| ${key.replaceAll('|', '\\|').slice(0, 80)} | ${g.count.toLocaleString()} | ${(g.bytes / 2 ** 20).toFixed(1)} | ${((100 * g.bytes) / total).toFixed(1)} |`,
  );
}
