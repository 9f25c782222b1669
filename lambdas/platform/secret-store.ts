/** Reads a secret by reference (`file:` path locally, Secrets Manager ARN when deployed). Cached by adapters. */
export interface SecretStore {
  get(ref: string): Promise<string>;
}
