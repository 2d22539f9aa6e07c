/**
 * Is the Kallglot API reachable? A cheap GET on the API base URL, repeated on a timer, the answer cached between
 * runs, so /readyz and /metrics read a value and never cause a request (a load balancer polling /readyz every second
 * must not turn into load on Kallglot).
 *
 * Any HTTP answer below 500 counts as reachable: the base URL has no resource of its own, so 404 or 401 are what a
 * healthy API says to it. 5xx counts as down: that is what a proxy in front of a dead API answers. A network error
 * or a timeout is down too. The API key is not sent: the probe needs none, and a secret sent nowhere cannot leak.
 * Session URLs are deliberately not probed: they would show up in the API's (and the sandbox's) session counters.
 */
import { Agent, request } from 'undici';
import type { Logger } from '../logger.ts';

export interface ProbeResult {
  reachable: boolean;
  /** The HTTP status when there was an answer. */
  status?: number;
  /** Why it is down: `timeout`, a socket error code (ECONNREFUSED…) or `http_5xx`. */
  error?: string;
  checkedAt: Date;
  latencyMs: number;
}

export interface KallglotProbeOptions {
  /** The API base, e.g. `https://api.kallglot.com/v1`. */
  baseUrl: string;
  intervalMs: number;
  timeoutMs: number;
  logger?: Logger;
  /** Called after every probe (metrics). */
  onResult?: (result: ProbeResult) => void;
}

export class KallglotProbe {
  readonly #opts: KallglotProbeOptions;
  readonly #agent = new Agent({ connections: 1, keepAliveTimeout: 60_000 });
  #last: ProbeResult | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<ProbeResult> | undefined;

  constructor(opts: KallglotProbeOptions) {
    this.#opts = opts;
  }

  /** The last result; undefined until the first probe has finished. */
  current(): ProbeResult | undefined {
    return this.#last;
  }

  /** Probe now and then every intervalMs until stop(). The first probe is not awaited: start-up never waits on it. */
  start(): void {
    if (this.#timer) return;
    void this.probe();
    // Not keeping the process alive: the probe serves the daemon, it is no reason to run.
    this.#timer = setInterval(() => void this.probe(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#agent.destroy();
  }

  /** One probe; concurrent callers share the request in flight. */
  probe(): Promise<ProbeResult> {
    this.#inFlight ??= this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #run(): Promise<ProbeResult> {
    const started = performance.now();
    const ms = (): number => Math.round(performance.now() - started);
    let result: ProbeResult;
    try {
      const res = await request(this.#opts.baseUrl, {
        method: 'GET',
        headers: { accept: 'application/json', 'user-agent': 'kallglot-sip-gateway (probe)' },
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
        dispatcher: this.#agent,
      });
      await res.body.dump();
      const down = res.statusCode >= 500;
      result = {
        reachable: !down,
        status: res.statusCode,
        ...(down && { error: `http_${res.statusCode}` }),
        checkedAt: new Date(),
        latencyMs: ms(),
      };
    } catch (err) {
      result = { reachable: false, error: errorCode(err), checkedAt: new Date(), latencyMs: ms() };
    }
    this.#report(result);
    return result;
  }

  /** Log changes only: a down API would otherwise write a line every interval. */
  #report(result: ProbeResult): void {
    const before = this.#last;
    this.#last = result;
    if (before === undefined || before.reachable !== result.reachable) {
      const fields = { reachable: result.reachable, status: result.status, error: result.error };
      if (result.reachable) this.#opts.logger?.info(fields, 'Kallglot API reachable');
      else this.#opts.logger?.warn(fields, 'Kallglot API unreachable: new calls will go through untranslated');
    }
    this.#opts.onResult?.(result);
  }
}

function errorCode(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  const code = (err as { code?: unknown }).code ?? (err as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : 'network_error';
}
