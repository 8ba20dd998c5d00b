import { BadRequestError } from '../../src/errors';
import { intervalSeconds, scheduledJobIdPrefix, syncScheduleId } from '../../src/temporal/syncSchedules';

describe('sync schedule naming and intervals', () => {
  it('reads intervals as a number and a unit', () => {
    expect(intervalSeconds('90s')).toBe(90);
    expect(intervalSeconds('30m')).toBe(1800);
    expect(intervalSeconds('1h')).toBe(3600);
    expect(intervalSeconds('2d')).toBe(172_800);
  });

  it('refuses anything else with a 400 that names the field', () => {
    for (const bad of ['', '0h', '1', 'h', '1.5h', '1h30m', ' 1h', '1H', '-1h', '12345678s']) {
      expect(() => intervalSeconds(bad)).toThrow(BadRequestError);
      expect(() => intervalSeconds(bad)).toThrow(/^every: /);
    }
  });

  it('names schedules and their runs after the connection and the schedule name', () => {
    expect(syncScheduleId('conn_abcdefgh', 'nightly')).toBe('sync-schedule-conn_abcdefgh-nightly');
    expect(scheduledJobIdPrefix('conn_abcdefgh', 'nightly')).toBe('enhanced-sync-conn_abcdefgh-scheduled-nightly');
  });
});
