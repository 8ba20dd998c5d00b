import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openApiDocument } from '../../src/api/openapi';

/** The README's API table must be the OpenAPI document in short: same operations, ids and route statuses. */
const COMMON = new Set(['400', '401', '408', '413', '415', '431', '500']);

describe("README's API section", () => {
  it('lists exactly the operations of the OpenAPI document, with their operationIds and statuses', () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## API\n'), readme.indexOf('\n### Deleting a connection'));
    const fromReadme = [...section.matchAll(/^\| `(\w+)` \| `([A-Z]+) ([^`]+)` \| ([\d, ]+) \|/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]} ${m[4]!.trim()}`);
    const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>> };
    const fromDoc = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.entries(item).map(([m, op]) => `${op.operationId} ${m.toUpperCase()} ${p} ${Object.keys(op.responses).filter((s) => !COMMON.has(s)).join(', ')}`),
    );
    expect(fromReadme.sort()).toEqual(fromDoc.sort());
  });
});
