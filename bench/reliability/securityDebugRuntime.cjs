/**
 * Preloaded into the worker of the security scenario (`node --import tsx --import <this> src/worker.ts`): the
 * Temporal SDK's own logs at DEBUG (workflow and activity logs, core logs forwarded), on top of LOG_LEVEL=debug and
 * DEBUG=eclinicalworks:*, so that every log the worker can emit is captured and scanned.
 * If src/worker.ts installs a Runtime of its own later, that call gets this one (rather than failing on a second
 * install), so the worker still starts, logging at DEBUG. Plain JavaScript: the workflow threads inherit the
 * --import flags before tsx can load TypeScript there (and do nothing here).
 */
const { isMainThread } = require('node:worker_threads');

if (isMainThread) {
  const { DefaultLogger, Runtime } = require('@temporalio/worker');
  const runtime = Runtime.install({
    logger: new DefaultLogger('DEBUG'),
    telemetryOptions: { logging: { filter: { core: 'DEBUG', other: 'INFO' }, forward: {} } },
  });
  Runtime.install = () => runtime;
}
