import { ENHANCED_RESOURCE_TYPES, STANDARD_RESOURCE_TYPES } from '../../src/providers/schema';
import { RESOURCE_TYPES_RULE, selectSyncTypes, selectsAnyType } from '../../src/providers/syncTypes';
import { openApiDocument } from '../../src/api/openapi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const lists = { standard: [...STANDARD_RESOURCE_TYPES], enhanced: [...ENHANCED_RESOURCE_TYPES] };
const pick = (includeStandard: boolean, includeEnhanced: boolean, resourceTypes?: string[]) => selectSyncTypes(lists, { includeStandard, includeEnhanced, resourceTypes });

describe('which types a sync fetches (RESOURCE_TYPES_RULE)', () => {
  it("the spec's example: both flags and the five enhanced types listed → every standard type and those five", () => {
    expect(pick(true, true, ['DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'])).toEqual({ standard: lists.standard, enhanced: ['DiagnosticReport', 'CarePlan', 'Encounter', 'Communication', 'Task'] });
  });

  it('a listed standard type narrows the standard category to the listed ones (Condition alone, not all seven)', () => {
    expect(pick(true, false, ['Condition'])).toEqual({ standard: ['Condition'], enhanced: [] });
    expect(pick(true, true, ['Condition'])).toEqual({ standard: ['Condition'], enhanced: lists.enhanced });
    expect(pick(true, true, ['Condition', 'Task'])).toEqual({ standard: ['Condition'], enhanced: ['Task'] });
  });

  it('a listed type is synced whatever its flag; types in neither list are enhanced', () => {
    expect(pick(false, false, ['Observation', 'Communication', 'CareTeam'])).toEqual({ standard: ['Observation'], enhanced: ['Communication', 'CareTeam'] });
    expect(pick(false, true, ['CareTeam'])).toEqual({ standard: [], enhanced: [...lists.enhanced, 'CareTeam'] });
  });

  it('without resourceTypes (or an empty list) the flags alone decide', () => {
    expect(pick(true, false)).toEqual({ standard: lists.standard, enhanced: [] });
    expect(pick(false, true, [])).toEqual({ standard: [], enhanced: lists.enhanced });
    expect(selectsAnyType({ includeStandard: false, includeEnhanced: false, resourceTypes: [] })).toBe(false);
    expect(selectsAnyType({ includeStandard: false, includeEnhanced: false, resourceTypes: ['Communication'] })).toBe(true);
  });

  it('the README and the OpenAPI document state the same rule', () => {
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8').replace(/\s+/g, ' ').replace(/[*`]/g, '');
    const sentence = RESOURCE_TYPES_RULE.replace(/'/g, "'");
    expect(readme.toLowerCase()).toContain(sentence.toLowerCase().replace(/\.$/, ''));
    const doc = openApiDocument() as { paths: Record<string, { post?: { description?: string } }> };
    expect(doc.paths['/api/ehr/{provider}/enhanced-sync']!.post!.description).toContain(RESOURCE_TYPES_RULE);
  });
});
