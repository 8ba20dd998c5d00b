import { MongoClient } from 'mongodb';
import { MONGO_SOCKET_TIMEOUT_MS, mongoClientOptions } from '../../src/store/mongo';

// The options as the driver resolves them (no connection is made): a database that stops answering fails the
// operation after MONGO_SOCKET_TIMEOUT_MS instead of holding the step for ever, unless the URI says otherwise.
describe('MongoDB client options', () => {
  const resolved = (uri: string) => new MongoClient(uri, mongoClientOptions(uri)).options;

  it('bounds every operation by default', () => {
    expect(resolved('mongodb://127.0.0.1:27117/').socketTimeoutMS).toBe(MONGO_SOCKET_TIMEOUT_MS);
    expect(resolved('mongodb://127.0.0.1:27117/?appName=x&retryWrites=true').socketTimeoutMS).toBe(MONGO_SOCKET_TIMEOUT_MS);
    expect(resolved('mongodb://127.0.0.1:27117/').serverSelectionTimeoutMS).toBe(10_000);
  });

  it("keeps the URI's own socketTimeoutMS, in any letter case (0 means no bound, as the operator asked)", () => {
    expect(resolved('mongodb://127.0.0.1:27117/?socketTimeoutMS=45000').socketTimeoutMS).toBe(45_000);
    expect(resolved('mongodb://127.0.0.1:27117/?w=majority&sockettimeoutms=0').socketTimeoutMS).toBe(0);
  });
});
