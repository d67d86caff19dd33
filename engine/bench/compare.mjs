// Prints the Weft engine and aws-local-stepfunctions results side by side.
// Usage: node compare.mjs weft.json als.json
import { readFileSync } from 'node:fs';
const [w, a] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));

// The corpus comparison uses the cases both engines ran and aws-local-stepfunctions got right, so
// neither side is credited for failing fast.
let wt = 0, at = 0, n = 0, trans = 0;
for (const [name, ar] of Object.entries(a.corpus.per_case)) {
  const wr = w.corpus.per_case[name];
  if (!wr || !ar.correct) continue;
  wt += wr.seconds_per_execution; at += ar.seconds_per_execution; n++; trans += wr.transitions;
}
const ms = (s) => (s * 1e3).toFixed(3).padStart(10);
const rows = [
  ['workload', 'weft ms', 'als ms', 'speed-up', 'weft transitions/s'],
  [`corpus (${n} common cases, each once)`, ms(wt), ms(at), (at / wt).toFixed(1) + 'x', Math.round(trans / wt)],
  ['1,000-state Pass chain', ms(w.pass_chain_1000.seconds_per_execution), ms(a.pass_chain_1000.seconds_per_execution),
    (a.pass_chain_1000.seconds_per_execution / w.pass_chain_1000.seconds_per_execution).toFixed(1) + 'x',
    Math.round(w.pass_chain_1000.transitions_per_second)],
  ['Map over 10,000 items', ms(w.map_10000.seconds_per_execution), ms(a.map_10000.seconds_per_execution),
    (a.map_10000.seconds_per_execution / w.map_10000.seconds_per_execution).toFixed(1) + 'x',
    Math.round(w.map_10000.transitions_per_second)],
];
for (const r of rows) console.log(r.map((c, i) => String(c).padEnd(i === 0 ? 38 : 20)).join(''));
console.log(`\nweft passes ${Object.keys(w.corpus.per_case).length} corpus cases it could parse; aws-local-stepfunctions got ${a.corpus.correct} of ${a.corpus.cases} right.`);
