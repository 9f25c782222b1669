import { readFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './errors';
import type { SecretStore } from './secret-store';
import { callAws } from './aws-errors';

/**
 * Secrets by reference: `arn:…:secretsmanager:…` is read from AWS Secrets Manager; `file:<path>`
 * from a folder of the local runtime's data dir (only when LOCAL_SECRETS_DIR is configured, so a
 * deployed stack cannot be pointed at its own file system). Values are cached per container.
 */
export class ReferenceSecretStore implements SecretStore {
  private readonly cache = new Map<string, { value: string; until: number }>();
  private client?: SecretsManagerClient;

  constructor(
    private readonly options: { localDir?: string; cacheSeconds: number; now?: () => number },
  ) {}

  async get(ref: string): Promise<string> {
    const now = (this.options.now ?? Date.now)();
    const hit = this.cache.get(ref);
    if (hit && hit.until > now) return hit.value;
    const value = await this.read(ref);
    this.cache.set(ref, { value, until: now + this.options.cacheSeconds * 1000 });
    return value;
  }

  private async read(ref: string): Promise<string> {
    if (ref.startsWith('arn:')) {
      this.client ??= new SecretsManagerClient({});
      const client = this.client;
      const out = await callAws('read secret', () => client.send(new GetSecretValueCommand({ SecretId: ref })));
      if (out.SecretString === undefined) throw new ConfigurationError('secret has no string value');
      return out.SecretString;
    }
    if (ref.startsWith('file:')) {
      const base = this.options.localDir;
      if (!base) throw new ConfigurationError('file: secret references are only allowed in local mode');
      const relative = ref.slice('file:'.length);
      const full = normalize(join(base, relative));
      if (isAbsolute(relative) || !full.startsWith(normalize(base) + sep)) {
        throw new ConfigurationError('secret reference escapes the secrets folder');
      }
      return readFile(full, 'utf8');
    }
    throw new ConfigurationError('unsupported secret reference');
  }
}
