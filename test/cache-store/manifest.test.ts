// The input manifest's bytes are stored in users' caches (entries.inputs_manifest): the
// encoding must not drift. The expected bytes below were written by the first version of
// encodeManifest (one buffer per field, then a concat) and checked against the current one.

import { decodeManifest, encodeManifest } from '../../cache-store/manifest';
import type { InputRecord } from '../../cache-store/entry';

const INPUTS: InputRecord[] = [
  // a stamp settled before it was verified (FAST), a digest stored as 32 bytes
  { path: '/a', kind: 'content', hash: 'ab'.repeat(32), dev: 1n, ino: 2n, size: 3n, mtimeNs: 4n, ctimeNs: 5n, verifiedAtNs: 6000000000n, type: 'file', mode: 0o644 },
  // a non-ASCII path, a device number above 2^53 (not FAST), a negative time
  { path: '/\u03c0', kind: 'metadata', type: 'dir', mode: 0o755, dev: 2n ** 60n, ino: 7n, size: 0n, mtimeNs: -5n, ctimeNs: 8n },
  // text that is not a digest (a symlink target), stored as its UTF-8 bytes
  { path: '/l', kind: 'metadata', hash: 'x/../y', type: 'symlink' },
  { path: '/gone', kind: 'absent' },
  // a size without a stamp
  { path: '/d', kind: 'dirlist', hash: 'cd'.repeat(32), size: 12n },
];

const EXPECTED =
  '5043494d010000000500000000130000a4010000020000002f610100000000000000020000000000000003000000000000000400000000000000050000000000000000bca06501000000000000000000f03f000000000000004000000000000008408dedb5a0f7c6d03ef168e388b5f8d43eabababababababababababababababababababababababababababababababab01010100ed010000030000002fcf80000000000000001007000000000000000000000000000000fbffffffffffffff08000000000000000000000000000000000000000000b0430000000000001c40000000000000000000000088b5f8d4be8dedb5a0f7c6e03e01040200ffffffff020000002f6c06000000782f2e2e2f790200ff00ffffffff050000002f676f6e650318ff00ffffffff020000002f640c00000000000000cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd';

test('encodeManifest writes the format-1 bytes', () => {
  expect(encodeManifest(INPUTS).toString('hex')).toBe(EXPECTED);
  expect(encodeManifest([]).toString('hex')).toBe('5043494d0100000000000000');
});

test('decodeManifest gives back every field, and encodes to the same bytes again', () => {
  const decoded = decodeManifest(Buffer.from(EXPECTED, 'hex'));
  expect(decoded).toHaveLength(INPUTS.length);
  INPUTS.forEach((input, k) => expect(decoded[k]).toMatchObject(input));
  expect(encodeManifest(decoded).toString('hex')).toBe(EXPECTED);
});
