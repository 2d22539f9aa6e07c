/**
 * The shape every kallglot-gw subcommand shares: it gets its arguments and
 * environment handed in (so tests can run it in-process) and returns the exit
 * code instead of calling process.exit itself.
 */
export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout(text: string): void;
  stderr(text: string): void;
}

export type CliCommand = (io: CliIo) => Promise<number>;
