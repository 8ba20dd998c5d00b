import { readFileSync } from 'node:fs';
import path from 'node:path';
import yaml from 'js-yaml';

/**
 * docker-compose.yml, read as Compose reads it (no Docker engine here): the worker scales with
 * `docker compose up --scale worker=N` — nothing in it names one container, and its published metrics port is a
 * range, so replicas do not clash — and the app services share one Temporal and one MongoDB.
 */
type Service = { container_name?: string; hostname?: string; ports?: string[]; environment?: Record<string, string>; command?: string[] };
const compose = yaml.load(readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service> };

/** The host side of a port mapping `[ip:]host[-hostEnd]:container`, with `${VAR:-default}` resolved to the default. */
function hostPorts(mapping: string): { from: number; to: number } {
  const resolved = mapping.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
  const parts = resolved.split(':');
  const host = parts.length === 3 ? parts[1]! : parts[0]!;
  const [from, to] = host.split('-').map(Number);
  return { from: from!, to: to ?? from! };
}

describe('docker-compose.yml', () => {
  const worker = compose.services.worker!;

  it('lets the worker scale: no container name or hostname, and a host port range for its metrics', () => {
    expect(worker.container_name).toBeUndefined();
    expect(worker.hostname).toBeUndefined();
    for (const mapping of worker.ports ?? []) {
      const { from, to } = hostPorts(mapping);
      expect(to - from + 1).toBeGreaterThanOrEqual(4); // --scale worker=4 at least, each on its own host port
    }
  });

  it('points every app service at the same Temporal and MongoDB inside the network', () => {
    for (const name of ['worker', 'api']) {
      const env = compose.services[name]!.environment!;
      expect(env).toMatchObject({ MONGODB_URI: 'mongodb://mongodb:27017/', TEMPORAL_ADDRESS: 'temporal:7233' });
    }
  });

  it('the worker runs with the heap cap the README measures (flat RSS)', () => {
    expect(worker.command).toContain('--max-old-space-size=160');
  });
});
