// Runs the benchmark workloads on aws-local-stepfunctions (the TypeScript interpreter), printing
// JSON in the same shape as `cargo bench -p engine --bench throughput`.
// Usage: node als.mjs CORPUS_DIR OUT.json
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';

const [corpusArg, outFile] = process.argv.slice(2);
const corpus = existsSync(join(corpusArg, 'asl')) ? join(corpusArg, 'asl') : corpusArg;

// Our engine runs the corpus on virtual time; give aws-local-stepfunctions zero-length Waits and
// retry pauses too, so that both measure interpretation rather than sleeping.
function overridesFor(def, acc = { waitTimeOverrides: {}, retryIntervalOverrides: {} }) {
  for (const [name, s] of Object.entries(def.States || {})) {
    if (s.Type === 'Wait') acc.waitTimeOverrides[name] = 0;
    if (s.Retry) acc.retryIntervalOverrides[name] = 0;
    for (const b of s.Branches || []) overridesFor(b, acc);
    if (s.ItemProcessor) overridesFor(s.ItemProcessor, acc);
    if (s.Iterator) overridesFor(s.Iterator, acc);
  }
  return acc;
}

function equal(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (a && typeof a === 'object') {
    if (!b || typeof b !== 'object' || Array.isArray(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => equal(a[k], b[k]));
  }
  return a === b;
}

async function once(sm, input, overrides) {
  const ex = sm.run(input, { overrides });
  try {
    return { status: 'SUCCEEDED', output: await ex.result };
  } catch (e) {
    return { status: 'FAILED', error: e?.name, cause: e?.message };
  }
}

async function measure(def, input, budgetMs, minRuns) {
  const sm = new StateMachine(def, { validationOptions: { noValidate: true } });
  const overrides = overridesFor(def);
  const first = await once(sm, input, overrides);
  // CPU time (user + system, all of Node's threads), as the Rust side measures CPU time: the
  // machine may be shared with other work.
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  let runs = 0;
  while (runs < minRuns || performance.now() - start < budgetMs) {
    await once(sm, input, overrides);
    runs++;
  }
  const cpu = process.cpuUsage(cpu0);
  return { first, runs, seconds: (cpu.user + cpu.system) / 1e6 };
}

const perCase = {};
let total = 0, cases = 0, correct = 0;
for (const f of readdirSync(corpus).filter((f) => f.endsWith('.json')).sort()) {
  const c = JSON.parse(readFileSync(join(corpus, f), 'utf8'));
  let r;
  try {
    r = await measure(c.definition, c.input, 50, 5);
  } catch (e) {
    perCase[c.name] = { error: String(e?.message || e) };
    continue;
  }
  const exp = c.expected;
  const ok = r.first.status === exp.status && (exp.status !== 'SUCCEEDED' || equal(r.first.output, exp.output));
  const per = r.seconds / r.runs;
  perCase[c.name] = { seconds_per_execution: per, correct: ok };
  total += per; cases++; if (ok) correct++;
}

function chain(n) {
  const States = {};
  for (let i = 0; i < n; i++) States[`S${i}`] = i + 1 === n ? { Type: 'Pass', End: true } : { Type: 'Pass', Next: `S${i + 1}` };
  return { StartAt: 'S0', States };
}
const mapDef = { StartAt: 'M', States: { M: { Type: 'Map', ItemsPath: '$.items',
  ItemProcessor: { StartAt: 'P', States: { P: { Type: 'Pass', Parameters: { 'v.$': '$' }, End: true } } }, End: true } } };

const ch = await measure(chain(1000), { hello: 'world' }, 1000, 3);
const items = Array.from({ length: 10000 }, (_, i) => ({ i }));
const mp = await measure(mapDef, { items }, 1000, 2);
const report = {
  engine: 'aws-local-stepfunctions',
  corpus: { cases, correct, seconds_all_cases_once: total, per_case: perCase },
  pass_chain_1000: { seconds_per_execution: ch.seconds / ch.runs, transitions: 1000, status: ch.first.status,
    transitions_per_second: 1000 * ch.runs / ch.seconds },
  map_10000: { seconds_per_execution: mp.seconds / mp.runs, transitions: 10001, status: mp.first.status,
    transitions_per_second: 10001 * mp.runs / mp.seconds },
};
writeFileSync(outFile, JSON.stringify(report, null, 1));
console.log(`aws-local-stepfunctions corpus: ${cases} cases ran (${correct} correct), ${(total * 1e3).toFixed(3)} ms for all once`);
