// A step whose stdout is a regular file it alone writes is not captured write by write: the
// tracer reads the region it wrote back at its exit (native/src/tracer.cc, "stdio write
// stops"). These run `pcache trace` with its own stdout/stderr on /dev/null, the arrangement
// in which read-back happens, and check the byte counts the record gives each step.

import { spawn } from 'child_process';
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

  test('a file opened for appending is captured write by write: a writer outside pcache is not part of the step', async () => {
    // The outside writer appends to log.txt while the step (appending to it too) sleeps. Read
    // back, the step's stdout would be the file's growth: "outside" and its own line.
    const dir = tempDir();
    const log = path.join(dir, 'log.txt');
    fs.writeFileSync(log, 'old\n');
    const outside = spawn('/bin/sh', ['-c', `sleep 0.5; echo outside >> ${log}`], { stdio: 'ignore' });
    const done = new Promise((resolve) => outside.on('close', resolve));
    const { record, status } = traceRun(['/bin/sh', '-c', `sh -c 'sleep 1.2; echo in' >> ${log}`], { quietStdio: true, cwd: dir });
    await done;
    expect(status).toBe(0);
    expect(fs.readFileSync(log, 'utf8')).toBe('old\noutside\nin\n');
    const step = record.executions.find((e) => e.argv[0] === 'sh' && e.argv[2] === 'sleep 1.2; echo in');
    expect(step?.stdout).toEqual({ kind: 'file', target: log, bytes: 3 });
  });
});
