import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../local/stack';

/** The API reference the fuzz judges against: the project's own docs/api.md (a clone needs nothing outside it). */
export const CONTRACT_FILE = join(PROJECT_ROOT, 'docs', 'api.md');

/**
 * The error codes of the reference's §6 table, with their HTTP status. Parsed from the document
 * rather than imported from lambdas/platform/errors.ts on purpose: the product's table is what is
 * under test, so a code the product added (or changed the status of) without documenting it must
 * show up, not pass by construction.
 */
export function parseContractCodes(markdown: string): Map<string, number> {
  const section = markdown.split(/^## /m).find((part) => /^\d+\.\s*Errors/.test(part));
  if (!section) throw new Error('the contract has no "Errors" section');
  const codes = new Map<string, number>();
  for (const line of section.split('\n')) {
    const row = /^\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|/.exec(line);
    if (!row?.[1] || !row[2]) continue;
    for (const code of row[2].split('/').map((c) => c.trim())) {
      if (/^[A-Z0-9]+$/.test(code)) codes.set(code, Number(row[1]));
    }
  }
  if (codes.size === 0) throw new Error('no error code found in the contract table');
  return codes;
}

export function loadContractCodes(file = CONTRACT_FILE): Map<string, number> {
  return parseContractCodes(readFileSync(file, 'utf8'));
}
