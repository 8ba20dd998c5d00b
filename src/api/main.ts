import { Client, Connection } from '@temporalio/client';
import { loadApiConfig } from '../config';
import { createLogger } from '../logger';
import { createServices } from '../services';
import { registerSearchAttributes } from '../temporal/registerSearchAttributes';
import { answerClientErrors, createApp } from './app';
import { WorkflowGateway } from './workflowGateway';
import { apiServerTimeouts, createApiServer } from './serverTimeouts';
import { ChangeFeedRetention, scheduleRetention } from '../store/changeFeed/retention';
import { errorMessage } from '../errors';

async function main(): Promise<void> {
  const config = loadApiConfig();
  const logger = createLogger(config.LOG_LEVEL, { role: 'api' });
  const services = await createServices(config);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  // Every job starts with the Ehr* search attributes: a namespace without them would refuse every start.
  await registerSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const workflows = new WorkflowGateway(client, config.TEMPORAL_TASK_QUEUE, config.API_WORKFLOW_WAIT_MS, services.jobs);
  const app = createApp({ services, workflows, apiKeys: config.API_KEYS, logger });
  const server = answerClientErrors(createApiServer(app, apiServerTimeouts(config)));
  server.listen(config.API_PORT, config.API_HOST, () => {
    logger.info({ url: `http://${config.API_HOST}:${config.API_PORT}` }, 'api listening');
  });
  // The change feed's retention (tombstones and block documents older than it): one process at a time, by a lease.
  const stopRetention = scheduleRetention(new ChangeFeedRetention(services.db, services.leases), (err) => {
    logger.warn({ err: errorMessage(err) }, 'change-feed retention purge failed; it runs again within the hour');
  });
  const shutdown = async () => {
    stopRetention();
    server.close();
    await connection.close();
    await services.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
