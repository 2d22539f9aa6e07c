/**
 * `kallglot-gw --check`: validate the environment, the config file (GATEWAY_CONFIG) and the routing file together,
 * as the daemon would at start-up, and print the effective configuration. Binds no port and takes no lock, so it is
 * safe next to a running gateway (e.g. before a restart or in CI). Secrets are shown only as "set" or "unset".
 */
import { checkConfig, type GatewayConfig } from '../config/load.ts';
import { allTrunks, type TelnyxTrunk } from '../config/trunks.ts';
import type { Setting, SettingValue } from '../config/validate.ts';
import { loadRules } from '../routing/load.ts';
import type { RuleSet } from '../routing/types.ts';
import type { CliCommand, CliIo } from './command.ts';

export const runCheckCommand: CliCommand = async (io) => {
  const checked = checkConfig({ env: io.env });
  const errors = [...checked.errors];
  const routingFile = checked.config?.routing.file ?? validValue(checked.values, 'routing.file');
  let rules: RuleSet | undefined;
  if (typeof routingFile === 'string') {
    try {
      // trunk_out is checked against the config's Telnyx trunks when the config is valid (else its errors stand).
      const telnyxTrunks = checked.config && allTrunks(checked.config.telnyx).map((t) => t.name);
      rules = loadRules(routingFile, telnyxTrunks ? { telnyxTrunks } : {});
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (errors.length > 0 || !checked.config) {
    io.stderr(`kallglot-gw --check: ${errors.length} problem${errors.length === 1 ? '' : 's'}\n`);
    for (const e of errors) io.stderr(`  - ${e}\n`);
    return 2;
  }
  io.stdout(`config file: ${checked.file ?? 'none (GATEWAY_CONFIG is not set)'}\n`);
  printEffective(io, checked.config, checked.values);
  io.stdout(`\n${describeTrunks(allTrunks(checked.config.telnyx))}`);
  if (rules) io.stdout(`\n${describeRuleSet(rules)}\n`);
  // Warnings do not fail the check: the daemon starts with them too (and logs each one).
  for (const w of rules?.warnings ?? []) io.stdout(`warning: ${w.message}\n`);
  io.stdout('\nconfiguration OK\n');
  return 0;
};

function validValue(values: SettingValue[], path: string): unknown {
  const v = values.find((x) => x.setting.path === path);
  return v?.valid ? v.value : undefined;
}

function printEffective(io: CliIo, config: GatewayConfig, values: SettingValue[]): void {
  io.stdout('effective configuration (env overrides the file, the file overrides defaults):\n');
  const rows = values.map((v) => {
    const effective = valueAt(config, v.setting.path);
    // Derived at load time from other settings (public address, instance id, sandbox): say so rather than "default".
    const derived = v.source === 'default' && JSON.stringify(effective) !== JSON.stringify(v.value);
    return [v.setting.env ?? '', v.setting.path, shown(v.setting, effective), derived ? 'derived' : v.source];
  });
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  for (const [env, path, value, source] of rows) {
    io.stdout(`  ${env?.padEnd(widths[0] ?? 0)}  ${path?.padEnd(widths[1] ?? 0)}  ${value}  [${source}]\n`);
  }
  io.stdout(
    `\nkallglot: ${config.kallglot.sandbox ? 'LOCAL SANDBOX (no real translation)' : config.kallglot.apiUrl}\n`,
  );
}

/** How a value is printed; a secret only as set/unset, whatever its type. */
export function shown(setting: Setting, value: unknown): string {
  // telnyx.trunks: entries may hold passwords, but their names are not secret and say more than "set".
  if (setting.path === 'telnyx.trunks' && Array.isArray(value))
    return value.length ? `${value.map((t: { name?: unknown }) => String(t.name)).join(',')} (below)` : '(none)';
  if (setting.sensitive) return isSet(value) ? 'set' : 'unset';
  if (Array.isArray(value)) return value.length ? value.join(',') : '(empty list)';
  if (value === '') return '(empty)';
  return String(value);
}

function isSet(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 : value !== '' && value !== undefined && value !== null;
}

function valueAt(config: GatewayConfig, path: string): unknown {
  let node: unknown = config;
  for (const key of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

function describeRuleSet(rules: RuleSet): string {
  const d = rules.default;
  const languages = d.sourceLanguage ? ` ${d.sourceLanguage} -> ${d.targetLanguage}` : '';
  const names = rules.rules.map((r) => r.name).join(', ');
  return (
    `routing file ${rules.file}: ${rules.rules.length} rule${rules.rules.length === 1 ? '' : 's'}` +
    `${names ? ` (${names})` : ''}, default ${d.mode}${languages}`
  );
}

/** One line per Telnyx trunk; the password only as set/unset, and the env var it came from. */
export function describeTrunks(trunks: readonly TelnyxTrunk[]): string {
  const lines = trunks.map((t) => {
    const auth = t.sipUsername
      ? `user ${t.sipUsername}, password ${t.sipPassword ? 'set' : 'unset'}${t.sipPasswordEnv ? ` (${t.sipPasswordEnv})` : ''}`
      : 'IP authentication';
    const f = t.numberFormat;
    const parts = [
      `${t.sipTransport} ${t.sipDomain}${t.outboundProxy ? ` via ${t.outboundProxy}` : ''}`,
      auth,
      t.techPrefix && `tech prefix ${t.techPrefix}`,
      f && `E.164 +${f.countryCode} (national prefix "${f.nationalPrefix}", international "${f.internationalPrefix}")`,
      `translated ${t.translatedUriTemplate}, direct ${t.directUriTemplate}`,
      `${t.maxCallsPerSecond || 'unlimited'} calls/s, ${t.maxConcurrent || 'unlimited'} at once`,
    ];
    return `  ${t.name}: ${parts.filter(Boolean).join('; ')}\n`;
  });
  return `Telnyx trunks (a routing rule picks one with trunk_out; "default" otherwise):\n${lines.join('')}`;
}
