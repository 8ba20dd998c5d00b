/** Composes the sandbox express app. */
import express, { type NextFunction, type Request, type Response } from 'express';
import { createAdmin, type SandboxAdmin } from './admin';
import { adminRouter } from './admin-routes';
import { authorizeRouter } from './auth/authorize';
import { tokenRouter } from './auth/token-endpoint';
import { createContext, type SandboxContext } from './context';
import { fileRoute } from './export/files';
import { kickoffRoute } from './export/kickoff';
import { statusRoute } from './export/status';
import { sendOutcome } from './fhir/outcome';
import { fhirRouter } from './fhir/routes';
import { PracticeRegistry } from './practices';
import { faultMiddleware, rateLimitMiddleware, statsMiddleware } from './limits/middleware';
import { resolveOptions } from './options';
import type { SandboxOptions } from './types';

export type SandboxExpressApp = express.Express & {
  sandboxAdmin: SandboxAdmin;
  /** Internal state (tests and startSandbox use it; other code should go through sandboxAdmin). */
  sandboxContext: SandboxContext;
};

export function createSandboxApp(options: Partial<SandboxOptions> = {}): SandboxExpressApp {
  const ctx = createContext(resolveOptions(options));
  return buildApp(ctx);
}

export function buildApp(ctx: SandboxContext): SandboxExpressApp {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  if (!ctx.parent) {
    // The server's practices: each a whole app of its own, mounted under its base URL.
    const practices = new PracticeRegistry<SandboxAdmin>(ctx, (practiceCtx) => {
      const practiceApp = buildApp(practiceCtx);
      return { handle: practiceApp, admin: practiceApp.sandboxAdmin };
    });
    ctx.practices = practices;
    for (const spec of ctx.options.practices ?? []) practices.create(spec);
  }
  const admin = createAdmin(ctx);

  // Test control: not counted, not limited, no faults.
  app.use('/_sandbox', adminRouter(admin));
  // Before the stats and the limiter: a practice's requests count against its own quota, not the default one's.
  if (ctx.practices) app.use(ctx.practices.dispatch());

  app.use(statsMiddleware(ctx));
  app.use(rateLimitMiddleware(ctx));
  app.use(faultMiddleware(ctx));

  app.use(authorizeRouter(ctx));
  app.use(tokenRouter(ctx));

  const exportBody = express.json({ type: ['application/json', 'application/fhir+json'], limit: '1mb' });
  app.get('/fhir/r4/$export', kickoffRoute(ctx, 'system'));
  app.post('/fhir/r4/$export', exportBody, kickoffRoute(ctx, 'system'));
  app.get('/fhir/r4/Patient/$export', kickoffRoute(ctx, 'patient'));
  app.post('/fhir/r4/Patient/$export', exportBody, kickoffRoute(ctx, 'patient'));
  app.get('/fhir/r4/Group/:id/$export', kickoffRoute(ctx, 'group'));
  app.post('/fhir/r4/Group/:id/$export', exportBody, kickoffRoute(ctx, 'group'));
  app.get('/fhir/r4/bulkstatus/:id', statusRoute(ctx));
  app.delete('/fhir/r4/bulkstatus/:id', statusRoute(ctx));
  app.get('/bulkfiles/:id/:file', fileRoute(ctx));

  app.use(fhirRouter(ctx));

  app.use((req: Request, res: Response) => {
    sendOutcome(res, 404, 'not-found', `No route for ${req.method} ${req.path}`);
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendOutcome(res, status, 'invalid', err instanceof Error ? err.message : 'Bad request');
      return;
    }
    sendOutcome(res, 500, 'exception', 'Internal sandbox error');
  });

  return Object.assign(app, { sandboxAdmin: admin, sandboxContext: ctx });
}
