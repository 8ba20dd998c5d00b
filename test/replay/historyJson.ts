import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

/**
 * Workflow histories as the standard proto JSON (what `temporal workflow show --output json` and the Temporal UI's
 * download produce) and back.
 *
 * Why not the SDK's historyToJSON/historyFromJSON (@temporalio/common/lib/proto-utils): the installed tree holds two
 * copies of protobufjs (one under @temporalio/common, one under @temporalio/proto), and those helpers pass types
 * of one copy to the JSON codec of the other, which throws "type must be a Type". Here the codec is loaded from the
 * protobufjs that @temporalio/proto itself uses, whatever the layout of node_modules.
 */
type Codec = { toJson(type: unknown, message: unknown): unknown; fromJson(type: unknown, json: unknown, opts?: unknown): unknown };

const protojson = require(require.resolve('protobufjs/ext/protojson', { paths: [path.dirname(require.resolve('@temporalio/proto'))] })) as Codec;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType('temporal.api.history.v1.History');

export type History = proto.temporal.api.history.v1.IHistory;

/** A fetched history (client.workflow.getHandle(id).fetchHistory()) as a proto JSON object. */
export function historyToJsonObject(history: History): { events: unknown[] } {
  return protojson.toJson(historyType, proto.temporal.api.history.v1.History.fromObject(history)) as { events: unknown[] };
}

/** A proto JSON history back to a History message, as Worker.runReplayHistories takes it. */
export function historyFromJsonObject(json: unknown): History {
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}

/** Every payload's decoded text (base64 `data` of `{ metadata, data }` objects) anywhere in a history's JSON. */
export function decodedPayloads(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) decodedPayloads(n, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.metadata && typeof o.data === 'string') out.push(Buffer.from(o.data, 'base64').toString('utf8'));
    for (const v of Object.values(o)) decodedPayloads(v, out);
  }
  return out;
}
