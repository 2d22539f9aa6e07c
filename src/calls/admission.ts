/**
 * Admission: the checks an INVITE passes before any work is done for it (no Kallglot request, no outbound leg).
 * Order: draining → source allowlist → concurrent calls → calls per second. Kept apart from CallSession so the
 * session only ever sees calls it is allowed to serve.
 */
import net from 'node:net';

export type AdmissionResult =
  | { admitted: true }
  | { admitted: false; status: number; reason: string; retryAfterSec?: number; why: 'draining' | 'source_not_allowed' | 'concurrency' | 'rate' };

export interface AdmissionOptions {
  allowedSources: string[];
  maxConcurrent: number;
  maxCallsPerSecond: number;
}

function toBlockList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of cidrs) {
    const [ip, bits] = entry.split('/');
    const type = net.isIPv6(ip!) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip!, type);
    else list.addSubnet(ip!, Number(bits), type);
  }
  return list;
}

function normaliseIp(ip: string): { ip: string; type: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return { ip: mapped[1]!, type: 'ipv4' };
  return { ip, type: net.isIPv6(ip) ? 'ipv6' : 'ipv4' };
}

export class Admission {
  private readonly allow: net.BlockList;
  private readonly opts: AdmissionOptions;
  private active = 0;
  /** Start times of calls admitted in the last second (sliding window). */
  private recent: number[] = [];
  private isDraining = false;

  constructor(opts: AdmissionOptions) {
    this.opts = opts;
    this.allow = toBlockList(opts.allowedSources);
  }

  get activeCalls(): number {
    return this.active;
  }

  get draining(): boolean {
    return this.isDraining;
  }

  startDraining(): void {
    this.isDraining = true;
  }

  sourceAllowed(ip: string): boolean {
    const { ip: addr, type } = normaliseIp(ip);
    return this.allow.check(addr, type);
  }

  /** Check an INVITE; on success the call counts as active until `release()`. */
  admit(sourceIp: string, now = Date.now()): AdmissionResult {
    if (this.isDraining) return { admitted: false, status: 503, reason: 'Service Unavailable (draining)', retryAfterSec: 30, why: 'draining' };
    if (!this.sourceAllowed(sourceIp)) return { admitted: false, status: 403, reason: 'Forbidden', why: 'source_not_allowed' };
    if (this.opts.maxConcurrent > 0 && this.active >= this.opts.maxConcurrent) {
      return { admitted: false, status: 503, reason: 'Service Unavailable (call limit)', retryAfterSec: 5, why: 'concurrency' };
    }
    if (this.opts.maxCallsPerSecond > 0) {
      this.recent = this.recent.filter((t) => now - t < 1000);
      if (this.recent.length >= this.opts.maxCallsPerSecond) {
        return { admitted: false, status: 503, reason: 'Service Unavailable (rate limit)', retryAfterSec: 1, why: 'rate' };
      }
      this.recent.push(now);
    }
    this.active++;
    return { admitted: true };
  }

  release(): void {
    if (this.active > 0) this.active--;
  }
}
