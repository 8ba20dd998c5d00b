/** Names the kind of a request (for stats, faults and the rate limiter). */
import type { PathKind } from '../types';

export function classify(method: string, path: string): PathKind {
  if (path === '/fhir/r4/metadata') return 'metadata';
  if (path.endsWith('/.well-known/smart-configuration')) return 'smart-config';
  if (path.startsWith('/oauth/authorize')) return 'authorize';
  if (path === '/oauth/token') return 'token';
  if (path.startsWith('/bulkfiles/')) return 'bulk-file';
  if (path.startsWith('/fhir/r4/bulkstatus/')) return 'export-status';
  if (path.endsWith('/$export')) return 'export-kickoff';
  if (path.startsWith('/fhir/r4/')) {
    const parts = path.slice('/fhir/r4/'.length).split('/').filter(Boolean);
    if (parts.length === 1 || (parts.length === 2 && parts[1] === '_search' && method === 'POST')) return 'search';
    if (parts.length === 2) return 'read';
  }
  if (path.startsWith('/documents/')) return 'read';
  return 'other';
}
