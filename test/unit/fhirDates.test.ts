import { MAX_INSTANT, MIN_INSTANT, dateRange, periodRange } from '../../src/store/fhirSearch/dateValue';
import { normalisedDates } from '../../src/store/fhirSearch/dateParams';
import { parseDateSearchValue } from '../../src/store/fhirSearch/dateSearch';
import { BadRequestError } from '../../src/errors';

const iso = (r: { start: number; end: number } | undefined) => r && [new Date(r.start).toISOString(), new Date(r.end).toISOString()];

describe('FHIR date values as ranges', () => {
  it.each([
    ['2024', '2024-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-02', '2024-02-01T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['2024-12', '2024-12-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z', '2024-03-01T00:00:00.000Z'],
    ['2024-10-23T10:00+02:00', '2024-10-23T08:00:00.000Z', '2024-10-23T08:01:00.000Z'],
    ['2024-10-23T10:00:00-05:30', '2024-10-23T15:30:00.000Z', '2024-10-23T15:30:01.000Z'],
    ['2024-10-23T10:00:00', '2024-10-23T10:00:00.000Z', '2024-10-23T10:00:01.000Z'], // no zone: UTC
    ['2024-10-23T10:00:00.5Z', '2024-10-23T10:00:00.500Z', '2024-10-23T10:00:00.600Z'],
    ['2024-10-23T10:00:00.123456Z', '2024-10-23T10:00:00.123Z', '2024-10-23T10:00:00.124Z'],
    ['0050-06-01', '0050-06-01T00:00:00.000Z', '0050-06-02T00:00:00.000Z'], // not 1950
  ])('%s → [%s, %s)', (text, start, end) => {
    expect(iso(dateRange(text))).toEqual([start, end]);
  });

  it.each(['2023-02-29', '2024-02-30', '2024-13-01', '2024-00-10', '0000', '2024-10-23T24:00Z', '2024-10-23T10:60Z', '2024-10-23T10:00:60Z', '2024-10-23T10:00+15:00', '2024-10-23T10', '24', 'yesterday', '2024-1-01'])(
    'refuses %s',
    (text) => {
      expect(dateRange(text)).toBeUndefined();
    },
  );

  it('reads a Period from its start\'s start to its end\'s end, open where a bound is missing', () => {
    expect(iso(periodRange({ start: '2024-10-23', end: '2024-10-24' }))).toEqual(['2024-10-23T00:00:00.000Z', '2024-10-25T00:00:00.000Z']);
    expect(periodRange({ start: '2024-10-23' })).toEqual({ start: Date.parse('2024-10-23T00:00:00Z'), end: MAX_INSTANT });
    expect(periodRange({ end: '2024' })).toEqual({ start: MIN_INSTANT, end: Date.parse('2025-01-01T00:00:00Z') });
    expect(periodRange({ start: '2025', end: '2024' })).toBeUndefined();
    expect(periodRange({})).toBeUndefined();
  });

  it("normalises a resource's date parameters at write time, the first choice element present deciding", () => {
    const obs = normalisedDates({ resourceType: 'Observation', meta: { lastUpdated: '2024-10-23T10:00:00+02:00' }, effectivePeriod: { start: '2024-01-01' } } as never);
    expect(Object.keys(obs).sort()).toEqual(['_lastUpdated', 'date']);
    expect(obs._lastUpdated!.s.toISOString()).toBe('2024-10-23T08:00:00.000Z');
    expect(obs.date!.e.getTime()).toBe(MAX_INSTANT);
    expect(normalisedDates({ resourceType: 'Communication', sent: 'not a date', meta: {} } as never)).toEqual({});
    expect(Object.keys(normalisedDates({ resourceType: 'Basic', meta: { lastUpdated: '2024' } } as never))).toEqual(['_lastUpdated']);
  });

  it('reads search values with every prefix, an unencoded + as a space, and names a bad one', () => {
    expect(parseDateSearchValue('sent', '2024')).toMatchObject({ prefix: 'eq' });
    for (const p of ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']) expect(parseDateSearchValue('sent', `${p}2024-10`).prefix).toBe(p);
    expect(parseDateSearchValue('sent', '2024-10-23T10:00:00 02:00').range.start).toBe(Date.parse('2024-10-23T08:00:00Z'));
    expect(() => parseDateSearchValue('sent', 'xx2024')).toThrow(BadRequestError);
    expect(() => parseDateSearchValue('sent', 'ge2024-02-30')).toThrow('sent: "ge2024-02-30" is not a valid date');
  });
});
