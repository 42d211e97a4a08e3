// The inputs the kernel reads to run an exec without a call of the tracee's (the file, each
// `#!` interpreter with its symlinks, the ELF program interpreter): the tracer's own
// reading of them (native/src/exec_chain.h), through the addon's execImpliedInputs, on files
// made here. test/trace/shell.test.ts checks the same chain in a traced exec.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadNative } from '../../src/trace/native';

const execImpliedInputs = (file: string, cwd: string) => loadNative().execImpliedInputs(file, cwd);

/** A minimal ELF image: header, program headers (a PT_LOAD and optionally a PT_INTERP), interpreter string. */
function elf(opts: { is64: boolean; le: boolean; interp: string | null; pad?: number }): Buffer {
  const { is64, le } = opts;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = opts.interp === null ? 1 : 2;
  const strOff = ehsize + phentsize * phnum + (opts.pad ?? 0);
  const str = opts.interp === null ? Buffer.alloc(0) : Buffer.from(opts.interp + '\0');
  const b = Buffer.alloc(strOff + str.length);
  const w16 = (v: number, o: number): number => (le ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const w32 = (v: number, o: number): number => (le ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
  const w64 = (v: number, o: number): number => (le ? b.writeBigUInt64LE(BigInt(v), o) : b.writeBigUInt64BE(BigInt(v), o));
  b.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1], 0);
  if (is64) {
    w64(ehsize, 32);
    w16(phentsize, 54);
    w16(phnum, 56);
  } else {
    w32(ehsize, 28);
    w16(phentsize, 42);
    w16(phnum, 44);
  }
  const ph = (k: number, type: number, off: number, size: number): void => {
    const o = ehsize + k * phentsize;
    w32(type, o);
    if (is64) {
      w64(off, o + 8);
      w64(size, o + 32);
    } else {
      w32(off, o + 4);
      w32(size, o + 16);
    }
  };
  ph(0, 1, 0, strOff); // PT_LOAD
  if (opts.interp !== null) ph(1, 3, strOff, str.length); // PT_INTERP
  str.copy(b, strOff);
  return b;
}

let dir: string;
beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-exec-inputs-')));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** file with `bytes`, and a plain file `target` (neither script nor ELF: the chain ends there) */
function withTarget(bytes: Buffer | string): { file: string; target: string } {
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, 'plain data\n');
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, typeof bytes === 'string' ? bytes.replace(/TARGET/g, target) : bytes);
  return { file, target };
}

describe('the #! line', () => {
  test.each([['#!TARGET\necho'], ['#! TARGET -x\n'], ['#!\tTARGET -e\n'], ['#!TARGET']])('%j names the interpreter', (head) => {
    const { file, target } = withTarget(head);
    expect(execImpliedInputs(file, '/')).toEqual([
      { path: file, kind: 'content' },
      { path: target, kind: 'content' },
    ]);
  });
  test.each([['#!\n'], ['# comment\n'], ['\x7fELF'], ['#']])('%j names none', (head) => {
    const { file } = withTarget(head);
    expect(execImpliedInputs(file, '/')).toEqual([{ path: file, kind: 'content' }]);
  });
  test('a relative interpreter is found from the cwd', () => {
    const { file, target } = withTarget('#!./target\n');
    expect(execImpliedInputs(file, dir)).toEqual([
      { path: file, kind: 'content' },
      { path: target, kind: 'content' },
    ]);
  });
});

describe('PT_INTERP', () => {
  test.each([
    ['ELF64 little-endian', { is64: true, le: true }],
    ['ELF32 big-endian', { is64: false, le: false }],
    ['ELF64 with its interpreter name past the first kilobyte', { is64: true, le: true, pad: 3000 }],
  ])('%s', (_, o) => {
    const target = path.join(dir, 'target');
    const { file } = withTarget(elf({ ...o, interp: target }));
    expect(execImpliedInputs(file, '/')).toEqual([
      { path: file, kind: 'content' },
      { path: target, kind: 'content' },
    ]);
  });
  test('a static ELF and a cut-off header name none', () => {
    const { file } = withTarget(elf({ is64: true, le: true, interp: null }));
    expect(execImpliedInputs(file, '/')).toEqual([{ path: file, kind: 'content' }]);
    fs.writeFileSync(file, elf({ is64: true, le: true, interp: '/x' }).subarray(0, 40));
    expect(execImpliedInputs(file, '/')).toEqual([{ path: file, kind: 'content' }]);
  });
});

describe('chains', () => {
  test('a script: the script, its interpreter chain with links, and the final ld.so', () => {
    const ld = path.join(dir, 'ld.so');
    fs.writeFileSync(ld, 'loader');
    fs.symlinkSync(ld, path.join(dir, 'ld-link'));
    const interp = path.join(dir, 'interp');
    fs.writeFileSync(interp, elf({ is64: true, le: true, interp: path.join(dir, 'ld-link') }), { mode: 0o755 });
    fs.symlinkSync('interp', path.join(dir, 'sh'));
    const inner = path.join(dir, 'inner.sh');
    fs.writeFileSync(inner, `#!${path.join(dir, 'sh')} -e\n`, { mode: 0o755 });
    const script = path.join(dir, 'script');
    fs.writeFileSync(script, `#!${inner}\necho hi\n`, { mode: 0o755 });
    expect(execImpliedInputs(script, '/')).toEqual([
      { path: script, kind: 'content' },
      { path: inner, kind: 'content' },
      { path: path.join(dir, 'sh'), kind: 'metadata' },
      { path: interp, kind: 'content' },
      { path: path.join(dir, 'ld-link'), kind: 'metadata' },
      { path: ld, kind: 'content' },
    ]);
  });

  test('a missing interpreter is an absent input; an unreadable executable is just itself', () => {
    const script = path.join(dir, 'script');
    fs.writeFileSync(script, '#!/nonexistent/pcache-test-interp\n');
    expect(execImpliedInputs(script, '/')).toEqual([
      { path: script, kind: 'content' },
      { path: '/nonexistent/pcache-test-interp', kind: 'absent' },
    ]);
    const gone = path.join(dir, 'gone');
    expect(execImpliedInputs(gone, '/')).toEqual([{ path: gone, kind: 'content' }]);
  });
});
