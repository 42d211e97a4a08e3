// Inputs implied by a successful execve that the tracer cannot see as syscalls:
// the kernel itself reads the executable, follows a `#!` line to the
// interpreter, and maps the ELF program interpreter (PT_INTERP, i.e. ld.so)
// without any open() by the tracee. Everything ld.so loads afterwards arrives
// as ordinary fs events, so only these first links of the chain live here.
//
// The tracer reads the same chain at the exec's entry (native/src/exec_chain.h,
// ExecRequest.implied), while the tracee waits: these functions state the rules
// in TypeScript, serve requests that come without it (tests), and are what the
// tracer's result is checked against (test/trace/shell.test.ts).

import * as fs from 'fs';
import * as path from 'path';
import type { InputRecord } from './record';

/** Linux reads at most this many bytes of a `#!` line (BINPRM_BUF_SIZE). */
const SHEBANG_MAX = 256;
/** Linux gives up after this many nested interpreters (binfmt recursion limit). */
const MAX_INTERPRETER_DEPTH = 5;
/** ELOOP limit of the kernel's path walk. */
const MAX_SYMLINK_HOPS = 40;

const PT_INTERP = 3;

/**
 * The interpreter named by a `#!` line, or null when `head` is not a script.
 * Like binfmt_script: skip blanks after `#!`, the interpreter ends at the
 * first blank, NUL or newline; the optional argument is irrelevant here.
 */
export function shebangInterpreter(head: Buffer): string | null {
  if (head.length < 2 || head[0] !== 0x23 /* # */ || head[1] !== 0x21 /* ! */) return null;
  const line = head.subarray(2, Math.min(head.length, SHEBANG_MAX));
  let i = 0;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  let j = i;
  while (j < line.length && line[j] !== 0x20 && line[j] !== 0x09 && line[j] !== 0x0a && line[j] !== 0x00) j++;
  if (j === i) return null;
  return line.subarray(i, j).toString('utf8');
}

/**
 * PT_INTERP of an ELF file (32 or 64 bit, either byte order), or null when the
 * file is not ELF or is statically linked. `read(pos, len)` returns the bytes
 * at that offset (possibly fewer at end of file).
 */
export function elfInterpreter(read: (pos: number, len: number) => Buffer): string | null {
  const eh = read(0, 64);
  if (eh.length < 52 || eh[0] !== 0x7f || eh[1] !== 0x45 || eh[2] !== 0x4c || eh[3] !== 0x46) return null;
  const is64 = eh[4] === 2;
  if (!is64 && eh[4] !== 1) return null;
  const le = eh[5] === 1;
  if (!le && eh[5] !== 2) return null;
  if (is64 && eh.length < 64) return null;
  const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number): number => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const phoff = is64 ? u64(eh, 32) : u32(eh, 28);
  const phentsize = is64 ? u16(eh, 54) : u16(eh, 42);
  const phnum = is64 ? u16(eh, 56) : u16(eh, 44);
  const minEnt = is64 ? 56 : 32;
  if (phoff === 0 || phnum === 0 || phentsize < minEnt) return null;
  const table = read(phoff, phentsize * phnum);
  for (let k = 0; k < phnum; k++) {
    const o = k * phentsize;
    if (o + minEnt > table.length) break;
    if (u32(table, o) !== PT_INTERP) continue;
    const off = is64 ? u64(table, o + 8) : u32(table, o + 4);
    const size = is64 ? u64(table, o + 32) : u32(table, o + 16);
    if (size === 0 || size > 4096) return null;
    const raw = read(off, size);
    const nul = raw.indexOf(0);
    const interp = (nul >= 0 ? raw.subarray(0, nul) : raw).toString('utf8');
    return interp.length > 0 ? interp : null;
  }
  return null;
}

export interface ResolvedPath {
  /** the path with every symlink followed ('..' handled after following, as the kernel does) */
  resolved: string;
  /** each symlink traversed, in order */
  links: string[];
  /** false when some component did not exist (resolved is then the path as far as it got, plus the rest) */
  exists: boolean;
}

/** Resolve `p` (absolute, or relative to `cwd`) component by component, recording every symlink. */
export function resolveWithLinks(p: string, cwd = '/'): ResolvedPath {
  const links: string[] = [];
  // Not path.resolve: '..' must apply after the symlinks before it are followed.
  const pending = (p.startsWith('/') ? p : `${cwd}/${p}`).split('/').filter((c) => c.length > 0);
  let cur = '/';
  let hops = 0;
  while (pending.length > 0) {
    const comp = pending.shift() as string;
    if (comp === '.') continue;
    if (comp === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, comp);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(next);
    } catch {
      return { resolved: path.join(next, ...pending), links, exists: false };
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) return { resolved: next, links, exists: false };
      links.push(next);
      const target = fs.readlinkSync(next);
      if (target.startsWith('/')) cur = '/';
      pending.unshift(...target.split('/').filter((c) => c.length > 0));
      continue;
    }
    cur = next;
  }
  return { resolved: cur, links, exists: true };
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const buf = Buffer.alloc(len);
  const n = fs.readSync(fd, buf, 0, len, pos);
  return buf.subarray(0, n);
}

/**
 * The inputs the kernel reads when it executes `exe` (already resolved by the
 * tracer, which reports the symlinks it traversed separately): the file
 * itself, each `#!` interpreter (with the symlinks on the way) and the ELF
 * program interpreter of the final binary. In the order the kernel reads them.
 * A file that cannot be read (execute-only, vanished) contributes only itself.
 */
export function execImpliedInputs(exe: string, cwd: string): InputRecord[] {
  const inputs: InputRecord[] = [];
  const seen = new Set<string>();
  const add = (p: string, kind: InputRecord['kind']): void => {
    const key = `${kind}\0${p}`;
    if (seen.has(key)) return;
    seen.add(key);
    inputs.push({ path: p, kind });
  };
  let file = exe;
  add(file, 'content');
  for (let depth = 0; depth < MAX_INTERPRETER_DEPTH; depth++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return inputs;
    }
    let next: string | null;
    try {
      const head = readAt(fd, 0, SHEBANG_MAX);
      const script = shebangInterpreter(head);
      if (script === null) {
        const interp = elfInterpreter((pos, len) => readAt(fd, pos, len));
        if (interp !== null) {
          const r = resolveWithLinks(interp, cwd);
          for (const l of r.links) add(l, 'metadata');
          add(r.resolved, r.exists ? 'content' : 'absent');
        }
        return inputs;
      }
      next = script;
    } catch {
      return inputs;
    } finally {
      fs.closeSync(fd);
    }
    const r = resolveWithLinks(next, cwd);
    for (const l of r.links) add(l, 'metadata');
    if (!r.exists) {
      add(r.resolved, 'absent');
      return inputs;
    }
    add(r.resolved, 'content');
    file = r.resolved;
  }
  return inputs;
}
