import type { Response } from 'express';
import type { z } from 'zod';
import { answer, AnswerSchemaError } from '../../src/api/answer';
import { LiftBlocksAnswerSchema, RateLimitAnswerSchema, SyncScheduleTriggerSchema } from '../../src/api/answerSchemas';

function fakeResponse() {
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    status(code: number) {
      sent.status = code;
      return res;
    },
    json(body: unknown) {
      sent.body = body;
      return res;
    },
  } as unknown as Response;
  return { res, sent };
}

describe('answer(): the data sent is the documented schema', () => {
  it('sends the envelope with the status, and leaves out a field the schema does not document', () => {
    const { res, sent } = fakeResponse();
    // Typed as the schema's input: the compiler would refuse the extra field (below), the run-time parse drops it.
    const data: z.input<typeof SyncScheduleTriggerSchema> = Object.assign({ scheduleId: 'sync-schedule-1', triggered: true as const, statusUrl: '/x' }, { internal: 'not documented' });
    answer(res, SyncScheduleTriggerSchema, data, 202);
    expect(sent).toEqual({ status: 202, body: { success: true, data: { scheduleId: 'sync-schedule-1', triggered: true, statusUrl: '/x' } } });
  });

  it('refuses to send an answer that breaks its schema, naming the field, not its value', () => {
    const { res, sent } = fakeResponse();
    const wrong = { scheduleId: 'sync-schedule-1', triggered: 'RUNNING', statusUrl: 'secret-value-123' } as unknown as z.input<typeof SyncScheduleTriggerSchema>;
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).toThrow(AnswerSchemaError);
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).toThrow(/triggered: /);
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).not.toThrow(/RUNNING|secret-value/);
    expect(sent).toEqual({});
  });

  it('does not compile with a field the schema lacks, at any depth (it would vanish from the answer)', () => {
    const { res } = fakeResponse();
    const handlerData = { scheduleId: 'sync-schedule-1', triggered: true as const, internal: 'x' };
    // @ts-expect-error `internal` is not in SyncScheduleTriggerSchema
    expect(() => answer(res, SyncScheduleTriggerSchema, handlerData)).not.toThrow();
    const nested = { provider: 'p', lifted: ['k'], count: 1 };
    expect(() => answer(res, LiftBlocksAnswerSchema, nested)).not.toThrow();
    const rate = { provider: 'p', quotas: [], blocks: [{ key: 'k', quota: 'q', scope: 's', blockedUntil: '2026-01-01T00:00:00.000Z', secret: 'x' }] };
    // @ts-expect-error `blocks[].secret` is not in RateLimitAnswerSchema
    expect(() => answer(res, RateLimitAnswerSchema, rate)).not.toThrow();
  });
});
