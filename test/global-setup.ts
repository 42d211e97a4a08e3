// Jest globalSetup: build everything the tests run (addon, TypeScript, C fixtures)
// once per test run. `make` is incremental, so a built tree costs a few stats.
import { spawnSync } from 'child_process';
import * as path from 'path';

export default function globalSetup(): void {
  const repo = path.resolve(__dirname, '..');
  const r = spawnSync('make', ['-s', 'build'], { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    throw new Error(`\`make -s build\` failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}
