/**
 * Several gateway instances on one machine behind Kamailio's dispatcher (`--instances N`): how one machine's cores
 * are used. The daemon is one event loop, so one instance's ceiling is one core. Each instance gets its own SIP and
 * HTTP ports, DATA_DIR (its own SQLite registry) and INSTANCE_ID; Kamailio runs deploy/kamailio/dispatcher.cfg as
 * shipped (only its defines set: Call-ID hash, record-routing, one worker per core, the tlsf allocator as the
 * reference Kamailio of the benchmark), so every request of a dialog reaches the instance that owns it. Why not
 * workers sharing one port: SO_REUSEPORT hashes a UDP datagram's addresses, so one PBX trunk (one source) lands on
 * one worker and Telnyx's responses on whichever worker its address hashes to, not the one that sent the request;
 * the cluster module shares one socket and hands each datagram to any worker. Neither knows dialogs.
 */
import os from 'node:os';
import { type Dispatcher, startDispatcher } from '../test/helpers/kamailio-dispatcher.ts';
import { freePort } from '../test/helpers/ports.ts';
import { processTree, type Watched } from './proc.ts';
import { type GatewayOptions, type GatewayTarget, startGateway } from './targets.ts';

/** ds_select_dst algorithm 0: the Call-ID's hash (the shipped default of dispatcher.cfg). */
const CALL_ID_HASH = 0;

export interface Fleet {
  gateways: GatewayTarget[];
  dispatcher: Dispatcher;
  /** Where the PBX (the SIPp UAC) sends: Kamailio. */
  port: number;
  /** Every instance's /metrics text, one after the other: the step's counters add them up. */
  metrics(): Promise<string>;
  /** `system`: every instance plus Kamailio's process tree; `dispatcher`: Kamailio alone, a part of it. */
  watched(): Watched[];
  /** Calls each instance finished (its kallglot_gateway_calls_total): how the hash spread them. */
  spread(): Promise<string>;
  stop(): Promise<void>;
}

export async function startFleet(instances: number, o: GatewayOptions): Promise<Fleet> {
  const gateways: GatewayTarget[] = [];
  const stopGateways = async (): Promise<void> => {
    await Promise.all(gateways.map((g) => g.stop()));
  };
  let dispatcher: Dispatcher;
  let port: number;
  try {
    for (let i = 1; i <= instances; i++) {
      gateways.push(await startGateway({ ...o, env: { ...o.env, INSTANCE_ID: `gw-${i}` } }));
    }
    port = await freePort('udp');
    dispatcher = await startDispatcher({
      host: '127.0.0.1',
      port,
      gateways: gateways.map((g, i) => ({ address: `127.0.0.1:${g.sipPort}`, name: `gw-${i + 1}` })),
      pingIntervalSec: 5,
      gatewayTimeoutMs: 2000,
      algorithm: CALL_ID_HASH,
      children: os.cpus().length,
      memoryMb: { shared: 256, private: 16 },
      tlsf: true,
      keepLog: false,
    });
  } catch (err) {
    await stopGateways();
    throw err;
  }
  const kamailio = (): number[] => processTree(dispatcher.pid);
  return {
    gateways,
    dispatcher,
    port,
    metrics: async () => (await Promise.all(gateways.map((g) => g.metrics()))).join('\n'),
    watched: () => [
      { name: 'system', pids: () => [...gateways.map((g) => g.pid), ...kamailio()] },
      { name: 'dispatcher', pids: kamailio, part: true },
    ],
    spread: async () => {
      const counts = await Promise.all(gateways.map(async (g) => finishedCalls(await g.metrics())));
      return counts.map((n, i) => `gw-${i + 1} ${n}`).join(', ');
    },
    stop: async () => {
      await dispatcher.stop();
      await stopGateways();
    },
  };
}

function finishedCalls(metrics: string): number {
  return [...metrics.matchAll(/^kallglot_gateway_calls_total\{[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}
