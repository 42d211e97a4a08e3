// A step whose stdout is a regular file it alone writes is not captured write by write: the
// tracer reads the region it wrote back at its exit (native/src/tracer.cc, "stdio write
// stops"). These run `pcache trace` with its own stdout/stderr on /dev/null, the arrangement
// in which read-back happens, and check the byte counts the record gives each step.

import * as fs from 'fs';
import * as path from 'path';
import { cleanTempDirs, execNamed, tempDir, traceRun } from './helpers';

afterAll(cleanTempDirs);

describe('stdout read back from its file', () => {
  test('a regular file under /dev (/dev/shm) is read back like any other', () => {
    const shm = fs.mkdtempSync('/dev/shm/pcache-readback-');
    try {
      const out = path.join(shm, 'out.txt');
      const { record, status } = traceRun(['/bin/sh', '-c', `seq 1 3 > ${out}`], { quietStdio: true });
      expect(status).toBe(0);
      const seq = execNamed(record, 'seq');
      expect(seq.stdout).toEqual({ kind: 'dev', target: out, bytes: 6 });
      expect(seq.uncacheable).toEqual([]);
    } finally {
      fs.rmSync(shm, { recursive: true, force: true });
    }
  });
});
