import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from 'express';

/**
 * How long a client may take to send a request. Without these a slow or stalled client holds a connection (and
 * its socket, and whatever the handler holds) for Node's defaults: 300 s for a request, more for a trickling body.
 */
export interface ServerTimeouts {
  /** The request line and headers must have arrived within this (API_HEADERS_TIMEOUT_MS). */
  headersMs: number;
  /** The whole request, body included, must have arrived within this (API_REQUEST_TIMEOUT_MS). */
  requestMs: number;
  /** A body may pause at most this long between two chunks (API_BODY_IDLE_TIMEOUT_MS). */
  bodyIdleMs: number;
}

export function apiServerTimeouts(config: { API_HEADERS_TIMEOUT_MS: number; API_REQUEST_TIMEOUT_MS: number; API_BODY_IDLE_TIMEOUT_MS: number }): ServerTimeouts {
  return { headersMs: config.API_HEADERS_TIMEOUT_MS, requestMs: config.API_REQUEST_TIMEOUT_MS, bodyIdleMs: config.API_BODY_IDLE_TIMEOUT_MS };
}

/** Sockets whose request headers have arrived: a timeout there is the request's (body), not the headers'. */
const headersReceived = new WeakSet<Socket>();
const timeoutsOf = new WeakMap<Server, ServerTimeouts>();

/**
 * The API's HTTP server with the timeouts applied. Node checks them every `connectionsCheckingInterval` ms (30 s by
 * default, which would let a stalled client overstay by that much), so the check runs at a tenth of the shortest.
 * When one passes, Node reports ERR_HTTP_REQUEST_TIMEOUT to the server's clientError handler, which answers 408
 * (answerClientErrors in app.ts, with timeoutMessage below). The timeouts bound receiving a request only: a
 * handler that waits for a workflow (API_WORKFLOW_WAIT_MS) is not cut short by them.
 */
export function createApiServer(app: (req: IncomingMessage, res: ServerResponse) => void, timeouts: ServerTimeouts): Server {
  const server = createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(Math.min(timeouts.headersMs, timeouts.requestMs) / 10))),
    },
    app,
  );
  timeoutsOf.set(server, timeouts);
  server.on('request', (req: IncomingMessage) => {
    headersReceived.add(req.socket);
    req.once('close', () => headersReceived.delete(req.socket));
  });
  return server;
}

/** The 408 message for a request that did not arrive in time: says which bound it hit and how to change it. */
export function timeoutMessage(server: Server | undefined, socket: Socket): string {
  const t = server ? timeoutsOf.get(server) : undefined;
  if (!t) return 'The request took too long to arrive.';
  return headersReceived.has(socket)
    ? `The request body did not arrive within ${t.requestMs} ms (API_REQUEST_TIMEOUT_MS). Send the whole request without pausing.`
    : `The request line and headers did not arrive within ${t.headersMs} ms (API_HEADERS_TIMEOUT_MS).`;
}

/**
 * A body that stops arriving is cut off after `bodyIdleMs` without data, with a 408, instead of waiting for the whole
 * request's bound. It watches the socket's idle timer (any byte received resets it) only until the body has been
 * read, so a handler that takes long afterwards is not affected. Mount it before the body parser.
 */
export function bodyIdleTimeout(bodyIdleMs: number): RequestHandler {
  return (req, res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody || bodyIdleMs <= 0 || req.readableEnded) return next();
    const socket = req.socket;
    const onTimeout = () => {
      if (req.complete) return;
      if (!res.headersSent) {
        res.status(408).set('Connection', 'close').json({
          success: false,
          error: { code: 'REQUEST_TIMEOUT', message: `The request body stalled: no data arrived for ${bodyIdleMs} ms (API_BODY_IDLE_TIMEOUT_MS). Send the body without pausing.` },
        });
      }
      // The rest of the body will not come: free the socket once the answer is written.
      res.once('finish', () => socket.destroy());
      if (res.writableFinished) socket.destroy();
    };
    const unwatch = () => req.off('timeout', onTimeout);
    // Body read: the handler may take its time (Node sets the keep-alive timeout itself once the answer is sent).
    const bodyRead = () => {
      socket.setTimeout(0);
      unwatch();
    };
    // Node's server emits the socket's idle timeout on the request while its body is incomplete; a listener there
    // keeps Node from destroying the socket before the 408 is written.
    req.on('timeout', onTimeout);
    socket.setTimeout(bodyIdleMs);
    req.once('end', bodyRead);
    res.once('close', unwatch);
    next();
  };
}
