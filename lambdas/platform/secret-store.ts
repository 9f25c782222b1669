/** Reads a secret by reference (`file:` path locally, Secrets Manager ARN when deployed). Cached by adapters. */
export interface SecretStore {
  get(ref: string): Promise<string>;
  /**
   * Deletes a secret nothing uses any more (a webhook signing secret after its rotation window);
   * a secret already gone counts as deleted. Optional: a store without it keeps its secrets.
   */
  delete?(ref: string): Promise<void>;
}
