import * as os from 'os';
import { DEFAULT_MAX_SIZE, formatSize, parseSize, resolveCacheDir, resolveMaxSize } from '../../cache-store/config';
import { networkFsName, networkFsOf } from '../../cache-store/fs-type';

describe('cache directory resolution', () => {
  const env = { HOME: '/home/u', XDG_CACHE_HOME: '/xdg', PCACHE_DIR: '/from-env' };
  test('--cache-dir beats PCACHE_DIR beats XDG_CACHE_HOME beats ~/.cache', () => {
    expect(resolveCacheDir({ flag: '/flag', env })).toBe('/flag');
    expect(resolveCacheDir({ env })).toBe('/from-env');
    expect(resolveCacheDir({ env: { ...env, PCACHE_DIR: '' } })).toBe('/xdg/pcache');
    expect(resolveCacheDir({ env: { HOME: '/home/u' } })).toBe('/home/u/.cache/pcache');
  });

  test('a relative XDG_CACHE_HOME is ignored (XDG spec); relative flags resolve against cwd', () => {
    expect(resolveCacheDir({ env: { HOME: '/home/u', XDG_CACHE_HOME: 'rel' } })).toBe('/home/u/.cache/pcache');
    expect(resolveCacheDir({ flag: 'here', env })).toBe(`${process.cwd()}/here`);
  });

  test('an empty --cache-dir is an error, an empty PCACHE_DIR counts as unset', () => {
    expect(() => resolveCacheDir({ flag: '', env })).toThrow('--cache-dir: empty path');
    expect(resolveCacheDir({ env: { HOME: '/home/u', PCACHE_DIR: '' } })).toBe('/home/u/.cache/pcache');
  });
});

describe('sizes', () => {
  test.each([
    ['4096', 4096],
    ['10k', 10240],
    ['500M', 500 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2GiB', 2 * 1024 ** 3],
    ['2gb', 2e9],
    ['1T', 1024 ** 4],
    [' 7 MiB ', 7 * 1024 ** 2],
  ])('parseSize(%p) = %p', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['', 'G', '-1G', '1X', '1.2.3M', 'ten'])('parseSize(%p) is INVALID_ARGUMENT', (text) => {
    expect(() => parseSize(text)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  test('--max-size beats PCACHE_MAX_SIZE beats the default', () => {
    expect(resolveMaxSize('1M', { PCACHE_MAX_SIZE: '2M' })).toBe(1024 ** 2);
    expect(resolveMaxSize(undefined, { PCACHE_MAX_SIZE: '2M' })).toBe(2 * 1024 ** 2);
    expect(resolveMaxSize(undefined, {})).toBe(DEFAULT_MAX_SIZE);
  });

  test('formatSize', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(1536)).toBe('1.50 KiB');
    expect(formatSize(50 * 1024 ** 3)).toBe('50.0 GiB');
  });
});

describe('network file systems', () => {
  test('NFS, CIFS and Lustre are recognised by their statfs magic; local file systems are not', () => {
    expect(networkFsName(0x6969)).toBe('NFS');
    expect(networkFsName(0xff534d42)).toBe('CIFS');
    expect(networkFsName(0x0bd00bd0)).toBe('Lustre');
    expect(networkFsName(0xef53)).toBeUndefined(); // ext4
    expect(networkFsName(0x01021994)).toBeUndefined(); // tmpfs
    expect(networkFsOf(os.tmpdir())).toBeUndefined();
  });
});
