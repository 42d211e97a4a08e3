// The live progress line's counts: "running" goes back down as executions end.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Store } from '../../cache-store/store';
import { CachedRun } from '../../src/core/cached-run';

test('running counts executions in flight and ends at 0', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-progress-'));
  const store = Store.open(path.join(dir, 'cache'), { durable: false });
  try {
    const seen: number[] = [];
    const summary = await new CachedRun({
      argv: ['/bin/sh', '-c', '/bin/true; /bin/true; exit 0'],
      file: '/bin/sh',
      env: { PATH: '/usr/bin:/bin' },
      cwd: dir,
      store,
      onProgress: (c) => seen.push(c.running),
    }).run();
    // the second /bin/true is a hit on the first one's entry, recorded moments before
    expect({ ran: summary.ran, skipped: summary.skipped }).toEqual({ ran: 2, skipped: 1 });
    expect(Math.max(...seen)).toBe(2); // sh and one /bin/true at a time
    expect(seen[seen.length - 1]).toBe(0);
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
