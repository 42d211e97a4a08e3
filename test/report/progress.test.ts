// The live status line with a fake terminal: the exact bytes written, when.

import { EventEmitter } from 'events';
import { ProgressLine, progressText, wantsProgress } from '../../src/report/progress';

class FakeTerminal extends EventEmitter {
  writes: string[] = [];
  constructor(
    public rows: number,
    public columns: number,
  ) {
    super();
  }
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
}

const draw = (row: number, text: string): string => `\x1b7\x1b[${row};1H\x1b[2K${text}\x1b8`;

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('reserves the last row, draws the first state at once, later ones on the timer, clears at the end', () => {
  const term = new FakeTerminal(24, 80);
  const exitListeners = process.listenerCount('exit');
  const line = new ProgressLine(term, 200);
  line.start();
  expect(term.writes).toEqual(['\n\x1b[1A\x1b7\x1b[1;23r\x1b8']);
  expect(process.listenerCount('exit')).toBe(exitListeners + 1);

  line.update({ running: 1, ran: 1, skipped: 0, savedMs: 0 });
  expect(term.writes.slice(1)).toEqual([draw(24, 'pcache: 1 running, 0 done, 0 skipped; saved 0 ms')]);

  line.update({ running: 2, ran: 3, skipped: 4, savedMs: 1500 });
  expect(term.writes.length).toBe(2);
  jest.advanceTimersByTime(200);
  expect(term.writes.slice(2)).toEqual([draw(24, 'pcache: 2 running, 1 done, 4 skipped; saved 1.50 s')]);
  // nothing new: nothing drawn
  jest.advanceTimersByTime(1000);
  expect(term.writes.length).toBe(3);

  line.stop();
  expect(term.writes.slice(3)).toEqual(['\x1b7\x1b[r\x1b8\x1b7\x1b[24;1H\x1b[2K\x1b8']);
  line.stop();
  jest.advanceTimersByTime(1000);
  line.update({ running: 0, ran: 9, skipped: 9, savedMs: 0 });
  expect(term.writes.length).toBe(4);
  expect(process.listenerCount('exit')).toBe(exitListeners);
});

test('a line longer than the terminal is cut so it never wraps', () => {
  const term = new FakeTerminal(10, 20);
  const line = new ProgressLine(term, 200);
  line.start();
  line.update({ running: 1, ran: 1, skipped: 0, savedMs: 0 });
  expect(term.writes[1]).toBe(draw(10, 'pcache: 1 running, '));
  line.stop();
});

test('a resized terminal: the old row is cleared, the new last row reserved and drawn', () => {
  const term = new FakeTerminal(24, 80);
  const line = new ProgressLine(term, 200);
  line.start();
  line.update({ running: 1, ran: 1, skipped: 0, savedMs: 0 });
  term.rows = 40;
  term.emit('resize');
  expect(term.writes.slice(2)).toEqual([
    '\x1b7\x1b[24;1H\x1b[2K\x1b8',
    '\x1b7\x1b[1;39r\x1b8',
    draw(40, 'pcache: 1 running, 0 done, 0 skipped; saved 0 ms'),
  ]);
  line.stop();
  expect(term.writes[term.writes.length - 1]).toBe('\x1b7\x1b[r\x1b8\x1b7\x1b[40;1H\x1b[2K\x1b8');
  expect(term.listenerCount('resize')).toBe(0);
});

test('only on a terminal of 3 rows or more, not with --quiet or TERM=dumb', () => {
  expect(wantsProgress({ isTTY: true, rows: 24 }, {}, false)).toBe(true);
  expect(wantsProgress({ isTTY: true, rows: 24 }, {}, true)).toBe(false);
  expect(wantsProgress({ isTTY: false, rows: 24 }, {}, false)).toBe(false);
  expect(wantsProgress({ rows: 24 }, {}, false)).toBe(false);
  expect(wantsProgress({ isTTY: true, rows: 2 }, {}, false)).toBe(false);
  expect(wantsProgress({ isTTY: true, rows: 24 }, { TERM: 'dumb' }, false)).toBe(false);
});

test('the text', () => {
  expect(progressText({ running: 3, ran: 10, skipped: 2, savedMs: 65_000 })).toBe('pcache: 3 running, 7 done, 2 skipped; saved 65.0 s');
});
