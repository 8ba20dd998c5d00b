import type { ErrorRequestHandler, RequestHandler } from 'express';
import { WorkflowNotFoundError } from '@temporalio/client';
import { AppError } from '../errors';
import { JobFailedError } from './workflowGateway';
import type { Logger } from '../logger';
import { fail } from './envelope';

/** Unknown routes: 404 in the envelope, not Express's HTML page. */
export const notFound: RequestHandler = (req, res) => {
  fail(res, 404, 'NOT_FOUND', `No route for ${req.method} ${req.path}. See GET /api/openapi.json.`);
};

/**
 * The one error handler. Typed errors answer with their status and message; body-parser's errors become 400/413/415;
 * anything unexpected is logged (without request data) and answered 500 with no internals.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof AppError) {
      if (err.status >= 500) logger.warn({ requestId: res.getHeader('x-request-id'), code: err.code, path: req.path, err: err.message }, 'request failed');
      // Details are the caller's own input problems (400), or the id and URL of a job that failed while it waited.
      if (err instanceof JobFailedError) res.set('Location', err.details.statusUrl);
      fail(res, err.status, err.code, err.message, err.status === 400 || err instanceof JobFailedError ? err.details : undefined);
      return;
    }
    if (err instanceof WorkflowNotFoundError) {
      fail(res, 404, 'JOB_NOT_FOUND', 'No job with this id.');
      return;
    }
    const type = (err as { type?: string }).type;
    const status = (err as { status?: number }).status;
    if (type === 'entity.parse.failed') return fail(res, 400, 'BAD_REQUEST', 'The request body is not valid JSON.');
    if (type === 'entity.too.large') return fail(res, 413, 'PAYLOAD_TOO_LARGE', 'The request body is too large.');
    if (type === 'charset.unsupported' || type === 'encoding.unsupported') return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported body encoding.');
    if (typeof status === 'number' && status >= 400 && status < 500) return fail(res, status, 'BAD_REQUEST', 'The request could not be read.');
    logger.error({ requestId: res.getHeader('x-request-id'), path: req.path, method: req.method, err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err) }, 'unhandled error');
    fail(res, 500, 'INTERNAL', 'Internal error. The incident was logged.');
  };
}
