import { defaultPayloadConverter } from '@temporalio/common';
import { contentProbes, findLeaks, needlesForSecrets, textOf } from '../../bench/reliability/securityHelpers';

/** The security scenario's scans find what they look for (so "no leak" means something). */
describe('security scan helpers', () => {
  const token = 'tok_3f9c2a7d1e8b4c6a9d0e2f4b6c8a1d3e';

  it('decodes payload bytes in a history-like tree and finds a token, whole or truncated', () => {
    const history = { events: [{ eventId: 1, activityTaskCompletedEventAttributes: { result: { payloads: [defaultPayloadConverter.toPayload({ note: `Bearer ${token.slice(0, 30)}` })] } } }] };
    const text = textOf(history).join('\n');
    expect(text).toContain('Bearer');
    expect(findLeaks(text, needlesForSecrets([token]))).toHaveLength(1);
    expect(findLeaks('nothing here', needlesForSecrets([token]))).toEqual([]);
  });

  it('reports a leak without printing the secret', () => {
    expect(findLeaks(`x ${token} y`, needlesForSecrets([token])).join(' ')).not.toContain(token.slice(0, 12));
  });

  it('takes names, birth dates, identifiers and free text as probes, not codes, urls or ids', () => {
    const probes = contentProbes([
      {
        resourceType: 'Patient',
        id: 'pat-000001',
        name: [{ family: 'Smith', given: ['William'], text: 'William Smith' }],
        birthDate: '1944-05-23',
        identifier: [{ system: 'urn:oid:1.2', value: 'MRN00100007' }],
        telecom: [{ value: '(508) 555-6478' }, { value: 'william.smith1@example.com' }],
      },
      { resourceType: 'Task', id: 'task-1', note: [{ text: 'Left voicemail, will try again tomorrow' }], code: { coding: [{ code: 'change' }] }, for: { reference: 'Patient/pat-000001' } },
    ]);
    expect(probes).toEqual(expect.arrayContaining(['William Smith', '1944-05-23', 'MRN00100007', '(508) 555-6478', 'william.smith1@example.com', 'Left voicemail, will try again tomorrow']));
    expect(probes).not.toEqual(expect.arrayContaining(['pat-000001']));
    expect(probes).not.toEqual(expect.arrayContaining(['change']));
    expect(probes).not.toEqual(expect.arrayContaining(['urn:oid:1.2']));
  });
});
