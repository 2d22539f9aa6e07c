/**
 * The systems of the stepped benchmark, each started fresh, run at its rates and stopped: the reference Kamailio,
 * one gateway instance reached directly, and N instances behind Kamailio's dispatcher (bench/fleet.ts).
 */
import os from 'node:os';
import { startFleet } from './fleet.ts';
import { connectionsTo, processTree } from './proc.ts';
import { runRates, type StepOptions, type SystemResult } from './steps.ts';
import { type KallglotDouble, kamailioAvailable, startGateway, startKallglotDouble, startKamailio } from './targets.ts';

export const TRANSLATED_NUMBER = '+4930123456'; // german-numbers rule in config/routing.yaml
export const BYPASS_NUMBER = '112'; // emergency-bypass rule

export type GatewayKind = 'bypass' | 'translated';

export interface RunContext {
  uasPort: number;
  uasPid: number;
  step: StepOptions;
  latencyMs: number;
  http2: boolean;
  gatewayEnv: Record<string, string>;
  nodeOptions?: string;
}

const KIND_NAMES: Record<GatewayKind, string> = {
  bypass: 'bypass rule (B2BUA only)',
  translated: 'translated (create and end over HTTP)',
};

export async function kamailioRun(c: RunContext, rates: number[]): Promise<SystemResult | undefined> {
  if (!kamailioAvailable()) {
    console.log('Kamailio: not installed (no `kamailio` binary or modules): the reference is skipped.\n');
    return undefined;
  }
  const workers = os.cpus().length;
  const k = await startKamailio(c.uasPort, workers);
  try {
    return await runRates(
      {
        name: `Kamailio (reference, ${workers} workers)`,
        remotePort: k.port,
        service: TRANSLATED_NUMBER,
        watched: [
          { name: 'system', pids: () => processTree(k.pid) },
          { name: 'sipp-uas', pids: () => [c.uasPid] },
        ],
      },
      rates,
      c.step,
    );
  } finally {
    await k.stop();
  }
}

function gatewayEnv(c: RunContext, double: KallglotDouble): Record<string, string> {
  return double.caFile ? { KALLGLOT_HTTP2: 'true', NODE_EXTRA_CA_CERTS: double.caFile, ...c.gatewayEnv } : c.gatewayEnv;
}

/** One gateway instance, the UAC sending to it directly. */
export async function gatewayRun(c: RunContext, kind: GatewayKind, rates: number[]): Promise<SystemResult> {
  const double = await startKallglotDouble(c.latencyMs, c.http2);
  try {
    const gw = await startGateway({
      kallglotUrl: double.url,
      telnyxPort: c.uasPort,
      env: gatewayEnv(c, double),
      ...(c.nodeOptions !== undefined && { nodeOptions: c.nodeOptions }),
    });
    try {
      return await runRates(
        {
          name: `gateway, ${KIND_NAMES[kind]}`,
          remotePort: gw.sipPort,
          service: kind === 'bypass' ? BYPASS_NUMBER : TRANSLATED_NUMBER,
          metrics: gw.metrics,
          kallglotConnections: () => connectionsTo(Number(new URL(double.url).port)),
          watched: [
            { name: 'system', pids: () => [gw.pid] },
            { name: 'kallglot', pids: () => [double.pid] },
            { name: 'sipp-uas', pids: () => [c.uasPid] },
          ],
        },
        rates,
        c.step,
      );
    } finally {
      await gw.stop();
    }
  } finally {
    await double.stop();
  }
}

/** `instances` gateway instances behind Kamailio's dispatcher: the UAC sends to Kamailio, the instances to the UAS. */
export async function fleetRun(
  c: RunContext,
  kind: GatewayKind,
  instances: number,
  rates: number[],
): Promise<SystemResult> {
  const double = await startKallglotDouble(c.latencyMs, c.http2);
  try {
    const fleet = await startFleet(instances, {
      kallglotUrl: double.url,
      telnyxPort: c.uasPort,
      env: gatewayEnv(c, double),
      ...(c.nodeOptions !== undefined && { nodeOptions: c.nodeOptions }),
    });
    try {
      const result = await runRates(
        {
          name: `gateway ×${instances} behind Kamailio dispatcher, ${KIND_NAMES[kind]}`,
          remotePort: fleet.port,
          service: kind === 'bypass' ? BYPASS_NUMBER : TRANSLATED_NUMBER,
          metrics: fleet.metrics,
          kallglotConnections: () => connectionsTo(Number(new URL(double.url).port)),
          watched: [
            ...fleet.watched(),
            { name: 'kallglot', pids: () => [double.pid] },
            { name: 'sipp-uas', pids: () => [c.uasPid] },
          ],
        },
        rates,
        c.step,
      );
      console.error(`  calls finished per instance: ${await fleet.spread()}`);
      return result;
    } finally {
      await fleet.stop();
    }
  } finally {
    await double.stop();
  }
}
