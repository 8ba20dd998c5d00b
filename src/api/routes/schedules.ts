import { Router } from 'express';
import { z } from 'zod';
import type { Services } from '../../services';
import { RequestedTypesSchema, selectsBeyondEnhanced } from '../../providers/schema';
import { BadRequestError } from '../../errors';
import { MAX_INTERVAL_SECONDS, intervalSeconds, type SyncScheduleService } from '../../temporal/syncSchedules';
import { answer } from '../answer';
import * as A from '../answerSchemas';
import { ConnectionIdSchema, ProviderIdSchema, parse } from '../validate';
import { connectionOfProvider } from './connections';

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
  .refine((b) => b.includeStandard || b.includeEnhanced || selectsBeyondEnhanced(b.resourceTypes), {
    message: 'Nothing to sync: set includeStandard or includeEnhanced, or list resourceTypes other than the enhanced ones',
  });

export const SyncScheduleNoteBodySchema = z.strictObject({ note: NoteSchema.optional() });

const ConnectionParams = z.object({ provider: ProviderIdSchema, connectionId: ConnectionIdSchema });
const ScheduleParams = ConnectionParams.extend({
  scheduleId: z.string().regex(/^sync-schedule-[A-Za-z0-9_-]{1,120}$/, 'must be a sync schedule id (sync-schedule-…)'),
});

const base = '/api/ehr/:provider/connections/:connectionId/sync-schedules';

/**
 * Scheduled incremental enhanced syncs of a connection (Temporal Schedules): create, list, read, pause, unpause,
 * run now, delete. Every route first checks that the connection exists for the provider (404 otherwise).
 */
export function syncScheduleRoutes(services: Services, schedules: SyncScheduleService): Router {
  const routes = Router();
  const minSeconds = services.config.SYNC_SCHEDULE_MIN_INTERVAL_SECONDS;

  routes.post(base, async (req, res) => {
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

  routes.get(base, async (req, res) => {
    const { provider, connectionId } = parse(ConnectionParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleListSchema, await schedules.list(provider, connectionId));
  });

  routes.get(`${base}/:scheduleId`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.get(provider, connectionId, scheduleId));
  });

  routes.post(`${base}/:scheduleId/pause`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    const { note } = parse(SyncScheduleNoteBodySchema, req.body, 'body');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.pause(provider, connectionId, scheduleId, note));
  });

  routes.post(`${base}/:scheduleId/unpause`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    const { note } = parse(SyncScheduleNoteBodySchema, req.body, 'body');
    await connectionOfProvider(services, provider, connectionId);
    answer(res, A.SyncScheduleViewSchema, await schedules.unpause(provider, connectionId, scheduleId, note));
  });

  routes.post(`${base}/:scheduleId/trigger`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    const { jobId } = await schedules.trigger(provider, connectionId, scheduleId);
    const statusUrl = jobId ? `/api/ehr/${provider}/enhanced-sync/${jobId}` : undefined;
    if (statusUrl) res.set('Location', statusUrl);
    answer(res, A.SyncScheduleTriggerSchema, { scheduleId, triggered: true, ...(jobId ? { jobId, statusUrl } : {}) }, 202);
  });

  routes.delete(`${base}/:scheduleId`, async (req, res) => {
    const { provider, connectionId, scheduleId } = parse(ScheduleParams, req.params, 'path');
    await connectionOfProvider(services, provider, connectionId);
    await schedules.delete(provider, connectionId, scheduleId);
    answer(res, A.SyncScheduleDeletedSchema, { scheduleId, deleted: true });
  });

  return routes;
}
