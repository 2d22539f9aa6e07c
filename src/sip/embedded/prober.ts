/**
 * OPTIONS probing of the next hops (Kamailio's ds_ping): every interval, each target the probed URIs resolve to gets
 * an out-of-dialog OPTIONS. The outcome feeds TargetHealth: `failuresToDown` failures in a row take a target out of
 * rotation, one answer puts it back.
 *
 * What counts as an answer: any final response but 503. A 401/407/403/404/405 still proves that the SBC is there and
 * parses SIP (Telnyx may challenge or refuse an OPTIONS from an unregistered peer); a 503 is how an SBC says it is
 * draining or overloaded (Kamailio's dispatcher takes a gateway answering 503 out of rotation the same way); no
 * response within the timeout, or a transport error, is a failure.
 *
 * Rounds never overlap: the next one is scheduled when the previous has finished.
 */
import type { Logger } from '../../logger.ts';
import { newCallId, newTag } from './ids.ts';
import type { SipTransportName } from './message.ts';
import { type SipTarget, targetKey } from './rfc3263.ts';
import type { TargetHealth } from './target-health.ts';
import type { TargetRouter } from './targets.ts';
import { buildRequest, localHost, type UaContext } from './ua-core.ts';

/** One probed next hop: a Request-URI (e.g. `sip:sip.telnyx.com`) resolved (RFC 3263) for one transport. */
export interface ProbedUri {
  uri: string;
  transport: SipTransportName;
}

export interface ProbeOptions {
  /** Every trunk's domain with its transport: each target they resolve to is probed. */
  uris: readonly ProbedUri[];
  intervalMs: number;
  /** How long a probe waits for its final response. */
  timeoutMs: number;
}

export interface ProberDeps {
  ctx: UaContext;
  router: TargetRouter;
  health: TargetHealth;
  logger: Logger;
}

export class TargetProber {
  readonly #opts: ProbeOptions;
  readonly #deps: ProberDeps;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(opts: ProbeOptions, deps: ProberDeps) {
    this.#opts = opts;
    this.#deps = deps;
  }

  /** First round at once, so /healthz shows the targets' state from the start. */
  start(): void {
    void this.#loop();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** One round over every target of every probed URI. */
  async round(): Promise<void> {
    await Promise.all(this.#opts.uris.map((probed) => this.#probeUri(probed)));
  }

  async #loop(): Promise<void> {
    if (this.#stopped) return;
    await this.round();
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#loop(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  async #probeUri({ uri, transport }: ProbedUri): Promise<void> {
    let targets: SipTarget[];
    try {
      targets = await this.#deps.router.resolve(uri, transport);
    } catch (err) {
      this.#deps.logger.warn({ err, uri }, 'cannot resolve probed URI');
      return;
    }
    await Promise.all(targets.map((t) => this.#probe(uri, t)));
  }

  async #probe(uri: string, target: SipTarget): Promise<void> {
    const result = await this.#ping(uri, target);
    if (this.#stopped) return;
    const ok = /^\d+$/.test(result) && result !== '503';
    this.#deps.health.probed(target, ok, result);
    this.#deps.logger.debug({ target: targetKey(target), result }, 'OPTIONS probe');
  }

  /** The final status as text, or `timeout` / `transport_error`. */
  #ping(uri: string, target: SipTarget): Promise<string> {
    const ctx = this.#deps.ctx;
    const host = localHost(ctx, target.address);
    const req = buildRequest(ctx, {
      method: 'OPTIONS',
      uri,
      transport: target.transport,
      peer: target.address,
      from: `<sip:gw@${host}>;tag=${newTag()}`,
      to: `<${uri}>`,
      callId: newCallId(ctx.publicAddress),
      cseq: 1,
      headers: [['Accept', 'application/sdp']],
    });
    return new Promise((resolve) => {
      try {
        ctx.tx.sendRequest(
          req,
          target,
          {
            onResponse: (res) => {
              if (res.status >= 200) resolve(String(res.status));
            },
            onTimeout: () => resolve('timeout'),
            onTransportError: () => resolve('transport_error'),
          },
          { timeoutMs: this.#opts.timeoutMs },
        );
      } catch (err) {
        this.#deps.logger.warn({ err, target: targetKey(target) }, 'cannot send OPTIONS probe');
        resolve('transport_error');
      }
    });
  }
}
