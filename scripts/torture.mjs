#!/usr/bin/env node
// `npm run torture`: the fault and hostile-input suite with many trials, then the README's reliability table.
//   TORTURE_TRIALS=25 by default; the normal test suite runs the same files with 3 trials.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const report = path.join(os.tmpdir(), `scitex-torture-${process.pid}.jsonl`);
const trials = process.env.TORTURE_TRIALS ?? '25';
// A trial class runs inside one test: its time grows with the trials, so does the timeout (npm test keeps 60 s).
const timeout = Math.max(60_000, Number(trials) * 20_000);
const r = spawnSync('npx', ['vitest', 'run', `--testTimeout=${timeout}`, 'test/torture', 'test/cli/restore-hostile.test.ts', 'test/cli/migrate.test.ts'], {
  stdio: 'inherit',
  env: { ...process.env, TORTURE_TRIALS: trials, TORTURE_REPORT: report },
});
const rows = fs.existsSync(report) ? fs.readFileSync(report, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
fs.rmSync(report, { force: true });
console.log('\n| fault or input class | trials | passed | guaranteed |\n|---|---|---|---|');
for (const x of rows) console.log(`| ${x.klass} | ${x.trials} | ${x.passed} | ${x.guarantee} |`);
process.exit(r.status ?? 1);
