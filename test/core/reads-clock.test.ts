// readsClock: the programs whose output is the time they read, named because the clock is
// read through the vDSO, where no stop sees it.
import { readsClock } from '../../src/core/cached-run';

test.each([
  [['date'], 'date reads the clock'],
  [['date', '+%s'], 'date reads the clock'],
  [['date', '-u', '-Iseconds'], 'date reads the clock'],
  [['date', '-d', 'tomorrow'], 'date reads the clock'],
  [['date', '--date=12:00'], 'date reads the clock'],
  [['date', '-f', 'dates.txt'], 'date reads the clock'],
  [['date', '-s', '2020-01-01'], 'date sets the clock'],
  [['date', '--set=2020-01-01'], 'date sets the clock'],
  [['date', '-r', 'data.txt'], null],
  [['date', '-ur', 'data.txt', '+%s'], null],
  [['date', '--reference=data.txt'], null],
  [['date', '-d', '@1700000000'], null],
  [['date', '-ud@1700000000', '+%F'], null],
  [['date', '--date', ' @0 '], null],
  [['date', '--', '-r'], 'date reads the clock'],
])('%j: %s', (argv, reason) => {
  expect(readsClock('/usr/bin/date', argv)).toBe(reason);
});

test('time reports durations; other programs are not named', () => {
  expect(readsClock('/usr/bin/time', ['time', '-v', 'sort', 'x'])).toBe('time reports how long its command took');
  expect(readsClock('/usr/bin/sort', ['sort', '-r', 'x'])).toBeNull();
  expect(readsClock('/opt/bin/dated', ['dated'])).toBeNull();
});
