// The fixture pipelines of issue 5 (fixtures/pipelines/<name>/run.sh, small
// size) end to end: a plain run against pcache's first run, its unchanged
// re-run, and its re-run after changing one sample's input, each compared with
// a plain run from the same state (fixtures/pipelines/compare.py with the
// pipeline's NONDETERMINISTIC.tsv). The execution counts of each pcache run
// are asserted exactly; the counts after the change are derived from the
// pipeline's structure and from which intermediate files the change altered in
// the plain run (a step whose inputs came out byte-identical is skipped).
//
// Each pipeline uses two fixed working directories (cache keys include the
// cwd): P for plain runs and C for pcache runs, both started from the same
// generated data. Needs the Debian packages scripts/setup.sh installs.
// PCACHE_PIPELINES_BIN points the suite at another pcache entry point;
// PCACHE_PIPELINES_KEEP=1 keeps the temporary directories.

import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const REPO = path.resolve(__dirname, '../..');
const PIPELINES = path.join(REPO, 'fixtures/pipelines');
const PCACHE = process.env.PCACHE_PIPELINES_BIN ?? path.join(REPO, 'bin/pcache');
const GEN = path.join(PIPELINES, 'gen/gen.py');

jest.setTimeout(240_000);

interface Counts {
  total: number;
  ran: number;
  skipped: number;
  uncacheable: number;
}
interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}
interface CachedResult extends Result {
  summary: { exitCode: number; executions: Counts };
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pcache-pipelines-'));
});
afterAll(() => {
  if (!process.env.PCACHE_PIPELINES_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
});

function run(argv: string[], cwd: string): Result {
  const r = spawnSync(argv[0], argv.slice(1), {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A working directory of pipeline `name` at its small size, holding a copy of `data`. */
class Pipeline {
  readonly plain: string;
  readonly cached: string;
  readonly cache: string;
  private runs = 0;

  constructor(readonly name: string) {
    const gen = path.join(tmp, `${name}-data`);
    const g = run(['python3', GEN, name, 'small', gen], tmp);
    if (g.status !== 0) throw new Error(`gen.py ${name} failed: ${g.stderr}`);
    this.plain = path.join(tmp, `${name}-plain`);
    this.cached = path.join(tmp, `${name}-cached`);
    this.cache = path.join(tmp, `${name}-cache`);
    for (const dir of [this.plain, this.cached]) {
      fs.mkdirSync(dir);
      fs.cpSync(gen, path.join(dir, 'data'), { recursive: true });
    }
  }

  get script(): string {
    return path.join(PIPELINES, this.name, 'run.sh');
  }

  runPlain(): Result {
    const r = run([this.script, 'small'], this.plain);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: r.stderr });
    return r;
  }

  runCached(): CachedResult {
    const summaryPath = path.join(tmp, `${this.name}-summary-${++this.runs}.json`);
    const r = run(
      // The pipelines are idempotent by construction (cp, bcftools index -f, mkdir -p re-run on
      // their own outputs give the same result): the first re-run may be skipped whole.
      [process.execPath, PCACHE, '--quiet', '--assume-idempotent', '--cache-dir', this.cache, '--summary-json', summaryPath, '--', this.script, 'small'],
      this.cached,
    );
    return { ...r, summary: JSON.parse(fs.readFileSync(summaryPath, 'utf8')) };
  }

  /** Differences between the two working directories after normalization (none expected). */
  differences(): string[] {
    const rules = path.join(PIPELINES, this.name, 'NONDETERMINISTIC.tsv');
    const r = run(['python3', path.join(PIPELINES, 'compare.py'), '--rules', rules, this.plain, this.cached], tmp);
    if (r.status !== 0 && r.status !== 1) throw new Error(`compare.py failed: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l !== '');
  }

  /** Applies gen.py's one-sample change to `rel` in both working directories. */
  mutate(op: 'mutate-sample' | 'mutate-family', rel: string): void {
    for (const dir of [this.plain, this.cached]) {
      const r = run(['python3', GEN, op, path.join(dir, rel)], tmp);
      if (r.status !== 0) throw new Error(`gen.py ${op} failed: ${r.stderr}`);
    }
  }

  /** Contents of plain's files, to tell afterwards which ones the change altered. */
  snapshot(rels: string[]): Map<string, Buffer> {
    return new Map(rels.map((rel) => [rel, fs.readFileSync(path.join(this.plain, rel))]));
  }

  changed(before: Map<string, Buffer>, rel: string): boolean {
    const old = before.get(rel);
    if (old === undefined) throw new Error(`${rel} was not snapshotted`);
    return !old.equals(fs.readFileSync(path.join(this.plain, rel)));
  }
}

function summaryOf(r: CachedResult): { exitCode: number; executions: Counts } {
  return { exitCode: r.summary.exitCode, executions: r.summary.executions };
}

/** Runs the four phases shared by all pipelines up to the change. */
function coldAndUnchanged(p: Pipeline, cold: Counts): void {
  const plain = p.runPlain();
  const first = p.runCached();
  expect(summaryOf(first)).toEqual({ exitCode: 0, executions: cold });
  expect({ stdout: first.stdout, stderr: first.stderr }).toEqual({ stdout: plain.stdout, stderr: plain.stderr });
  expect(p.differences()).toEqual([]);

  const again = p.runCached();
  expect(summaryOf(again)).toEqual({ exitCode: 0, executions: { total: 1, ran: 0, skipped: 1, uncacheable: 0 } });
  expect({ stdout: again.stdout, stderr: again.stderr }).toEqual({ stdout: plain.stdout, stderr: plain.stderr });
  expect(p.differences()).toEqual([]);
}

/** The change: plain re-run in P, pcache re-run in C, same outputs; returns pcache's counts. */
function afterChange(p: Pipeline): Counts {
  const plain = p.runPlain();
  const changed = p.runCached();
  expect(changed.summary.exitCode).toBe(0);
  expect({ stdout: changed.stdout, stderr: changed.stderr }).toEqual({ stdout: plain.stdout, stderr: plain.stderr });
  expect(p.differences()).toEqual([]);
  // What ran after the change was recorded as it is now: the next run skips everything.
  const settled = p.runCached();
  expect(summaryOf(settled)).toEqual({ exitCode: 0, executions: { total: 1, ran: 0, skipped: 1, uncacheable: 0 } });
  expect({ stdout: settled.stdout, stderr: settled.stderr }).toEqual({ stdout: plain.stdout, stderr: plain.stderr });
  expect(p.differences()).toEqual([]);
  return changed.summary.executions;
}

const b = (x: boolean): number => (x ? 1 : 0);

test('variant calling: faidx, bwa index, per sample fastp + bwa mem | samtools sort + index, per chromosome mpileup | call, concat, filter, stats', () => {
  const p = new Pipeline('variant');
  const samples = 4;
  const chroms = 3;
  // run.sh, dirname, mkdir, cp, faidx, bwa index, ls, sed, xargs, sed, cut, xargs,
  // sed, concat, index, filter, index, stats, grep, cut
  const top = 20;
  const perSample = 5; // sample.sh, fastp, bwa mem, samtools sort, samtools index
  const perChrom = 4; // call.sh, bcftools mpileup, bcftools call, bcftools index
  // uncacheable, as they read a pipe from outside themselves: sed after ls,
  // cut after grep, samtools sort per sample, bcftools call per chromosome
  const pipeReaders = 2 + samples + chroms;
  const total = top + samples * perSample + chroms * perChrom;
  coldAndUnchanged(p, { total, ran: total, skipped: 0, uncacheable: pipeReaders });

  const before = p.snapshot(['out/stats.txt', 'out/bam/S2.bam']);
  p.mutate('mutate-sample', 'data/samples/S2_R1.fq.gz');
  const counts = afterChange(p);
  expect(p.changed(before, 'out/bam/S2.bam')).toBe(true);
  // Run: run.sh, the pipe-reading sed and cut, both xargs, sample S2's five
  // executions, every chromosome's calling (all BAMs are its input), concat,
  // filter, stats and their indexes, and grep when stats.txt came out different.
  // Skipped: dirname, mkdir, cp, faidx, bwa index, ls, the other samples, sed, cut, sed.
  const grep = b(p.changed(before, 'out/stats.txt'));
  const ran = 1 + 2 + 2 + perSample + chroms * perChrom + 5 + grep;
  const skipped = 6 + (samples - 1) + 3 + (1 - grep);
  expect(counts).toEqual({ total: ran + skipped, ran, skipped, uncacheable: 2 + 1 + chroms });
});

test('alignment and profile search: per family clustalo, hmmbuild, hmmsearch; hmmpress, hmmscan, sort/awk summary', () => {
  const p = new Pipeline('align');
  const families = 4;
  const perFamily = 4; // family.sh, clustalo, hmmbuild, hmmsearch
  // run.sh, dirname, mkdir, ls, sed, xargs, sed, xargs + cat, hmmpress, hmmscan,
  // cat | awk | sort, awk | sort, cut | sort | uniq -c | awk, join, cat
  const top = 22;
  // sed after ls, awk and sort after cat, sort after awk, sort, uniq and awk after cut
  const pipeReaders = 7;
  const total = top + families * perFamily;
  coldAndUnchanged(p, { total, ran: total, skipped: 0, uncacheable: pipeReaders });

  const outputs = ['out/hits-per-family.tsv', 'out/best-family.tsv', 'out/queries-per-family.tsv', 'out/summary.tsv'];
  const before = p.snapshot(outputs);
  p.mutate('mutate-family', 'data/families/fam02.fa');
  const counts = afterChange(p);
  // Run: run.sh, the pipe readers, the family xargs and fam02's four executions,
  // xargs + cat of the profiles, hmmpress, hmmscan (dated profiles changed),
  // cat of the hit tables, awk of scan.tbl (dated tables changed); cut when
  // best-family.tsv changed, join when one of its inputs did, the final cat
  // when summary.tsv did. Skipped: dirname, mkdir, ls, sed, and those three otherwise.
  const cut = b(p.changed(before, 'out/best-family.tsv'));
  const join = b(p.changed(before, 'out/hits-per-family.tsv') || p.changed(before, 'out/queries-per-family.tsv'));
  const last = b(p.changed(before, 'out/summary.tsv'));
  const ran = 1 + pipeReaders + 1 + perFamily + 2 + 2 + 1 + 1 + cut + join + last;
  const skipped = 4 + (families - 1) + (3 - cut - join - last);
  expect(counts).toEqual({ total: ran + skipped, ran, skipped, uncacheable: pipeReaders });
});

test('process-heavy: split per sample, per chunk seqtk, awk, sort, gzip; merge and summary', () => {
  const p = new Pipeline('chunks');
  const samples = 3;
  const chunksPerSample = 6; // 6000 reads, 1000 per chunk
  const perSplit = 4; // split.sh, mkdir, gzip -dc, split
  const perChunk = 6; // chunk.sh, seqtk trimfq, seqtk seq, awk, sort, gzip
  const perMerge = 5; // merge.sh, sort -m, cat, gzip, awk
  // run.sh, dirname, mkdir, ls, sed, xargs (split), ls, sed, xargs (chunks),
  // xargs (merge), sed, xargs + cat, cat
  const top = 14;
  // sed after ls, split per sample, sed after ls, gzip per sample in merge, xargs cat
  const pipeReaders = 1 + samples + 1 + samples + 1;
  const chunks = samples * chunksPerSample;
  const total = top + samples * (perSplit + perMerge) + chunks * perChunk;
  coldAndUnchanged(p, { total, ran: total, skipped: 0, uncacheable: pipeReaders });

  const tables = ['out/work/C2/part.000.trim.fq', 'out/work/C2/part.000.fa', 'out/work/C2/part.000.gc.tsv', 'out/C2.gc.tsv', 'out/C2.summary.tsv', 'out/summary.tsv'];
  const before = p.snapshot(['out/split/C2/part.000.fq', 'out/split/C2/part.001.fq', ...tables]);
  p.mutate('mutate-sample', 'data/samples/C2.fq.gz');
  const counts = afterChange(p);
  // The change is in the first read: only chunk part.000 of sample C2 differs.
  expect(p.changed(before, 'out/split/C2/part.000.fq')).toBe(true);
  expect(p.changed(before, 'out/split/C2/part.001.fq')).toBe(false);
  expect(p.changed(before, 'out/work/C2/part.000.trim.fq')).toBe(true);
  // Run: run.sh, the pipe readers of run.sh (sed, sed, xargs cat), the three
  // xargs, C2's split.sh with gzip -dc and split, C2's part.000 chunk.sh with
  // seqtk trimfq, seqtk seq and gzip (the trimmed reads changed), C2's merge.sh
  // with its gzip; and each step whose input the change altered: awk of the
  // chunk and cat of the merge (FASTA), sort of the chunk and sort -m of the
  // merge (GC table), awk of the merge (merged table), the summary's cat and the
  // last cat (C2's summary); and the ls listing the chunks, which stats each of
  // them: split rewrote all of C2's chunks, so their modification times
  // changed. Skipped: dirname, mkdir, the first ls, C2's mkdir, the other
  // samples' split.sh and merge.sh, every other chunk, sed, and the conditional
  // ones whose input came out byte-identical.
  const fa = b(p.changed(before, 'out/work/C2/part.000.fa'));
  const gc = b(p.changed(before, 'out/work/C2/part.000.gc.tsv'));
  const merged = b(p.changed(before, 'out/C2.gc.tsv'));
  const summary = b(p.changed(before, 'out/C2.summary.tsv'));
  const ran = 1 + 3 + 3 + 3 + 1 + 4 + 2 + 2 * fa + 2 * gc + merged + 2 * summary;
  const skipped = 4 + 2 * (samples - 1) + (chunks - 1) + 1 + 2 * (1 - fa) + 2 * (1 - gc) + (1 - merged) + 2 * (1 - summary);
  expect(counts).toEqual({ total: ran + skipped, ran, skipped, uncacheable: 1 + 1 + 1 + 1 + 1 });
});
