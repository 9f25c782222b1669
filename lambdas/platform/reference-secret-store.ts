import { readFile, unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { DeleteSecretCommand, GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './errors';
import type { SecretStore } from './secret-store';
import { callAws } from './aws-errors';
import { awsClientConfig } from './aws-client-config';

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

  /**
   * Secrets Manager: scheduled for deletion after the shortest recovery window (7 days, restorable
   * meanwhile, not billed); a local file: removed. Already deleted or scheduled: nothing to do.
   */
  async delete(ref: string): Promise<void> {
    this.cache.delete(ref);
    if (ref.startsWith('arn:')) {
      const client = this.secretsManager();
      try {
        await callAws('delete secret', () => client.send(new DeleteSecretCommand({ SecretId: ref, RecoveryWindowInDays: DELETE_RECOVERY_DAYS })));
      } catch (error) {
        if (!isAlreadyDeleted(error)) throw error;
      }
      return;
    }
    try {
      await unlink(this.localPath(ref));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  private secretsManager(): SecretsManagerClient {
    this.client ??= new SecretsManagerClient(awsClientConfig());
    return this.client;
  }

  private async read(ref: string): Promise<string> {
    if (ref.startsWith('arn:')) {
      const client = this.secretsManager();
      const out = await callAws('read secret', () => client.send(new GetSecretValueCommand({ SecretId: ref })));
      if (out.SecretString === undefined) throw new ConfigurationError('secret has no string value');
      return out.SecretString;
    }
    return readFile(this.localPath(ref), 'utf8');
  }

  /** The file of a `file:` reference, inside the local secrets folder only. */
  private localPath(ref: string): string {
    if (!ref.startsWith('file:')) throw new ConfigurationError('unsupported secret reference');
    const base = this.options.localDir;
    if (!base) throw new ConfigurationError('file: secret references are only allowed in local mode');
    const relative = ref.slice('file:'.length);
    const full = normalize(join(base, relative));
    if (isAbsolute(relative) || !full.startsWith(normalize(base) + sep)) {
      throw new ConfigurationError('secret reference escapes the secrets folder');
    }
    return full;
  }
}

/** Secrets Manager's shortest recovery window for a deleted secret. */
const DELETE_RECOVERY_DAYS = 7;

/** Gone already, or already scheduled for deletion (a second deleter, a retried call). */
function isAlreadyDeleted(error: unknown): boolean {
  const { name, message } = error as { name?: string; message?: string };
  if (name === 'ResourceNotFoundException') return true;
  return name === 'InvalidRequestException' && /(scheduled|marked) for deletion/i.test(message ?? '');
}
