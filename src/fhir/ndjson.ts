/**
 * NDJSON line splitting (Bulk Data files): a byte stream in, one line at a time out, with the byte offset after
 * each line so that a reader can resume a file where it stopped. Holds at most one line (plus one chunk) in memory;
 * a line longer than the bound is reported as too long instead of being buffered.
 */
export interface NdjsonLine {
  /** The line's text (UTF-8, without its `\n` or `\r\n`); '' when tooLong. */
  text: string;
  /** Byte offset just after the line's newline (or the end of the stream for a last line without one). */
  end: number;
  tooLong: boolean;
}

/** Longest line kept by default: no FHIR resource in a bulk file should come near it. */
export const MAX_NDJSON_LINE_BYTES = 32 * 1024 * 1024;

/**
 * Splits a byte stream into lines. Bytes are joined before decoding, so a multi-byte character split across chunks
 * comes out whole. Lines longer than `maxLineBytes` are yielded empty with `tooLong`.
 */
export async function* splitLines(stream: AsyncIterable<Buffer | string>, maxLineBytes = MAX_NDJSON_LINE_BYTES): AsyncGenerator<NdjsonLine> {
  let parts: Buffer[] = [];
  let partsLen = 0;
  let overflow = false;
  let offset = 0;
  for await (const raw of stream) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      const len = partsLen + piece.length;
      offset += len + 1;
      if (overflow || len > maxLineBytes) {
        yield { text: '', end: offset, tooLong: true };
      } else {
        const line = partsLen > 0 ? Buffer.concat([...parts, piece]) : piece;
        yield { text: line.toString('utf8').replace(/\r$/, ''), end: offset, tooLong: false };
      }
      parts = [];
      partsLen = 0;
      overflow = false;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      partsLen += rest.length;
      if (partsLen > maxLineBytes) {
        overflow = true;
        parts = [];
      } else {
        parts.push(Buffer.from(rest)); // copy: the chunk may be reused by the stream
      }
    }
  }
  if (partsLen > 0 || overflow) {
    offset += partsLen;
    if (overflow) yield { text: '', end: offset, tooLong: true };
    else yield { text: Buffer.concat(parts).toString('utf8').replace(/\r$/, ''), end: offset, tooLong: false };
  }
}

/** One NDJSON line as a JSON object, or undefined when it is not one (malformed, an array, a bare value). */
export function parseObjectLine(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = text ? JSON.parse(text) : undefined;
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
