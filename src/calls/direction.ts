/**
 * Which way a call goes, told by where its INVITE came from. The PBX's addresses (PBX_ALLOWED_SOURCES) send outbound
 * calls, toward Telnyx; Telnyx's signalling addresses (TELNYX_ALLOWED_SOURCES) send inbound calls, toward the PBX
 * (PBX_URI_TEMPLATE), and only when a PBX target is configured. A source in both lists is the PBX's: that keeps a
 * gateway whose PBX allowlist is wide (the loopback default) behaving as it always did.
 */
import type net from 'node:net';
import { normaliseIp, toBlockList } from './admission.ts';

export type CallDirection = 'outbound' | 'inbound';

export class DirectionClassifier {
  readonly #pbx: net.BlockList;
  readonly #telnyx: net.BlockList | undefined;

  /** `telnyxSources` undefined: inbound calls are off (no PBX target). */
  constructor(pbxSources: string[], telnyxSources: string[] | undefined) {
    this.#pbx = toBlockList(pbxSources);
    this.#telnyx = telnyxSources ? toBlockList(telnyxSources) : undefined;
  }

  /** The direction of a call from `sourceIp`, or undefined when it may not call at all. */
  classify(sourceIp: string): CallDirection | undefined {
    const { ip, type } = normaliseIp(sourceIp);
    if (this.#pbx.check(ip, type)) return 'outbound';
    if (this.#telnyx?.check(ip, type)) return 'inbound';
    return undefined;
  }

  /** Every source that may call: the admission allowlist. */
  static allowedSources(pbxSources: string[], telnyxSources: string[] | undefined): string[] {
    return [...pbxSources, ...(telnyxSources ?? [])];
  }
}
