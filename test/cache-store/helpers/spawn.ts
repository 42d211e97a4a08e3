import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';

export const WRITER = path.join(__dirname, 'writer.js');

export interface Writer {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();

/** Kills writers still running (after a failed assertion) so temp dirs can be removed. */
export async function killWriters(): Promise<void> {
  await Promise.all(
    [...running].map((child) => {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      return gone;
    }),
  );
}

export function startWriter(args: Array<string | number>): Writer {
  const child = spawn(process.execPath, [WRITER, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  const w: Writer = { child, stdout: '', stderr: '', ready: undefined as never, exited: undefined as never };
  w.ready = new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      w.stdout += d.toString();
      if (w.stdout.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`writer exited before ready: ${w.stderr}`)));
  });
  w.ready.catch(() => undefined);
  child.stderr!.on('data', (d: Buffer) => (w.stderr += d.toString()));
  w.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return w;
}
