import { describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import type { ParseResult } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { SipHeaders, createRequest, createResponse } from '../../../src/sip/embedded/message.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { parseVia } from '../../../src/sip/embedded/via.ts';
import { BYE, INVITE, RESPONSE, SDP, sip } from './sip-samples.ts';

function ok(r: ParseResult): SipMessage {
  if (!r.ok) throw new Error(`expected ok, got: ${r.error}`);
  return r.message;
}
function req(data: Buffer): SipRequest {
  const m = ok(parseMessage(data));
  if (m.kind !== 'request') throw new Error('expected a request');
  return m;
}
function res(data: Buffer): SipResponse {
  const m = ok(parseMessage(data));
  if (m.kind !== 'response') throw new Error('expected a response');
  return m;
}
function bad(data: Buffer, opts?: { maxSize?: number }): { error: string; partial?: SipRequest } {
  const r = parseMessage(data, opts);
  if (r.ok) throw new Error('expected a parse failure');
  return r;
}

/** The fixed headers a request needs, so each torture case only shows what is unusual about it. */
const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-base',
  'From: <sip:a@example.com>;tag=1',
  'To: <sip:b@example.com>',
  'Call-ID: base-call@example.com',
];
function invite(extra: string[], opts: { cseq?: string; start?: string; body?: string | Buffer } = {}): Buffer {
  return sip(
    [opts.start ?? 'INVITE sip:b@example.com SIP/2.0', ...BASE, `CSeq: ${opts.cseq ?? '1 INVITE'}`, ...extra],
    opts.body ?? '',
  );
}

function sameMessage(a: SipMessage, b: SipMessage): void {
  expect(b.kind).toBe(a.kind);
  if (a.kind === 'request' && b.kind === 'request') {
    expect(b.method).toBe(a.method);
    expect(b.uri).toBe(a.uri);
  }
  if (a.kind === 'response' && b.kind === 'response') {
    expect(b.status).toBe(a.status);
    expect(b.reason).toBe(a.reason);
  }
  expect(b.headers.lines()).toEqual(a.headers.lines());
  expect(Buffer.compare(b.body, a.body)).toBe(0);
}

describe('parseMessage basics', () => {
  it('parses a request with an SDP body', () => {
    const m = req(INVITE);
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:bob@biloxi.example.com');
    expect(m.version).toBe('SIP/2.0');
    expect(m.headers.get('call-id')).toBe('a84b4c76e66710@pc33.atlanta.example.com');
    expect(m.body.toString('utf8')).toBe(SDP);
  });

  it('parses a response with two Via lines', () => {
    const m = res(RESPONSE);
    expect(m.status).toBe(200);
    expect(m.reason).toBe('OK');
    expect(m.headers.getAll('Via')).toHaveLength(2);
    expect(parseVia(m.headers.getAll('Via')[1]!).params.received).toBe('192.0.2.1');
  });

  it('round-trips parse -> serialize -> parse', () => {
    for (const data of [INVITE, BYE, RESPONSE]) {
      const first = ok(parseMessage(data));
      const again = ok(parseMessage(serializeMessage(first)));
      sameMessage(first, again);
    }
    // A canonical message serializes back to the identical bytes.
    expect(serializeMessage(ok(parseMessage(INVITE))).equals(INVITE)).toBe(true);
  });

  it('expands compact header forms', () => {
    const m = req(
      sip(
        [
          'INVITE sip:b@example.com SIP/2.0',
          'v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1',
          'f: <sip:a@example.com>;tag=1',
          't: <sip:b@example.com>',
          'i: compact@example.com',
          'CSeq: 1 INVITE',
          'm: <sip:a@192.0.2.1>',
          'c: text/plain',
          'k: timer',
          's: hi',
          'l: 2',
        ],
        'hi',
      ),
    );
    expect(m.headers.lines().map(([n]) => n)).toEqual([
      'Via',
      'From',
      'To',
      'Call-ID',
      'CSeq',
      'Contact',
      'Content-Type',
      'Supported',
      'Subject',
      'Content-Length',
    ]);
    expect(m.body.toString()).toBe('hi');
  });

  it('gives the same getAll for multi-value Via/Contact/Route on one line or several', () => {
    const oneLine = req(
      invite([
        'Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2, SIP/2.0/UDP p3.example.com;branch=z9hG4bK3',
        'Contact: <sip:a@h1>;q=0.5, "x, y" <sip:a@h2>',
        'Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>',
      ]),
    );
    const several = req(
      invite([
        'Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2',
        'Via: SIP/2.0/UDP p3.example.com;branch=z9hG4bK3',
        'Contact: <sip:a@h1>;q=0.5',
        'Contact: "x, y" <sip:a@h2>',
        'Route: <sip:p1.example.com;lr>',
        'Route: <sip:p2.example.com;lr>',
      ]),
    );
    for (const h of ['Via', 'Contact', 'Route']) expect(oneLine.headers.getAll(h)).toEqual(several.headers.getAll(h));
    expect(oneLine.headers.getAll('Via')).toHaveLength(3);
    expect(oneLine.headers.getAll('Contact')[1]).toBe('"x, y" <sip:a@h2>');
  });

  it('matches header names case-insensitively', () => {
    const m = req(
      sip([
        'INVITE sip:b@example.com SIP/2.0',
        'vIA: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1',
        'FROM: <sip:a@example.com>;tag=1',
        'to: <sip:b@example.com>',
        'cALL-iD: x@y',
        'cseq: 1 INVITE',
        'X-Custom-HEADER: kept',
      ]),
    );
    expect(m.headers.get('Call-ID')).toBe('x@y');
    expect(m.headers.get('x-custom-header')).toBe('kept');
    expect(m.headers.lines()[5]![0]).toBe('X-Custom-HEADER');
  });

  it('joins folded lines with a single space', () => {
    const m = req(invite(['Subject: I know you are there,', '      pick up the phone', '\t and talk to me!']));
    expect(m.headers.get('Subject')).toBe('I know you are there, pick up the phone and talk to me!');
  });

  it('parses IPv6 in the Request-URI, Via and Contact', () => {
    const m = req(
      sip([
        'REGISTER sip:[2001:db8::10] SIP/2.0',
        'Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111',
        'From: <sip:user@[2001:db8::10]>;tag=1',
        'To: <sip:user@[2001:db8::10]>',
        'Call-ID: SSG9559905523997077@hlecalva',
        'CSeq: 1 REGISTER',
        'Contact: "Caller" <sip:caller@[2001:db8::1]:5060>',
      ]),
    );
    expect(m.uri).toBe('sip:[2001:db8::10]');
    expect(parseVia(m.headers.get('Via')!).host).toBe('[2001:db8::9:1]');
  });

  it('keeps an escaped display name as written in the header', () => {
    const raw = '"Bob \\"B\\" Smith" <sip:bob@x>;tag=9';
    const m = req(sip(['OPTIONS sip:x SIP/2.0', BASE[0]!, `From: ${raw}`, BASE[2]!, BASE[3]!, 'CSeq: 2 OPTIONS']));
    expect(m.headers.get('From')).toBe(raw);
  });

  it('preserves a binary body byte for byte, through serialize too', () => {
    const body = Buffer.alloc(512);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + 3) & 0xff;
    body.write('\r\n\r\n', 100, 'latin1');
    const data = invite(['Content-Type: application/octet-stream', `Content-Length: ${body.length}`], { body });
    const m = req(data);
    expect(m.body.equals(body)).toBe(true);
    data.fill(0, data.length - body.length); // the body must be a copy, not a view into the datagram
    expect(m.body.equals(body)).toBe(true);
    expect(req(serializeMessage(m)).body.equals(body)).toBe(true);
  });
});

describe('serializeMessage', () => {
  it('writes headers in order and replaces a stale Content-Length in place', () => {
    const h = new SipHeaders([
      ['Via', 'SIP/2.0/UDP h;branch=z9hG4bK1'],
      ['Content-Length', '999'],
      ['X-A', '1'],
      ['l', '5'],
    ]);
    const out = serializeMessage(createRequest('MESSAGE', 'sip:a@b', h, Buffer.from('hello!')));
    expect(out.toString()).toBe(
      'MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 6\r\nX-A: 1\r\n\r\nhello!',
    );
  });

  it('adds Content-Length: 0 when missing and flattens injected line breaks', () => {
    const h = new SipHeaders([['X-Evil', 'a\r\nVia: injected']]);
    expect(serializeMessage(createResponse(180, 'Ringing', h)).toString()).toBe(
      'SIP/2.0 180 Ringing\r\nX-Evil: a Via: injected\r\nContent-Length: 0\r\n\r\n',
    );
  });
});

describe('torture: valid but unusual', () => {
  it('1 tortuous whitespace, case and compact forms (wsinv)', () => {
    const m = req(
      sip([
        'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
        'TO :',
        ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
        '  ;',
        '  tag = 98asjd8',
        'MaX-fOrWaRdS: 0068',
        'Call-ID: wsinv.ndaksdj@192.0.2.1',
        'cseq: 0009',
        '  INVITE',
        'Via  : SIP  /   2.0',
        ' /UDP',
        '    192.0.2.2;branch=390skdjuw',
        's :',
        'NewFangledHeader:   newfangled value',
        ' continued newfangled value',
        'UnknownHeaderWithUnusualValue: ;;,,;;,;',
        'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
        '  branch  =   z9hG4bK9ikj8  ,',
        ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
        ' z9hG4bK30239',
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
        '      newvalue ;',
        '  secondparam ; q = 0.33',
      ]),
    );
    expect(m.headers.getAll('Via')).toHaveLength(3);
    expect(parseVia(m.headers.getAll('Via')[0]!).params.branch).toBe('390skdjuw');
    expect(m.headers.get('Subject')).toBe('');
    expect(m.headers.get('NewFangledHeader')).toBe('newfangled value continued newfangled value');
    expect(m.headers.get('max-forwards')).toBe('0068');
  });

  it('2 unusual method token with matching CSeq (intmeth)', () => {
    const method = "!interesting-Method0123456789_*+`.%indeed'~";
    const m = req(
      invite([], {
        start: `${method} sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com SIP/2.0`,
        cseq: `139122385 ${method}`,
      }),
    );
    expect(m.method).toBe(method);
    expect(m.uri).toBe("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com");
  });

  it('3 escaped characters in the Request-URI kept as written (esc01)', () => {
    expect(req(invite([], { start: 'INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0' })).uri).toBe(
      'sip:sips%3Auser%40example.com@example.net',
    );
  });

  it('4 escaped NUL in the URI user part (escnull)', () => {
    expect(
      req(invite([], { start: 'REGISTER sip:null-%00-null@example.com SIP/2.0', cseq: '1 REGISTER' })).uri,
    ).toContain('%00');
  });

  it('5 no LWS between display name and < (lwsdisp)', () => {
    const m = req(
      sip([
        'OPTIONS sip:user@example.com SIP/2.0',
        BASE[0]!,
        'From: caller<sip:caller@example.com>;tag=323',
        BASE[2]!,
        BASE[3]!,
        'CSeq: 1 OPTIONS',
      ]),
    );
    expect(m.headers.get('From')).toBe('caller<sip:caller@example.com>;tag=323');
  });

  it('6 leading CRLFs before the start line are skipped', () => {
    expect(req(Buffer.concat([Buffer.from('\r\n\r\n\r\n'), BYE])).method).toBe('BYE');
  });

  it('7 very long header values and many Via lines (longreq)', () => {
    const vias = Array.from(
      { length: 40 },
      (_, i) => `Via: SIP/2.0/TCP sip${i}.example.com;branch=z9hG4bK${'x'.repeat(50)}${i}`,
    );
    const m = req(invite([...vias, `X-Long: ${'a'.repeat(4000)}`]));
    expect(m.headers.getAll('Via')).toHaveLength(41);
    expect(m.headers.get('X-Long')).toHaveLength(4000);
  });

  it('8 empty reason phrase (noreason)', () => {
    const lines = RESPONSE.toString('latin1').replace('SIP/2.0 200 OK', 'SIP/2.0 100 ');
    expect(res(Buffer.from(lines, 'latin1')).reason).toBe('');
  });

  it('9 reason phrase with spaces and UTF-8 (unreason)', () => {
    const reason = '= 2**3 * 5**2 но сто девяносто девять - простое';
    const text = RESPONSE.toString('utf8').replace('200 OK', `254 ${reason}`);
    const m = res(Buffer.from(text, 'utf8'));
    expect(m.status).toBe(254);
    expect(m.reason).toBe(reason);
  });

  it('10 no Content-Length on UDP: the rest of the datagram is the body', () => {
    expect(req(invite(['Content-Type: text/plain'], { body: 'rest of it' })).body.toString()).toBe('rest of it');
  });

  it('11 bytes beyond Content-Length are discarded (dblreq)', () => {
    const m = req(Buffer.concat([invite(['Content-Length: 4'], { body: 'abcd' }), BYE]));
    expect(m.method).toBe('INVITE');
    expect(m.body.toString()).toBe('abcd');
  });

  it('12 bare LF line endings are tolerated', () => {
    const split = INVITE.indexOf('\r\n\r\n') + 4;
    const head = INVITE.toString('latin1', 0, split).split('\r\n').join('\n');
    const m = req(Buffer.concat([Buffer.from(head, 'latin1'), INVITE.subarray(split)]));
    expect(m.headers.get('CSeq')).toBe('314159 INVITE');
    expect(m.body.toString()).toBe(SDP);
  });

  it('13 Max-Forwards is not required', () => {
    expect(req(invite([])).headers.has('Max-Forwards')).toBe(false);
  });

  it('14 tel: and unknown-scheme Request-URIs parse (416 is the UA decision)', () => {
    expect(req(invite([], { start: 'INVITE tel:+1-201-555-0123 SIP/2.0' })).uri).toBe('tel:+1-201-555-0123');
    expect(req(invite([], { start: 'INVITE urn:service:sos SIP/2.0' })).uri).toBe('urn:service:sos');
  });

  it('15 empty header value and header with colon in its value', () => {
    const m = req(invite(['Subject:', 'Date: Sat, 13 Nov 2010 23:29:00 GMT']));
    expect(m.headers.get('Subject')).toBe('');
    expect(m.headers.get('Date')).toBe('Sat, 13 Nov 2010 23:29:00 GMT');
  });

  it('16 CSeq at the 32-bit limit with leading zeros', () => {
    expect(req(invite([], { cseq: '004294967295 INVITE' })).headers.get('CSeq')).toBe('004294967295 INVITE');
  });

  it('17 lower-case SIP version and header whitespace before the colon', () => {
    const m = req(sip(['BYE sip:a@b sip/2.0', ...BASE.map((l) => l.replace(': ', '\t :  ')), 'CSeq   :   9 BYE']));
    expect(m.headers.get('CSeq')).toBe('9 BYE');
    expect(m.version).toBe('SIP/2.0');
  });

  it('18 response to an unknown method and a 6xx', () => {
    const m = res(sip(['SIP/2.0 699 Custom', ...BASE, 'CSeq: 1 FOO']));
    expect(m.status).toBe(699);
  });

  it('19 multipart body with NUL bytes and an explicit Content-Length (mpart01)', () => {
    const body = Buffer.concat([
      Buffer.from('--b\r\nContent-Type: application/octet-stream\r\n\r\n'),
      Buffer.from([0, 0xff, 0x80, 0x0d, 0x0a, 0]),
      Buffer.from('\r\n--b--\r\n'),
    ]);
    const m = req(invite(['Content-Type: multipart/mixed;boundary=b', `Content-Length: ${body.length}`], { body }));
    expect(m.body.equals(body)).toBe(true);
  });
});

describe('torture: malformed', () => {
  const full = (extra: string[] = [], opts?: Parameters<typeof invite>[1]) => invite(extra, opts);

  it('1 Content-Length larger than the body (clerr) still yields a partial request', () => {
    const r = bad(full(['Content-Length: 9999'], { body: 'short' }));
    expect(r.error).toBe('Content-Length larger than body');
    expect(r.partial?.method).toBe('INVITE');
    expect(r.partial?.headers.get('Call-ID')).toBe('base-call@example.com');
  });

  it('2 negative Content-Length (ncl)', () => {
    expect(bad(full(['Content-Length: -999'])).error).toBe('bad Content-Length');
  });

  it('3 overlarge CSeq (scalar02)', () => {
    expect(bad(full([], { cseq: '36893488147419103232 INVITE' })).error).toBe('bad CSeq');
  });

  it('4 overlarge Max-Forwards', () => {
    expect(bad(full(['Max-Forwards: 300'])).error).toBe('bad Max-Forwards');
  });

  it('5 unterminated quoted display name (quotbal)', () => {
    const r = bad(
      sip([
        'INVITE sip:b@example.com SIP/2.0',
        BASE[0]!,
        BASE[1]!,
        'To: "Mr. J. User <sip:j.user@example.com>',
        BASE[3]!,
        'CSeq: 1 INVITE',
      ]),
    );
    expect(r.error).toBe('bad To');
    expect(r.partial?.headers.get('To')).toBe('"Mr. J. User <sip:j.user@example.com>');
  });

  it('6 <> around the Request-URI (ltgtruri)', () => {
    const r = bad(full([], { start: 'INVITE <sip:user@example.com> SIP/2.0' }));
    expect(r.error).toBe('bad Request-URI');
    expect(r.partial?.uri).toBe('<sip:user@example.com>');
  });

  it('7 LWS inside the Request-URI (lwsruri)', () => {
    expect(bad(full([], { start: 'INVITE sip:user@example.com; lr SIP/2.0' })).error).toBe('bad request line');
  });

  it('8 several SP between request-line elements (lwsstart)', () => {
    expect(bad(full([], { start: 'INVITE  sip:user@example.com  SIP/2.0' })).error).toBe('bad request line');
  });

  it('9 trailing SP after the version (trws)', () => {
    expect(bad(full([], { start: 'OPTIONS sip:remote-target@example.com SIP/2.0  ', cseq: '1 OPTIONS' })).error).toBe(
      'bad request line',
    );
  });

  it('10 escaped headers in the Request-URI (escruri)', () => {
    expect(bad(full([], { start: 'INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0' })).error).toBe(
      'headers not allowed in Request-URI',
    );
  });

  it('11 non-token characters in an unquoted display name (baddn)', () => {
    const r = bad(
      sip([
        'OPTIONS sip:t@example.com SIP/2.0',
        BASE[0]!,
        'From: Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43',
        BASE[2]!,
        BASE[3]!,
        'CSeq: 1 OPTIONS',
      ]),
    );
    expect(r.error).toBe('bad From');
  });

  it('12 unknown protocol version (badvers) keeps a partial for a 505', () => {
    const r = bad(full([], { start: 'OPTIONS sip:t.watson@example.org SIP/7.0', cseq: '1 OPTIONS' }));
    expect(r.error).toBe('unsupported SIP version');
    expect(r.partial?.method).toBe('OPTIONS');
    expect(r.partial?.uri).toBe('sip:t.watson@example.org');
  });

  it('13 CSeq method does not match the request method (mismatch01)', () => {
    expect(bad(full([], { start: 'OPTIONS sip:user@example.com SIP/2.0', cseq: '8 INVITE' })).error).toBe(
      'CSeq method does not match request',
    );
  });

  it('14 overlarge response code (bigcode)', () => {
    expect(bad(sip(['SIP/2.0 4294967301 better not break the receiver', ...BASE, 'CSeq: 1 INVITE'])).error).toBe(
      'bad status line',
    );
    expect(bad(sip(['SIP/2.0 099 Too Small', ...BASE, 'CSeq: 1 INVITE'])).error).toBe('bad status code');
  });

  it('15 missing Call-ID (insuf) gives no partial', () => {
    const r = bad(sip(['INVITE sip:b@example.com SIP/2.0', BASE[0]!, BASE[1]!, BASE[2]!, 'CSeq: 1 INVITE']));
    expect(r.error).toBe('missing Call-ID');
    expect(r.partial).toBeUndefined();
  });

  it('16 duplicated single-value headers (multi01)', () => {
    expect(bad(full(['Call-ID: other@example.com'])).error).toBe('multiple Call-ID headers');
    expect(bad(full(['Content-Length: 0', 'l: 0'])).error).toBe('multiple Content-Length headers');
  });

  it('17 truncated datagram without the blank line', () => {
    const trunc = INVITE.subarray(0, INVITE.indexOf('Content-Type'));
    const r = bad(trunc);
    expect(r.error).toBe('missing blank line after headers');
    expect(r.partial?.headers.get('CSeq')).toBe('314159 INVITE');
  });

  it('18 bare CR inside a header line', () => {
    expect(bad(full(['X-A: one\rX-B: two'])).error).toBe('bare CR in header');
  });

  it('19 header line without a colon, and a bad header name', () => {
    expect(bad(full(['This is not a header'])).error).toBe('malformed header line');
    expect(bad(full(['Bad Name: x'])).error).toBe('malformed header line');
  });

  it('20 continuation line before any header', () => {
    expect(bad(sip(['INVITE sip:b@example.com SIP/2.0', ' folded', ...BASE, 'CSeq: 1 INVITE'])).error).toBe(
      'bad header folding',
    );
  });

  it('21 message larger than maxSize', () => {
    const r = bad(INVITE, { maxSize: 100 });
    expect(r.error).toBe('message too large');
    expect(r.partial?.method).toBe('INVITE');
  });

  it('22 empty datagram and keep-alive only', () => {
    expect(bad(Buffer.alloc(0)).error).toBe('empty message');
    expect(bad(Buffer.from('\r\n\r\n')).error).toBe('empty message');
  });

  it('23 malformed top Via', () => {
    expect(
      bad(sip(['INVITE sip:b@example.com SIP/2.0', 'Via: SIP/2.0/UDP', ...BASE.slice(1), 'CSeq: 1 INVITE'])).error,
    ).toBe('bad Via');
  });

  it('24 garbage start line, and a response missing Via has no partial', () => {
    expect(bad(Buffer.from('hello world\r\n\r\n')).error).toBe('bad request line');
    const r = bad(sip(['SIP/2.0 200 OK', ...BASE.slice(1), 'CSeq: 1 INVITE']));
    expect(r.error).toBe('missing Via');
    expect(r.partial).toBeUndefined();
  });

  it('25 Call-ID with whitespace, and From as a bare URI with an escaped header (regbadct-like)', () => {
    expect(
      bad(sip(['INVITE sip:b@example.com SIP/2.0', ...BASE.slice(0, 3), 'Call-ID: a b', 'CSeq: 1 INVITE'])).error,
    ).toBe('bad Call-ID');
    const r = bad(
      sip([
        'INVITE sip:b@example.com SIP/2.0',
        BASE[0]!,
        'From: sip:user@example.com?Route=%3Csip:x%3E',
        ...BASE.slice(2),
        'CSeq: 1 INVITE',
      ]),
    );
    expect(r.error).toBe('bad From');
  });

  it('26 status line without a version match', () => {
    expect(bad(sip(['SIP/1.0 200 OK', ...BASE, 'CSeq: 1 INVITE'])).error).toBe('unsupported SIP version');
  });
});

describe('what a parsed message keeps', () => {
  it('a body in memory of its own: neither a view of the datagram nor a slice of the shared Buffer pool', () => {
    const body = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n';
    const data = Buffer.from(
      `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKown\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\n` +
        `Call-ID: own1\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    const r = parseMessage(data);
    if (!r.ok) throw new Error(r.error);
    expect(r.message.body.toString()).toBe(body);
    expect(r.message.body.buffer).not.toBe(data.buffer);
    expect(r.message.body.buffer.byteLength).toBe(body.length);
  });
});
