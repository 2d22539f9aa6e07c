/**
 * An embedded engine on 127.0.0.1 with an OS-chosen UDP port and no logging, the starting point of the engine-level
 * tests (two engines calling each other, or one against a raw socket), and the SDP they offer.
 */
import pino from 'pino';
import { EmbeddedEngine, type EmbeddedEngineOptions } from '../../../src/sip/embedded/engine.ts';

export const TEST_SDP = Buffer.from(
  'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n',
);

/** Not started: the caller starts it (and stops it in its afterEach). */
export function loopbackEngine(overrides: Partial<EmbeddedEngineOptions> = {}): EmbeddedEngine {
  return new EmbeddedEngine({
    host: '127.0.0.1',
    port: 0,
    transports: ['udp'],
    publicAddress: '127.0.0.1',
    userAgent: 'test',
    logger: pino({ level: 'silent' }),
    ...overrides,
  });
}
