import { Readable } from 'node:stream';
import { parseObjectLine, splitLines, type NdjsonLine } from '../../src/fhir/ndjson';

async function collect(chunks: Array<Buffer | string>, max = 1024): Promise<NdjsonLine[]> {
  const out: NdjsonLine[] = [];
  for await (const line of splitLines(Readable.from(chunks), max)) out.push(line);
  return out;
}

describe('NDJSON line splitting', () => {
  test('lines across chunk boundaries come out whole, with the byte offset after each newline', async () => {
    const lines = await collect(['{"a":', '1}\n{"b"', ':2}\n', '\n{"c":3}\n']);
    expect(lines).toEqual([
      { text: '{"a":1}', end: 8, tooLong: false },
      { text: '{"b":2}', end: 16, tooLong: false },
      { text: '', end: 17, tooLong: false },
      { text: '{"c":3}', end: 25, tooLong: false },
    ]);
  });

  test('CRLF line ends are stripped and a last line without a newline is kept', async () => {
    expect(await collect(['x\r\ny'])).toEqual([
      { text: 'x', end: 3, tooLong: false },
      { text: 'y', end: 4, tooLong: false },
    ]);
  });

  test('a multi-byte character split between chunks is decoded whole (bytes joined before decoding)', async () => {
    const bytes = Buffer.from('{"name":"Zoë"}\n');
    const cut = bytes.indexOf(Buffer.from('ë')) + 1; // inside the two-byte ë
    const lines = await collect([bytes.subarray(0, cut), bytes.subarray(cut)]);
    expect(lines).toEqual([{ text: '{"name":"Zoë"}', end: bytes.length, tooLong: false }]);
  });

  test('a line over the bound is reported too long (never buffered) and the next line is read normally', async () => {
    const long = 'x'.repeat(40);
    const lines = await collect([long.slice(0, 25), `${long.slice(25)}\nok\n`], 32);
    expect(lines).toEqual([
      { text: '', end: 41, tooLong: true },
      { text: 'ok', end: 44, tooLong: false },
    ]);
    // The same at the end of the stream without a newline.
    expect(await collect([long], 32)).toEqual([{ text: '', end: 40, tooLong: true }]);
  });

  test('an empty stream has no lines', async () => {
    expect(await collect([])).toEqual([]);
  });

  test('parseObjectLine: JSON objects only', () => {
    expect(parseObjectLine('{"resourceType":"Patient","id":"p1"}')).toEqual({ resourceType: 'Patient', id: 'p1' });
    for (const bad of ['', 'not json', '[1,2]', '42', 'null', '"text"', '{"a":']) expect(parseObjectLine(bad)).toBeUndefined();
  });
});
