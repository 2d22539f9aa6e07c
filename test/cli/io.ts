/** An in-memory CliIo for running kallglot-gw commands in-process. */
import type { CliIo } from '../../src/cli/command.ts';

export interface CapturedIo extends CliIo {
  out: string;
  err: string;
}

export function captureIo(argv: string[], env: NodeJS.ProcessEnv = {}): CapturedIo {
  const io: CapturedIo = {
    argv,
    env,
    out: '',
    err: '',
    stdout: (text) => {
      io.out += text;
    },
    stderr: (text) => {
      io.err += text;
    },
  };
  return io;
}
