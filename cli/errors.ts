/**
 * The two ways a command fails, told apart by cli/main.ts for the exit code. Kept apart from every
 * other cli module (it imports none) so options, targets and commands can all throw them without
 * an import cycle.
 */

/** The command line is wrong (unknown option, missing or malformed value): exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The command was well formed but could not be done (not found, already exists, bad file): exit code 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}
