import type { Response } from 'express';
import { answer, AnswerSchemaError } from '../../src/api/answer';
import { EnhancedSyncCancelSchema } from '../../src/api/answerSchemas';

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
    const data = { id: 'enhanced-sync-1', status: 'CANCELLING' as const, statusUrl: '/x', internal: 'not documented' };
    answer(res, EnhancedSyncCancelSchema, data, 202);
    expect(sent).toEqual({ status: 202, body: { success: true, data: { id: 'enhanced-sync-1', status: 'CANCELLING', statusUrl: '/x' } } });
  });

  it('refuses to send an answer that breaks its schema, naming the field, not its value', () => {
    const { res, sent } = fakeResponse();
    const wrong = { id: 'enhanced-sync-1', status: 'RUNNING', statusUrl: 'secret-value-123' } as unknown as Parameters<typeof answer<typeof EnhancedSyncCancelSchema>>[2];
    expect(() => answer(res, EnhancedSyncCancelSchema, wrong)).toThrow(AnswerSchemaError);
    expect(() => answer(res, EnhancedSyncCancelSchema, wrong)).toThrow(/status: /);
    expect(() => answer(res, EnhancedSyncCancelSchema, wrong)).not.toThrow(/RUNNING|secret-value/);
    expect(sent).toEqual({});
  });
});
