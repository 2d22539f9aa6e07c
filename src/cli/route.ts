/**
 * `kallglot-gw route`: which routing rule a call with these facts would match, and the Kallglot session the gateway
 * would request for it. Uses the daemon's own loader, matcher and request builder, so the answer is the daemon's.
 * Reads only the routing file: no port, no lock, no Kallglot request.
 */
import { parseArgs } from 'node:util';
import { checkConfig, type GatewayConfig } from '../config/load.ts';
import { loadRules } from '../routing/load.ts';
import { matchRoute } from '../routing/match.ts';
import { identifyTrunk } from '../routing/trunk.ts';
import type { RouteDecision, RuleSet } from '../routing/types.ts';
import { sessionRequest } from '../sessions/request.ts';
import type { CliCommand, CliIo } from './command.ts';

export const ROUTE_USAGE = `Usage: kallglot-gw route --called NUMBER [--calling NUMBER] [--source IP]
                        [--header Name=Value]... [--trunk NAME] [--rules FILE]

Shows which routing rule a call would match and the Kallglot session that would be requested for it.
  --called NUMBER        called number (user part of the Request-URI), e.g. +4930123456
  --calling NUMBER       calling number
  --source IP            the PBX's source address, e.g. 10.0.0.1
  --header Name=Value    a SIP header of the INVITE (repeatable), e.g. X-Kallglot-Languages=de-en
  --trunk NAME           the trunk the call arrived on (default: the routing file's trunks, by --source/--header)
  --rules FILE           routing file to use (default: ROUTING_FILE, or routing.file in GATEWAY_CONFIG)
Exit codes: 0 shown, 2 bad arguments or a bad routing file.
`;

/** The Call-ID placeholder: the real one comes from the INVITE and keys the session's idempotency. */
const CALL_ID = '<Call-ID>';
/** The other party's placeholder: the daemon fills DIRECT_URI_TEMPLATE with the call's values (calls/policy.ts). */
const DIRECT_URI = '<direct route URI>';

type RequestStyle = GatewayConfig['kallglot']['requestStyle'];

export const runRouteCommand: CliCommand = async (io) => {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(io.argv);
  } catch (err) {
    io.stderr(`kallglot-gw route: ${(err as Error).message}\n\n${ROUTE_USAGE}`);
    return 2;
  }
  if (args.help) {
    io.stdout(ROUTE_USAGE);
    return 0;
  }
  const headers = parseHeaders(args.header ?? []);
  if (typeof headers === 'string' || args.called === undefined) {
    const why = typeof headers === 'string' ? headers : '--called is required';
    io.stderr(`kallglot-gw route: ${why}\n\n${ROUTE_USAGE}`);
    return 2;
  }
  const file = args.rules ?? routingFileOf(io);
  if (typeof file !== 'string') {
    io.stderr(`kallglot-gw route: ${file.error}\n`);
    return 2;
  }
  let rules: RuleSet;
  try {
    rules = loadRules(file);
  } catch (err) {
    io.stderr(`kallglot-gw route: ${(err as Error).message}\n`);
    return 2;
  }
  const call = {
    called: args.called,
    calling: args.calling ?? '',
    sourceIp: args.source ?? '',
    direction: 'outbound' as const, // the command asks about SIP calls from the PBX
    ...trunkOf(rules, args.trunk, args.source, headers),
    headers: (name: string) => headers.get(name.toLowerCase()),
  };
  const decision = matchRoute(rules, call);
  io.stdout(`routing file: ${file}\n`);
  io.stdout(`call: ${describeCall(call, headers)}\n`);
  io.stdout(`${describeDecision(rules, decision, call, requestStyleOf(io))}\n`);
  return 0;
};

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      called: { type: 'string' },
      calling: { type: 'string' },
      source: { type: 'string' },
      header: { type: 'string', multiple: true },
      trunk: { type: 'string' },
      rules: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

/** `Name=Value` or `Name: Value`, keyed by the lower-cased name (SIP header names are case-insensitive). */
function parseHeaders(list: string[]): Map<string, string> | string {
  const out = new Map<string, string>();
  for (const item of list) {
    const m = /^\s*([^=:\s]+)\s*[=:]\s*(.*)$/.exec(item);
    if (!m?.[1]) return `--header "${item}" is not Name=Value (e.g. X-Kallglot-Languages=de-en)`;
    out.set(m[1].toLowerCase(), m[2] ?? '');
  }
  return out;
}

/** The routing file the daemon would load; a config problem unrelated to it does not matter here. */
function routingFileOf(io: CliIo): string | { error: string } {
  const checked = checkConfig({ env: io.env });
  if (checked.config) return checked.config.routing.file;
  const setting = checked.values.find((v) => v.setting.path === 'routing.file');
  if (setting?.valid && typeof setting.value === 'string') return setting.value;
  return { error: `cannot tell which routing file to use: ${checked.errors.join('; ')} (or pass --rules FILE)` };
}

/** --trunk as given, else the trunk the daemon would name from the source and headers (the command has no URIs). */
function trunkOf(
  rules: RuleSet,
  given: string | undefined,
  source: string | undefined,
  headers: Map<string, string>,
): { trunk?: string } {
  const lookup = (name: string) => headers.get(name.toLowerCase());
  const trunk = given ?? identifyTrunk(rules, { sourceIp: source ?? '', requestUri: '', from: '', headers: lookup });
  return trunk === undefined ? {} : { trunk };
}

/** KALLGLOT_REQUEST_STYLE as the daemon would read it; the default when it cannot be read. */
function requestStyleOf(io: CliIo): RequestStyle {
  const setting = checkConfig({ env: io.env }).values.find((v) => v.setting.path === 'kallglot.requestStyle');
  return setting?.valid && setting.value === 'provider' ? 'provider' : 'routing';
}

function describeCall(
  call: { called: string; calling: string; sourceIp: string; trunk?: string },
  headers: Map<string, string>,
): string {
  const parts = [
    `called ${call.called || '(none)'}`,
    `calling ${call.calling || '(none)'}`,
    `source ${call.sourceIp || '(none)'}`,
  ];
  if (call.trunk !== undefined) parts.push(`trunk ${call.trunk}`);
  for (const [name, value] of headers) parts.push(`header ${name}: ${value}`);
  return parts.join(', ');
}

function describeDecision(
  rules: RuleSet,
  decision: RouteDecision,
  call: { called: string; calling: string; sourceIp: string },
  style: RequestStyle,
): string {
  const rule = rules.rules.find((r) => r.name === decision.ruleName);
  const where = rule ? ` (rules[${rule.index}]${rule.line !== undefined ? `, line ${rule.line}` : ''})` : '';
  const lines = [
    rule ? `matching rule: ${decision.ruleName}${where}` : 'matching rule: none; the default route applies',
    `Telnyx trunk (trunk_out): ${decision.trunkOut ?? 'default'}`,
  ];
  if (decision.mode === 'bypass') {
    lines.push('mode: bypass, no session (the call goes straight to Telnyx on the direct route)');
    return lines.join('\n');
  }
  lines.push(`mode: ${decision.mode}, ${decision.sourceLanguage ?? '?'} -> ${decision.targetLanguage ?? '?'}`);
  const request = sessionRequest(
    decision,
    {
      channel: 'sip',
      callId: CALL_ID,
      from: call.calling,
      to: decision.calledNumber ?? call.called,
      pbxSource: call.sourceIp,
      otherPartyUri: DIRECT_URI,
    },
    style,
  );
  lines.push(
    `Kallglot session that would be requested (${CALL_ID} is the INVITE's own, ${DIRECT_URI} its direct route):`,
  );
  lines.push(JSON.stringify(request, null, 2));
  return lines.join('\n');
}
