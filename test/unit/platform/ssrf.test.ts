import { InvalidIpAddressError, classifyAddress, isForbiddenAddress, type AddressClass } from '../../../lambdas/platform/ssrf';

describe('SSRF guard: address classes', () => {
  const table: [string, AddressClass][] = [
    // IPv4 public
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['93.184.216.34', 'public'],
    ['100.63.255.255', 'public'], // just below CGNAT
    ['100.128.0.0', 'public'], // just above CGNAT
    ['172.15.255.255', 'public'], // just below 172.16/12
    ['172.32.0.0', 'public'], // just above 172.16/12
    ['198.17.255.255', 'public'], // just below benchmarking
    ['198.20.0.0', 'public'], // just above benchmarking
    ['223.255.255.255', 'public'], // last unicast below multicast
    ['1.0.0.0', 'public'], // first after 0/8
    // IPv4 special
    ['0.0.0.0', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['169.254.0.1', 'link-local'],
    ['169.254.169.253', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.170.23', 'metadata'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['198.19.255.255', 'reserved'],
    ['192.0.0.8', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.99', 'reserved'],
    ['192.88.99.1', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4007:80e::200e', 'public'],
    ['2001:4860:4860::8888', 'public'],
    ['::', 'unspecified'],
    ['0:0:0:0:0:0:0:0', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456:789a::1', 'private'],
    ['fec0::1', 'private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['FEBF:FFFF::1', 'link-local'],
    ['fd00:ec2::254', 'metadata'],
    ['FD00:EC2:0:0:0:0:0:254', 'metadata'],
    ['fd00:ec2::23', 'metadata'],
    ['fd00:ec2::253', 'private'], // the VPC resolver: not metadata, still not reachable
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['3fff::1', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['2002:7f00:1::', 'reserved'], // 6to4 around 127.0.0.1
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'], // outside 2000::/3, unassigned
    ['::127.0.0.1', 'reserved'], // deprecated IPv4-compatible
    ['::8.8.8.8', 'reserved'],
    // IPv4-mapped and -translated IPv6: the socket really talks IPv4
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
    ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
    ['::FFFF:10.1.2.3', 'private'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:100.64.0.1', 'cgnat'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0:127.0.0.1', 'loopback'],
    // NAT64 (well-known prefix): public when the IPv4 inside is
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b::808:808', 'public'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b:1::a00:1', 'private'],
  ];

  it.each(table)('%s is %s', (ip, expected) => {
    expect(classifyAddress(ip)).toBe(expected);
    expect(isForbiddenAddress(ip)).toBe(expected !== 'public');
  });

  it.each([
    ['a host name', 'localhost'],
    ['an empty string', ''],
    ['a short IPv4 form', '127.1'],
    ['a hexadecimal IPv4', '0x7f.0.0.1'],
    ['an integer IPv4', '2130706433'],
    ['an octal-looking IPv4', '0177.0.0.1'],
    ['an octet out of range', '256.0.0.1'],
    ['an IPv6 with too many groups', '1:2:3:4:5:6:7:8:9'],
    ['two compressions', '1::2::3'],
    ['an address with a port', '127.0.0.1:80'],
  ])('refuses %s as an address, and forbids it', (_case, text) => {
    expect(() => classifyAddress(text)).toThrow(InvalidIpAddressError);
    expect(isForbiddenAddress(text)).toBe(true);
  });
});
