import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { RequestedTypesSchema } from '../../providers/schema';
import { selectsAnyType } from '../../providers/syncTypes';
import { BadRequestError } from '../../errors';
import { MAX_INTERVAL_SECONDS, intervalSeconds, type SyncScheduleService } from '../../temporal/syncSchedules';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import { connectionOfProvider } from './connections';
import { jobPath } from '../../jobs/contract';

/** Free text shown in the Temporal UI: no control characters. */
const NoteSchema = z.string().min(1).max(500).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

export const SyncScheduleBodySchema = z
  .strictObject({
    /** Part of the schedule id (`sync-schedule-<connectionId>-<name>`), so a connection can have a few. */
    name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, 'must be 1-32 lowercase letters, digits or dashes (not at either end)').default('default'),
    /** How often: a number and a unit (s, m, h, d), e.g. 30m, 1h, 1d; bounded by SYNC_SCHEDULE_MIN_INTERVAL_SECONDS and 30d. */
    every: z.string().regex(/^[1-9]\d{0,6}[smhd]$/, 'must be an interval such as 30m, 1h or 1d'),
    includeStandard: z.boolean().default(true),
    includeEnhanced: z.boolean().default(true),
    resourceTypes: RequestedTypesSchema.optional(),
    pageSize: z.number().int().min(1).max(1000).optional(),
    /** Create it paused (it runs only when triggered until unpaused). */
    paused: z.boolean().default(false),
    note: NoteSchema.optional(),
  })
  .refine((b) => selectsAnyType(b), {
    message: 'Nothing to sync: set includeStandard or includeEnhanced, or list resourceTypes',
  });

export const SyncScheduleNoteBodySchema = z.strictObject({ note: NoteSchema.optional() });

const ConnectionParams = z.object({ provider: ProviderIdSchema, connectionId: ConnectionIdSchema });
const ScheduleParams = ConnectionParams.extend({
  scheduleId: z.string().regex(/^sync-schedule-[A-Za-z0-9_-]{1,120}$/, 'must be a sync schedule id (sync-schedule-…)'),
});

/**
 * Scheduled incremental enhanced syncs of a connection (Temporal Schedules): create, list, read, pause, unpause,
 * run now, delete. Mounted under /api/ehr/:provider/connections/:connectionId/sync-schedules. Every route first
 * checks that the connection exists for the provider (404 otherwise).
 */
export function syncScheduleRoutes(services: Services, schedules: SyncScheduleService): Router {
  const routes = Router({ mergeParams: true });
  const minSeconds = services.config.SYNC_SCHEDULE_MIN_INTERVAL_SECONDS;

  routes.post('/', async (req, res) => {
    const { provider, connectionId } = parse(ConnectionParams, req.params, 'path');
    const body = parse(SyncScheduleBodySchema, req.body, 'body');
    const seconds = intervalSeconds(body.every);
    if (seconds < minSeconds) throw new BadRequestError(`every: must be at least ${minSeconds} s (SYNC_SCHEDULE_MIN_INTERVAL_SECONDS); use POST …/trigger to run a sync now.`);
    if (seconds > MAX_INTERVAL_SECONDS) throw new BadRequestError('every: must be at most 30d.');
    await connectionOfProvider(services, provider, connectionId);
    const { name, every, paused, note, ...request } = body;
    const view = await schedules.create(
      { provider, connectionId, name, every, paused, note, request },
      async () => (await services.connections.find(connectionId)) !== null,
    );
    res.set('Location', `/api/ehr/${provider}/connections/${connectionId}/sync-schedules/${view.scheduleId}`);
    answer(res, A.SyncScheduleViewSchema, view, 201);
  });

  routes.get('/', async (req, res) => {
    const { provider, connectionId } = parse(ConnectionParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleListSchema, await schedules.list(provider, connectionId));
  });

  routes.get(`/:scheduleId`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.get(provider, connectionId, scheduleId));
  });

  routes.post(`/:scheduleId/pause`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    const { note } = parse(SyncScheduleNoteBodySchema, req.body, 'body');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.pause(provider, connectionId, scheduleId, note));
  });

  routes.post(`/:scheduleId/unpause`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    const { note } = parse(SyncScheduleNoteBodySchema, req.body, 'body');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.unpause(provider, connectionId, scheduleId, note));
  });

  routes.post(`/:scheduleId/trigger`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    const { jobId } = await schedules.trigger(provider, connectionId, scheduleId);
    const statusUrl = jobId ? jobPath('enhanced-sync', provider, jobId) : undefined;
    if (statusUrl) res.set('Location', statusUrl);
    answer(res, A.SyncScheduleTriggerSchema, { scheduleId, triggered: true, ...(jobId ? { jobId, statusUrl } : {}) }, 202);
  });

  routes.delete(`/:scheduleId`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    await schedules.delete(provider, connectionId, scheduleId);
    answer(res, A.SyncScheduleDeletedSchema, { scheduleId, deleted: true });
  });

  return routes;
}
