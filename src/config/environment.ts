/**
 * The process environment, for the one caller that must hand it on unread (main.ts gives it to the command line,
 * whose commands validate it through config/). Keeps config/ the only place that touches process.env.
 */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
