import { isIPv4, isIPv6 } from 'node:net';

/**
 * The SSRF guard's address table (contract §8): deployed stacks deliver webhooks only to public
 * addresses, so a publisher cannot point an endpoint at our VPC, the instance metadata service or
 * the Lambda runtime API. Ranges follow the IANA special-purpose registries
 * (https://www.iana.org/assignments/iana-ipv4-special-registry,
 * https://www.iana.org/assignments/iana-ipv6-special-registry). Pure: no DNS here.
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'multicast'
  | 'metadata'
  | 'unspecified'
  | 'reserved';

/** The text is not an IPv4 or IPv6 address (a host name, `127.1`, `0x7f.0.0.1`…). */
export class InvalidIpAddressError extends Error {
  override readonly name = 'InvalidIpAddressError';
  readonly retryable = false;
}

type Embedded = 'embedded-ipv4';

interface Range<T> {
  base: bigint;
  prefix: number;
  verdict: T;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

/** 128-bit value of a valid IPv6 text (`::` compression and a trailing dotted quad included). */
function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined) {
    const v4 = ipv4ToBigInt(dotted[1]);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function cidr<T>(text: string, verdict: T, bits: 32 | 128): Range<T> {
  const [address = '', prefix = ''] = text.split('/');
  return { base: bits === 32 ? ipv4ToBigInt(address) : ipv6ToBigInt(address), prefix: Number(prefix), verdict };
}

function match<T>(value: bigint, bits: 32 | 128, ranges: readonly Range<T>[]): T | undefined {
  for (const { base, prefix, verdict } of ranges) {
    const shift = BigInt(bits - prefix);
    if (value >> shift === base >> shift) return verdict;
  }
  return undefined;
}

// First match wins: the single metadata addresses come before the blocks that hold them.
const IPV4_RANGES: readonly Range<AddressClass>[] = (
  [
    ['169.254.169.254/32', 'metadata'], // EC2 instance metadata (IMDS)
    ['169.254.170.2/32', 'metadata'], // ECS task credentials
    ['169.254.170.23/32', 'metadata'], // EKS Pod Identity agent
    ['0.0.0.0/8', 'unspecified'], // "this network"; 0.0.0.0 connects to the local host on Linux
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'cgnat'],
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link-local'],
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
    ['192.0.2.0/24', 'reserved'], // TEST-NET-1 (documentation)
    ['192.88.99.0/24', 'reserved'], // deprecated 6to4 relay anycast
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'reserved'], // benchmarking
    ['198.51.100.0/24', 'reserved'], // TEST-NET-2
    ['203.0.113.0/24', 'reserved'], // TEST-NET-3
    ['224.0.0.0/4', 'multicast'],
    ['240.0.0.0/4', 'reserved'], // future use, and 255.255.255.255 broadcast
  ] as const
).map(([range, verdict]) => cidr<AddressClass>(range, verdict, 32));

const IPV6_RANGES: readonly Range<AddressClass | Embedded>[] = (
  [
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['::ffff:0:0/96', 'embedded-ipv4'], // IPv4-mapped: the socket really talks IPv4
    ['::ffff:0:0:0/96', 'embedded-ipv4'], // IPv4-translated (SIIT)
    // NAT64 well-known prefix (RFC 6052), which AWS DNS64 hands out: public when the IPv4 inside
    // is; RFC 6052 §3.1 forbids it for non-global IPv4, so those are classified as their IPv4.
    ['64:ff9b::/96', 'embedded-ipv4'],
    ['64:ff9b:1::/48', 'private'], // local-use NAT64 (RFC 8215)
    ['::/8', 'reserved'], // the rest, including deprecated IPv4-compatible ::a.b.c.d
    ['100::/64', 'reserved'], // discard-only
    ['2001::/23', 'reserved'], // IETF protocol assignments, Teredo
    ['2001:db8::/32', 'reserved'], // documentation
    ['2002::/16', 'reserved'], // 6to4, which tunnels to the IPv4 inside
    ['3fff::/20', 'reserved'], // documentation (RFC 9637)
    ['5f00::/16', 'reserved'], // SRv6 SIDs
    ['fd00:ec2::254/128', 'metadata'], // EC2 instance metadata over IPv6
    ['fd00:ec2::23/128', 'metadata'], // EKS Pod Identity agent over IPv6
    ['fc00::/7', 'private'], // unique local
    ['fe80::/10', 'link-local'],
    ['fec0::/10', 'private'], // deprecated site-local
    ['ff00::/8', 'multicast'],
    ['2000::/3', 'public'], // global unicast; everything else is unassigned
  ] as const
).map(([range, verdict]) => cidr<AddressClass | Embedded>(range, verdict, 128));

function classifyIpv4(value: bigint): AddressClass {
  return match(value, 32, IPV4_RANGES) ?? 'public';
}

/** `[::1]` (URL host form) and `fe80::1%eth0` (zone id) are accepted; the zone does not matter here. */
function normalize(ip: string): string {
  const unbracketed = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const zone = unbracketed.indexOf('%');
  return zone === -1 ? unbracketed : unbracketed.slice(0, zone);
}

/** The class of an IPv4 or IPv6 address. Throws `InvalidIpAddressError` for anything else. */
export function classifyAddress(ip: string): AddressClass {
  const text = normalize(ip.trim());
  if (isIPv4(text)) return classifyIpv4(ipv4ToBigInt(text));
  if (!isIPv6(text)) throw new InvalidIpAddressError(`Not an IP address: ${JSON.stringify(ip)}.`);
  const value = ipv6ToBigInt(text.toLowerCase());
  const verdict = match(value, 128, IPV6_RANGES) ?? 'reserved';
  return verdict === 'embedded-ipv4' ? classifyIpv4(value & 0xffffffffn) : verdict;
}

/** True for every address a deployed stack must not deliver to: anything not public, and non-addresses. */
export function isForbiddenAddress(ip: string): boolean {
  try {
    return classifyAddress(ip) !== 'public';
  } catch (error) {
    if (error instanceof InvalidIpAddressError) return true;
    throw error;
  }
}
