// The live status line of a run on a terminal: executions running, done, skipped, time
// saved so far.
//
// The traced programs write to the same terminal at any moment, mid-line included, and
// pcache never sees those bytes. A status line drawn at the cursor (`\r` + text) would end
// up inside their lines. So the bottom row of the terminal is reserved for it instead: a
// scroll region (DECSTBM) of rows 1..N-1 keeps the programs' output scrolling above, and
// each redraw saves the cursor, writes row N, and restores the cursor, in one write(2)
// (a terminal write is not interleaved with another process's write). The programs'
// bytes are never touched and a partial line they left continues where it was.
//
// Trade-offs: while a run is in progress the terminal has one row less to scroll; a
// full-screen program run under pcache (an editor, a pager, `clear`) resets the region and
// its last row can be overdrawn by the status line until the run ends (--quiet avoids it;
// the bytes it writes are untouched either way); the line is redrawn at most every
// 200 ms; it is only used when stderr is a terminal with at least 3 rows and TERM is not
// `dumb`, and not with --quiet. When the run ends (or the process exits) the region is
// reset and the row cleared, before pcache prints anything.

import { formatDuration } from './runs';

export interface ProgressCounts {
  running: number;
  ran: number;
  skipped: number;
  savedMs: number;
}

/** The part of a tty.WriteStream the status line needs (tests pass a fake). */
export interface StatusTerminal {
  write(text: string): unknown;
  readonly rows: number;
  readonly columns: number;
  on?(event: 'resize', listener: () => void): unknown;
  removeListener?(event: 'resize', listener: () => void): unknown;
}

export const REDRAW_INTERVAL_MS = 200;

const ESC = '\x1b';
const SAVE = `${ESC}7`;
const RESTORE = `${ESC}8`;

export function progressText(c: ProgressCounts): string {
  const done = Math.max(0, c.ran - c.running);
  return `pcache: ${c.running} running, ${done} done, ${c.skipped} skipped; saved ${formatDuration(c.savedMs)}`;
}

/** Whether a status line may be drawn on this stream. */
export function wantsProgress(stream: { isTTY?: boolean; rows?: number }, env: NodeJS.ProcessEnv, quiet: boolean): boolean {
  return !quiet && stream.isTTY === true && (stream.rows ?? 0) >= 3 && env.TERM !== 'dumb';
}

export class ProgressLine {
  private counts: ProgressCounts = { running: 0, ran: 0, skipped: 0, savedMs: 0 };
  private drawn: string | null = null;
  private rows = 0;
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  private readonly onResize = (): void => this.resize();
  private readonly onExit = (): void => this.stop();

  constructor(
    private readonly term: StatusTerminal,
    private readonly intervalMs = REDRAW_INTERVAL_MS,
  ) {}

  /** Reserves the bottom row. The cursor is assumed at the start of a line (pcache has not run anything yet). */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.rows = this.term.rows;
    // A newline and back up: if the cursor was on the last row the screen scrolls one up,
    // so the cursor is inside the region either way.
    this.term.write(`\n${ESC}[1A${this.regionSequence()}`);
    this.term.on?.('resize', this.onResize);
    process.on('exit', this.onExit);
    this.timer = setInterval(() => this.draw(), this.intervalMs);
    this.timer.unref();
  }

  update(counts: ProgressCounts): void {
    this.counts = { ...counts };
    // The first state is shown at once; later ones at the next tick.
    if (this.active && this.drawn === null) this.draw();
  }

  /** Clears the row and gives it back to the terminal. Safe to call more than once. */
  stop(): void {
    if (!this.active) return;
    this.active = false;
    if (this.timer) clearInterval(this.timer);
    this.term.removeListener?.('resize', this.onResize);
    process.removeListener('exit', this.onExit);
    this.term.write(`${SAVE}${ESC}[r${RESTORE}${SAVE}${ESC}[${this.rows};1H${ESC}[2K${RESTORE}`);
    this.drawn = null;
  }

  private regionSequence(): string {
    return `${SAVE}${ESC}[1;${this.rows - 1}r${RESTORE}`;
  }

  private draw(): void {
    if (!this.active) return;
    const width = Math.max(1, this.term.columns - 1);
    const text = progressText(this.counts).slice(0, width);
    if (text === this.drawn) return;
    this.drawn = text;
    this.term.write(`${SAVE}${ESC}[${this.rows};1H${ESC}[2K${text}${RESTORE}`);
  }

  private resize(): void {
    if (!this.active) return;
    // Clear the old status row, then reserve the new last row and draw there.
    this.term.write(`${SAVE}${ESC}[${this.rows};1H${ESC}[2K${RESTORE}`);
    this.rows = this.term.rows;
    this.term.write(this.regionSequence());
    this.drawn = null;
    this.draw();
  }
}
