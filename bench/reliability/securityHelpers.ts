/**
 * Helpers of the security scenario (and its jest test): workflow histories decoded to text, probes for resource
 * content, a leak search, and the at-rest checks of sealed tokens.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import type { Client } from '@temporalio/client';
import { SecretBox } from '../../src/crypto/secretBox';

/** Every string in a protobuf message tree, with byte fields (payload data, metadata) decoded as UTF-8. */
export function textOf(value: unknown, out: string[] = [], seen = new Set<unknown>()): string[] {
  if (value === null || value === undefined) return out;
  if (typeof value === 'string') {
    out.push(value);
    return out;
  }
  if (value instanceof Uint8Array) {
    out.push(Buffer.from(value).toString('utf8'));
    return out;
  }
  if (typeof value !== 'object' || seen.has(value)) return out;
  seen.add(value);
  if (Array.isArray(value)) for (const v of value) textOf(v, out, seen);
  else for (const k of Object.keys(value)) textOf((value as Record<string, unknown>)[k], out, seen);
  return out;
}

export interface HistoryScan {
  workflows: number;
  events: number;
  payloadBytes: number;
  text: string;
}

/** Fetches the history of every workflow execution in the namespace and decodes it to one searchable text. */
export async function scanHistories(client: Client): Promise<HistoryScan> {
  const parts: string[] = [];
  let workflows = 0;
  let events = 0;
  for await (const w of client.workflow.list()) {
    const history = await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
    workflows++;
    events += history.events?.length ?? 0;
    parts.push(`# ${w.workflowId} ${w.runId}`, ...textOf(history));
    // The memo and search attributes of the execution (payloads too).
    parts.push(...textOf(w.memo ?? {}), ...textOf(w.searchAttributes ?? {}));
  }
  const text = parts.join('\n');
  return { workflows, events, payloadBytes: text.length, text };
}

/** What to look for: each secret in full and its first 24 characters (a truncated copy is a leak too). */
export function needlesForSecrets(secrets: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const s of secrets) {
    if (s.length < 12) continue;
    out.add(s);
    if (s.length > 24) out.add(s.slice(0, 24));
  }
  return [...out];
}

/** The needles found in the text (each reported once, cut to 8 characters so the report leaks nothing). */
export function findLeaks(text: string, needles: string[]): string[] {
  return needles.filter((n) => text.includes(n)).map((n) => `${n.slice(0, 8)}…(${n.length})`);
}

/**
 * Distinctive resource content of one patient as the EHR serves it: names, birth date, identifiers, contact
 * details and free text (notes, messages, descriptions, conclusions). Codes, dates, URLs and ids are left out:
 * they are not what identifies a patient and some (resource types, ids) legitimately appear in histories.
 */
export function contentProbes(resources: unknown[]): string[] {
  const probes = new Set<string>();
  const keys = new Set(['text', 'family', 'given', 'contentString', 'description', 'conclusion', 'value', 'line', 'birthDate', 'title', 'display']);
  const walk = (v: unknown, key: string) => {
    if (typeof v === 'string') {
      if (!keys.has(key)) return;
      if (/^(https?:|urn:|Patient\/|[A-Za-z]+\/[a-z]+-\d)/.test(v)) return;
      if (key === 'birthDate' || (v.length >= 12 && /\s/.test(v)) || /@|^MRN|^\(\d{3}\)/.test(v)) probes.add(v);
      return;
    }
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  resources.forEach((r) => walk(r, ''));
  return [...probes];
}

/** Raw documents of every collection as text (what someone reading the database without the key sees). */
export async function rawDatabaseText(db: Db): Promise<{ documents: number; text: string }> {
  const parts: string[] = [];
  let documents = 0;
  for (const { name } of await db.listCollections().toArray()) {
    for await (const doc of db.collection(name).find({})) {
      documents++;
      parts.push(JSON.stringify(doc));
    }
  }
  return { documents, text: parts.join('\n') };
}

export interface SealedCheck {
  sealedFields: number;
  openedWithKey: string[];
  problems: string[];
}

/**
 * Every sealed secret of every connection: opens with the right key and its context, and does not open with a
 * wrong key or with another record's context.
 */
export async function checkSealedConnections(db: Db, key: Buffer): Promise<SealedCheck> {
  const right = new SecretBox(key);
  const wrong = new SecretBox(randomBytes(32));
  const problems: string[] = [];
  const openedWithKey: string[] = [];
  let sealedFields = 0;
  const fields = [
    ['sealedAccessToken', 'access'],
    ['sealedRefreshToken', 'refresh'],
    ['sealedPrivateKey', 'private-key'],
  ] as const;
  for await (const doc of db.collection<Record<string, unknown> & { _id: string }>('connections').find({})) {
    for (const [field, ctx] of fields) {
      const sealed = doc[field];
      if (typeof sealed !== 'string') continue;
      sealedFields++;
      try {
        openedWithKey.push(right.open(sealed, `${doc._id}:${ctx}`));
      } catch (err) {
        problems.push(`${doc._id}.${field} does not open with the key: ${(err as Error).message}`);
      }
      for (const [label, box, context] of [
        ['a wrong key', wrong, `${doc._id}:${ctx}`],
        ['another context', right, `conn_other:${ctx}`],
      ] as const) {
        let opened = false;
        try {
          box.open(sealed, context);
          opened = true;
        } catch {
          /* expected */
        }
        if (opened) problems.push(`${doc._id}.${field} opens with ${label}`);
      }
    }
  }
  return { sealedFields, openedWithKey, problems };
}
