import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** One of Apple's published root certificate authorities. */
export interface KnownAppleRoot {
  /** Subject common name, as Apple names it. */
  name: string;
  /** SHA-256 of the DER bytes: uppercase hex pairs joined by colons (Node's `fingerprint256` format). */
  sha256: string;
  /** Where Apple publishes the DER file. */
  url: string;
}

/**
 * Apple roots that StoreKit 2 signed data and App Store Server Notifications can chain to. Index:
 * https://www.apple.com/certificateauthority/. Both fingerprints were checked by hashing copies of
 * the certificates (self-signatures verified) and match the values published in several independent
 * projects. Re-verify against apple.com before adding or changing an entry: this list decides which
 * deployer-supplied files are trusted without a warning.
 */
export const KNOWN_APPLE_ROOTS: readonly KnownAppleRoot[] = [
  {
    name: 'Apple Root CA - G3',
    sha256: '63:34:3A:BF:B8:9A:6A:03:EB:B5:7E:9B:3F:5F:A7:BE:7C:4F:5C:75:6F:30:17:B3:A8:C4:88:C3:65:3E:91:79',
    url: 'https://www.apple.com/certificateauthority/AppleRootCA-G3.cer',
  },
  {
    name: 'Apple Inc. Root (Apple Root CA)',
    sha256: 'B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24',
    url: 'https://www.apple.com/appleca/AppleIncRootCertificate.cer',
  },
];

/** A root certificate file read from the deployer's folder. */
export interface AppleRootFile {
  /** File name inside the folder. */
  file: string;
  /** Base64 of the DER bytes, as the Lambdas receive it in APPLE_ROOT_CERTIFICATES. */
  base64: string;
  /** SHA-256 of the DER bytes, colon-separated uppercase hex. */
  sha256: string;
  /** Name of the matching entry of KNOWN_APPLE_ROOTS; undefined when the file is not a known Apple root. */
  knownAs?: string;
}

/** The folder is missing or holds no `.cer` file. */
export class AppleRootsMissingError extends Error {
  override readonly name = 'AppleRootsMissingError';
  constructor(readonly dir: string) {
    super(missingAppleRootsHelp(dir));
  }
}

/** Explains how to fill the roots folder; printed by bin/app.ts. */
export function missingAppleRootsHelp(dir: string): string {
  const lines = [
    `No Apple root certificates (*.cer) found in ${dir}.`,
    '',
    "iap-sync verifies StoreKit signed data against Apple's root certificates, and the deployer supplies",
    'them (they are not committed). Download them from https://www.apple.com/certificateauthority/ :',
    '',
    `  mkdir -p ${dir}`,
    ...KNOWN_APPLE_ROOTS.map((root) => `  curl -fsSL -o ${path.join(dir, path.basename(root.url))} ${root.url}`),
    '',
    'then compare each fingerprint with the list below:',
    `  openssl x509 -inform der -in ${path.join(dir, '<file>.cer')} -noout -fingerprint -sha256`,
    ...KNOWN_APPLE_ROOTS.map((root) => `  ${root.name}: ${root.sha256}`),
    '',
    'To read them from another folder: cdk synth -c appleRootsDir=<folder>',
  ];
  return lines.join('\n');
}

/** SHA-256 of DER bytes in Node's `fingerprint256` format. */
export function fingerprint256(der: Buffer): string {
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return (hex.match(/../g) ?? []).join(':');
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

/** DER bytes of a `.cer` file; Apple ships DER, but a PEM copy is accepted rather than trusted as garbage. */
function toDer(content: Buffer): Buffer {
  const pem = PEM_CERTIFICATE.exec(content.toString('latin1'));
  return pem?.[1] === undefined ? content : Buffer.from(pem[1].replace(/\s+/g, ''), 'base64');
}

/**
 * Reads every `*.cer` of `dir` (sorted by name, duplicates by fingerprint dropped) and marks the ones
 * that are known Apple roots. Throws AppleRootsMissingError when the folder is missing or empty.
 * Unknown files are returned, not rejected: the caller decides (bin/app.ts refuses them for prod).
 */
export function readAppleRootCertificates(dir: string): AppleRootFile[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AppleRootsMissingError(dir);
  const files = readdirSync(dir)
    .filter((file) => file.toLowerCase().endsWith('.cer'))
    .sort();
  const roots = new Map<string, AppleRootFile>();
  for (const file of files) {
    const der = toDer(readFileSync(path.join(dir, file)));
    if (der.length === 0) continue;
    const sha256 = fingerprint256(der);
    if (roots.has(sha256)) continue;
    const known = KNOWN_APPLE_ROOTS.find((root) => root.sha256 === sha256);
    roots.set(sha256, { file, base64: der.toString('base64'), sha256, knownAs: known?.name });
  }
  if (roots.size === 0) throw new AppleRootsMissingError(dir);
  return [...roots.values()];
}
