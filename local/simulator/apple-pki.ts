import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomInt,
  randomUUID,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import path from 'node:path';
import { KJUR } from 'jsrsasign';
import { z } from 'zod';
import { readJsonFile, readOptionalFile, writeFileAtomically } from './http-json';

// Apple's SignedDataVerifier only accepts a chain whose intermediate and leaf carry these
// marker extensions (see verifyCertificateChainWithoutCaching in jws_verification.js).
const INTERMEDIATE_MARKER_OID = '1.2.840.113635.100.6.2.1';
const LEAF_MARKER_OID = '1.2.840.113635.100.6.11.1';
const ASN1_NULL_HEX = '0500';
const VALIDITY_YEARS = 10;
const DAY_MS = 24 * 60 * 60 * 1000;

// Names say "local" so nobody mistakes these certificates for Apple's.
const ROOT_NAME = '/C=US/O=iap-sync local simulator/CN=iap-sync Local Root CA';
const INTERMEDIATE_NAME = '/C=US/O=iap-sync local simulator/OU=Local App Store/CN=iap-sync Local Intermediate CA';
const LEAF_NAME = '/C=US/O=iap-sync local simulator/CN=iap-sync Local App Store Signing';

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const BEARER_AUDIENCE = 'appstoreconnect-v1';
// Apple refuses App Store Connect tokens that live longer than an hour.
const MAX_TOKEN_LIFETIME_SECONDS = 3600;

/** The App Store Connect API key the service signs its bearer tokens with. */
export interface AppleApiKey {
  /** 10 uppercase alphanumerics, sent as the JWT `kid`. */
  keyId: string;
  /** A UUID, sent as the JWT `iss`. */
  issuerId: string;
  /** PKCS#8 PEM, what App Store Connect lets you download as a `.p8` file. */
  privateKeyPem: string;
  /** Where the `.p8` file lives; absent in memory-only mode. */
  privateKeyPath?: string;
}

/** The simulator's signing material: Apple-shaped chain, JWS signer and API key. */
export interface ApplePki {
  /** DER of the root the service must trust (APPLE_ROOT_CERTIFICATES, base64). */
  rootCertificateDer: Buffer;
  apiKey: AppleApiKey;
  /** Signs `payload` as a compact JWS with `x5c` [leaf, intermediate, root], like the App Store. */
  signJws(payload: object): string;
  /** Checks an `Authorization` header like Apple; answers the token's `bid`, or `undefined` when it must be refused. */
  verifyBearer(authorization: string | undefined, nowMs: number): string | undefined;
}

/** Where and when the PKI lives. */
export interface ApplePkiOptions {
  dataDir: string;
  /** Keep everything in memory, write no file. */
  inMemory: boolean;
  now?: () => Date;
}

const storedPkiSchema = z.object({
  version: z.literal(1),
  /** Standard base64 DER, the form `x5c` carries. */
  certificates: z.object({ leaf: z.string(), intermediate: z.string(), root: z.string() }),
  leafPrivateKeyPem: z.string(),
  apiKey: z.object({ keyId: z.string().regex(/^[A-Z0-9]{10}$/), issuerId: z.uuid() }),
});
type StoredPki = z.infer<typeof storedPkiSchema>;

const bearerHeaderSchema = z.object({ alg: z.literal('ES256'), kid: z.string() });
const bearerPayloadSchema = z.object({
  iss: z.string(),
  aud: z.literal(BEARER_AUDIENCE),
  bid: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
});

/**
 * Loads the chain and API key from `<dataDir>/simulator/apple-pki.json` and
 * `<dataDir>/secrets/apple-api-key.p8`, generating them on first use. They are generated once
 * because the service is configured to trust this root and this key; regenerating them would
 * silently break a running setup.
 */
export async function loadOrCreateApplePki(options: ApplePkiOptions): Promise<ApplePki> {
  const now = (options.now ?? (() => new Date()))();
  if (options.inMemory) return buildPki(generatePki(now), generateKeyPair().privateKeyPem, undefined);

  const pkiPath = path.join(options.dataDir, 'simulator', 'apple-pki.json');
  const keyPath = path.join(options.dataDir, 'secrets', 'apple-api-key.p8');
  let stored = await readJsonFile(pkiPath, storedPkiSchema);
  let apiKeyPem = stored ? await readOptionalFile(keyPath) : undefined;
  if (!stored || apiKeyPem === undefined) {
    // A lost .p8 means a new key, and so a new key id: Apple never reissues a key either.
    stored = stored ? { ...stored, apiKey: newApiKeyIds() } : generatePki(now);
    apiKeyPem = generateKeyPair().privateKeyPem;
    await writeFileAtomically(keyPath, apiKeyPem);
    await writeFileAtomically(pkiPath, JSON.stringify(stored, null, 2));
  }
  return buildPki(stored, apiKeyPem, keyPath);
}

function buildPki(stored: StoredPki, apiKeyPem: string, apiKeyPath: string | undefined): ApplePki {
  const chain = [stored.certificates.leaf, stored.certificates.intermediate, stored.certificates.root];
  const leafKey = createPrivateKey(stored.leafPrivateKeyPem);
  const apiPublicKey = createPublicKey(apiKeyPem);
  const apiKey: AppleApiKey = { ...stored.apiKey, privateKeyPem: apiKeyPem };
  if (apiKeyPath !== undefined) apiKey.privateKeyPath = apiKeyPath;
  return {
    rootCertificateDer: Buffer.from(stored.certificates.root, 'base64'),
    apiKey,
    signJws: (payload) => signCompactJws({ alg: 'ES256', x5c: chain }, payload, leafKey),
    verifyBearer: (authorization, nowMs) => verifyBearerToken(authorization, nowMs, apiKey, apiPublicKey),
  };
}

function generatePki(now: Date): StoredPki {
  const root = generateKeyPair();
  const intermediate = generateKeyPair();
  const leaf = generateKeyPair();
  const validity = { notBefore: new Date(now.getTime() - DAY_MS), notAfter: addYears(now, VALIDITY_YEARS) };
  const caExtensions = [
    { extname: 'basicConstraints', cA: true, critical: true },
    { extname: 'keyUsage', critical: true, names: ['keyCertSign', 'cRLSign'] },
  ];
  return {
    version: 1,
    certificates: {
      root: issueCertificate(ROOT_NAME, ROOT_NAME, root.publicKeyPem, root.privateKeyPem, caExtensions, validity),
      intermediate: issueCertificate(ROOT_NAME, INTERMEDIATE_NAME, intermediate.publicKeyPem, root.privateKeyPem,
        [...caExtensions, { extname: INTERMEDIATE_MARKER_OID, extn: ASN1_NULL_HEX }], validity),
      leaf: issueCertificate(INTERMEDIATE_NAME, LEAF_NAME, leaf.publicKeyPem, intermediate.privateKeyPem, [
        { extname: 'keyUsage', critical: true, names: ['digitalSignature'] },
        { extname: LEAF_MARKER_OID, extn: ASN1_NULL_HEX },
      ], validity),
    },
    leafPrivateKeyPem: leaf.privateKeyPem,
    apiKey: newApiKeyIds(),
  };
}

/**
 * Builds one X.509 v3 certificate with jsrsasign and signs it (ECDSA P-256 / SHA-256) with Node's
 * crypto: jsrsasign's pure-JS ECDSA takes seconds per chain, Node's takes microseconds.
 * Answers base64 DER.
 */
function issueCertificate(
  issuer: string,
  subject: string,
  subjectPublicKeyPem: string,
  issuerPrivateKeyPem: string,
  ext: Array<{ extname: string; [key: string]: unknown }>,
  validity: { notBefore: Date; notAfter: Date },
): string {
  const tbs = {
    version: 3,
    // 16 random bytes with a 0x01 lead byte: positive, unique, and never too long for RFC 5280.
    serial: { hex: `01${randomBytes(15).toString('hex')}` },
    sigalg: 'SHA256withECDSA',
    issuer: { str: issuer },
    subject: { str: subject },
    notbefore: utcTime(validity.notBefore),
    notafter: utcTime(validity.notAfter),
    sbjpubkey: subjectPublicKeyPem,
    ext,
  };
  const tbsDer = Buffer.from(new KJUR.asn1.x509.TBSCertificate(tbs).getEncodedHex(), 'hex');
  const signature = sign('sha256', tbsDer, createPrivateKey(issuerPrivateKeyPem));
  const certificate = new KJUR.asn1.x509.Certificate({ ...tbs, sighex: signature.toString('hex') });
  return Buffer.from(certificate.getEncodedHex(), 'hex').toString('base64');
}

/** ASN.1 UTCTime (YYMMDDHHmmssZ), the form RFC 5280 requires for dates before 2050. */
function utcTime(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
}

function addYears(date: Date, years: number): Date {
  const result = new Date(date.getTime());
  result.setUTCFullYear(result.getUTCFullYear() + years);
  return result;
}

function generateKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function newApiKeyIds(): StoredPki['apiKey'] {
  const keyId = Array.from({ length: 10 }, () => KEY_ID_ALPHABET[randomInt(KEY_ID_ALPHABET.length)]).join('');
  return { keyId, issuerId: randomUUID() };
}

/** ES256 compact JWS; JOSE wants the raw r||s signature, not DER, hence ieee-p1363. */
function signCompactJws(header: object, payload: object, key: KeyObject): string {
  const input = `${base64UrlJson(header)}.${base64UrlJson(payload)}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function base64UrlJson(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/**
 * Apple's checks on the App Store Server API bearer token: ES256 signed by the key `kid` names,
 * `iss` the issuer id, `aud` appstoreconnect-v1, a `bid`, not expired, at most an hour long.
 * https://developer.apple.com/documentation/appstoreserverapi/generating-json-web-tokens-for-api-requests
 */
function verifyBearerToken(
  authorization: string | undefined,
  nowMs: number,
  apiKey: AppleApiKey,
  publicKey: KeyObject,
): string | undefined {
  const match = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization ?? '');
  if (!match) return undefined;
  const [, headerPart = '', payloadPart = '', signaturePart = ''] = match;
  const header = bearerHeaderSchema.safeParse(parseBase64UrlJson(headerPart));
  if (!header.success || header.data.kid !== apiKey.keyId) return undefined;
  const signed = verify(
    'sha256',
    Buffer.from(`${headerPart}.${payloadPart}`),
    { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signaturePart, 'base64url'),
  );
  if (!signed) return undefined;
  const payload = bearerPayloadSchema.safeParse(parseBase64UrlJson(payloadPart));
  if (!payload.success) return undefined;
  const { iss, bid, iat, exp } = payload.data;
  const nowSeconds = nowMs / 1000;
  if (iss !== apiKey.issuerId || exp <= nowSeconds || exp - iat > MAX_TOKEN_LIFETIME_SECONDS) return undefined;
  return bid;
}

function parseBase64UrlJson(part: string): unknown {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
