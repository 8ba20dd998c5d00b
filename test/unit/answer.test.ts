import type { Response } from 'express';
import { answer, AnswerSchemaError } from '../../src/api/answer';
import { SyncScheduleTriggerSchema } from '../../src/api/answerSchemas';

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
    const data = { scheduleId: 'sync-schedule-1', triggered: true as const, statusUrl: '/x', internal: 'not documented' };
    answer(res, SyncScheduleTriggerSchema, data, 202);
    expect(sent).toEqual({ status: 202, body: { success: true, data: { scheduleId: 'sync-schedule-1', triggered: true, statusUrl: '/x' } } });
  });

  it('refuses to send an answer that breaks its schema, naming the field, not its value', () => {
    const { res, sent } = fakeResponse();
    const wrong = { scheduleId: 'sync-schedule-1', triggered: 'RUNNING', statusUrl: 'secret-value-123' } as unknown as Parameters<typeof answer<typeof SyncScheduleTriggerSchema>>[2];
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).toThrow(AnswerSchemaError);
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).toThrow(/triggered: /);
    expect(() => answer(res, SyncScheduleTriggerSchema, wrong)).not.toThrow(/RUNNING|secret-value/);
    expect(sent).toEqual({});
  });
});
