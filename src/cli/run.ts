/**
 * The kallglot-gw command line: picks the command from the arguments and returns its exit code. main.ts calls it
 * before anything else whenever there are arguments, so `--help` and `--version` bind no port, take no lock and load
 * no configuration; with no arguments main.ts runs the daemon.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { runCallsCommand, runDrainCommand, runReloadCommand } from './admin-commands.ts';
import { runCheckCommand } from './check.ts';
import type { CliCommand, CliIo } from './command.ts';
import { runRouteCommand } from './route.ts';
import { runTargetsCommand } from './targets.ts';

const COMMANDS: Readonly<Record<string, CliCommand>> = {
  route: runRouteCommand,
  calls: runCallsCommand,
  reload: runReloadCommand,
  drain: runDrainCommand,
  targets: runTargetsCommand,
};

export const USAGE = `Usage:
  kallglot-gw                 run the gateway (what npm start does)
  kallglot-gw --check         validate the environment, GATEWAY_CONFIG and the routing file together and print the
                              effective configuration (secrets only as set/unset); binds nothing
  kallglot-gw route --called NUMBER [--calling NUMBER] [--source IP] [--header Name=Value]... [--trunk NAME]
                              which routing rule a call would match and the Kallglot session it would get
  kallglot-gw calls           list the running gateway's calls (admin API, ADMIN_TOKEN)
  kallglot-gw reload          make the running gateway reload its routing rules
  kallglot-gw drain           make the running gateway drain: refuse new calls, let active ones finish, exit
  kallglot-gw targets         the Telnyx SBCs the running gateway resolved (SRV/NAPTR) and which ones are down
  kallglot-gw --help | -h     this text (kallglot-gw COMMAND --help: the command's options)
  kallglot-gw --version | -V  the version

Configuration comes from the environment and the optional GATEWAY_CONFIG file (README, "Configuration").
Exit codes: 0 ok; 1 runtime or start-up failure (or the running gateway refused); 2 configuration or usage error;
3 DATA_DIR held by another instance.
`;

export function version(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

export async function runCli(io: CliIo): Promise<number> {
  const [first = '', ...rest] = io.argv;
  const command = COMMANDS[first];
  if (command) return command({ ...io, argv: rest });
  if (first === 'help') return help(io);
  if (first && !first.startsWith('-')) {
    io.stderr(`kallglot-gw: unknown command "${first}"\n\n${USAGE}`);
    return 2;
  }
  let flags: { help?: boolean; version?: boolean; check?: boolean };
  try {
    flags = parseArgs({
      args: io.argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
        check: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr(`kallglot-gw: ${(err as Error).message.split('\n')[0]}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) return help(io);
  if (flags.version) {
    io.stdout(`kallglot-gw ${version()}\n`);
    return 0;
  }
  if (flags.check) return runCheckCommand({ ...io, argv: [] });
  return help(io);
}

function help(io: CliIo): number {
  io.stdout(`kallglot-gw ${version()}: SIP gateway between a PBX and Telnyx with Kallglot translation\n\n${USAGE}`);
  return 0;
}
