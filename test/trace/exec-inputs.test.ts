import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { elfInterpreter, execImpliedInputs, resolveWithLinks, shebangInterpreter } from '../../src/trace/exec-inputs';

/** A minimal ELF image: header, program headers (a PT_LOAD and optionally a PT_INTERP), interpreter string. */
function elf(opts: { is64: boolean; le: boolean; interp: string | null }): Buffer {
  const { is64, le } = opts;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phnum = opts.interp === null ? 1 : 2;
  const strOff = ehsize + phentsize * phnum;
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

const reader = (b: Buffer) => (pos: number, len: number) => b.subarray(pos, pos + len);

describe('shebangInterpreter', () => {
  test.each([
    ['#!/bin/sh\necho', '/bin/sh'],
    ['#! /usr/bin/env python3\n', '/usr/bin/env'],
    ['#!\t/bin/bash -e\n', '/bin/bash'],
    ['#!/bin/sh', '/bin/sh'],
  ])('%j -> %s', (head, interp) => {
    expect(shebangInterpreter(Buffer.from(head))).toBe(interp);
  });
  test.each([['#!\n'], ['# comment\n'], ['\x7fELF'], ['#']])('%j is not a script', (head) => {
    expect(shebangInterpreter(Buffer.from(head))).toBeNull();
  });
});

describe('elfInterpreter', () => {
  test('ELF64 little-endian with PT_INTERP', () => {
    expect(elfInterpreter(reader(elf({ is64: true, le: true, interp: '/lib64/ld-linux-x86-64.so.2' })))).toBe('/lib64/ld-linux-x86-64.so.2');
  });
  test('ELF32 big-endian with PT_INTERP', () => {
    expect(elfInterpreter(reader(elf({ is64: false, le: false, interp: '/lib/ld.so.1' })))).toBe('/lib/ld.so.1');
  });
  test('static ELF and non-ELF files have none', () => {
    expect(elfInterpreter(reader(elf({ is64: true, le: true, interp: null })))).toBeNull();
    expect(elfInterpreter(reader(Buffer.from('#!/bin/sh\n')))).toBeNull();
    expect(elfInterpreter(reader(elf({ is64: true, le: true, interp: '/x' }).subarray(0, 40)))).toBeNull();
  });
});

describe('on a real file system', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-exec-inputs-')));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('resolveWithLinks follows relative and absolute links and lists each', () => {
    fs.mkdirSync(path.join(dir, 'real'));
    fs.writeFileSync(path.join(dir, 'real', 'f'), '');
    fs.symlinkSync('real', path.join(dir, 'rel')); // relative to its directory
    fs.symlinkSync(path.join(dir, 'rel', 'f'), path.join(dir, 'abs'));
    expect(resolveWithLinks(path.join(dir, 'abs'))).toEqual({
      resolved: path.join(dir, 'real', 'f'),
      links: [path.join(dir, 'abs'), path.join(dir, 'rel')],
      exists: true,
    });
    expect(resolveWithLinks('rel/../real/missing', dir)).toEqual({
      resolved: path.join(dir, 'real', 'missing'),
      links: [path.join(dir, 'rel')],
      exists: false,
    });
  });

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
