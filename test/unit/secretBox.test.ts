import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/crypto/secretBox';

describe('SecretBox (secrets at rest)', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips and never stores the plaintext', () => {
    const sealed = box.seal('access-token-123', 'conn_1:access');
    expect(sealed).not.toContain('access-token-123');
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(box.open(sealed, 'conn_1:access')).toBe('access-token-123');
  });

  it('uses a fresh IV each time', () => {
    expect(box.seal('same', 'ctx')).not.toBe(box.seal('same', 'ctx'));
  });

  it('refuses another key, another context and a tampered ciphertext', () => {
    const sealed = box.seal('secret', 'conn_1:refresh');
    expect(() => new SecretBox(randomBytes(32)).open(sealed, 'conn_1:refresh')).toThrow();
    expect(() => box.open(sealed, 'conn_2:refresh')).toThrow();
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] as string, 'base64url');
    body[0] = (body[0] as number) ^ 1;
    parts[3] = body.toString('base64url');
    expect(() => box.open(parts.join('.'), 'conn_1:refresh')).toThrow();
  });

  it('needs a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32-byte/);
  });
});
