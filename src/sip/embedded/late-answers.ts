/**
 * Responses to INVITE attempts the UAC gave up on: a target that stayed silent for targetTimeoutMs has had its client
 * transaction ended (no more retransmissions toward a dead address), so anything it sends later arrives as a stray
 * response. Such a target was only slow, and the call is now going elsewhere, so the UAC cleans up after it:
 * - a late 1xx: the SBC is routing the call after all; CANCEL it (RFC 3261 §9.1), or the callee rings twice;
 * - a late 2xx: ACK and BYE it (nobody wants that dialog);
 * - a late final non-2xx: send the ACK its ended transaction owed (§17.1.1.3), so the SBC stops retransmitting.
 * An attempt is watched for as long as its transaction could have lived (Timer B, 64*T1).
 */
import type { SipResponse } from './message.ts';
import { topVia } from './transaction-helpers.ts';

interface Watch {
  handler: (res: SipResponse) => void;
  timer: NodeJS.Timeout;
}

export class LateAnswers {
  readonly #watched = new Map<string, Watch>();

  /** Hand responses to the INVITE sent with this Via branch to `handler`, for `ms`. */
  watch(branch: string, handler: (res: SipResponse) => void, ms: number): void {
    this.#forget(branch);
    const timer = setTimeout(() => this.#forget(branch), ms);
    timer.unref();
    this.#watched.set(branch, { handler, timer });
  }

  /** A response no transaction claimed: true when it belonged to a watched attempt (and was handed over). */
  take(res: SipResponse): boolean {
    if (!/\bINVITE\s*$/i.test(res.headers.get('CSeq') ?? '')) return false;
    let branch: unknown;
    try {
      branch = topVia(res).params.branch;
    } catch {
      return false;
    }
    const w = typeof branch === 'string' ? this.#watched.get(branch) : undefined;
    w?.handler(res);
    return w !== undefined;
  }

  clear(): void {
    for (const w of this.#watched.values()) clearTimeout(w.timer);
    this.#watched.clear();
  }

  #forget(branch: string): void {
    const w = this.#watched.get(branch);
    if (w) clearTimeout(w.timer);
    this.#watched.delete(branch);
  }
}
