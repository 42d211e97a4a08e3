// A pipeline step that draws a random subsample with `shuf` (unseeded: its
// randomness comes from the getrandom(2) system call, not from /dev/urandom).
// By DESIGN.md's one rule, nondeterminism a tracer can see must be part of the
// key or make the execution uncacheable, as reading /dev/urandom does; a
// re-run must therefore run shuf again rather than replay the first sample.
//
// This failed when written (getrandom(2) was not seen at all, so the second run
// replayed the first run's "random" lines); fixed by 1bfe708, which makes a
// blocking getrandom uncacheable.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '../..');
const PCACHE = process.env.PCACHE_PIPELINES_BIN ?? path.join(REPO, 'bin/pcache');

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-subsample-'));
  fs.mkdirSync(path.join(tmp, 'w'));
  const reads = Array.from({ length: 100000 }, (_, i) => `read${i}`).join('\n') + '\n';
  fs.writeFileSync(path.join(tmp, 'w/reads.txt'), reads);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function subsample(n: number): { stdout: string; executions: Record<string, number> } {
  const summary = path.join(tmp, `summary-${n}.json`);
  const r = spawnSync(
    process.execPath,
    [PCACHE, '--quiet', '--cache-dir', path.join(tmp, 'cache'), '--summary-json', summary, '--', 'shuf', '-n', '5', 'reads.txt'],
    { cwd: path.join(tmp, 'w'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  expect(r.status).toBe(0);
  return { stdout: r.stdout, executions: JSON.parse(fs.readFileSync(summary, 'utf8')).executions };
}

test('an unseeded shuf runs again on a re-run instead of replaying its first sample', () => {
  const first = subsample(1);
  expect(first.stdout.split('\n').filter((l) => l !== '')).toHaveLength(5);
  const second = subsample(2);
  expect(second.executions).toEqual({ total: 1, ran: 1, skipped: 0, uncacheable: 1 });
});
