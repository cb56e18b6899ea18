// The service and `jetpost health` take their settings from the environment alone. An argument
// was ignored without a word (`npm start -- --port 4000` listened on PORT), so any is refused,
// and a request for help answered, before anything starts.

const HELP_REQUESTS: ReadonlySet<string> = new Set(['help', '--help', '-h']);

/** True for `help`, `--help` or `-h` alone: the usage goes to stdout, exit 0. */
export function asksForHelp(args: readonly string[]): boolean {
  return args.length === 1 && HELP_REQUESTS.has(args[0]!);
}

/**
 * For a command that takes no arguments: undefined when it got none, else the exit code after
 * writing the usage: 0 when asked for help, 2 (a bad argument, as every command) with the reason.
 */
export function answerArguments(command: string, args: readonly string[], usage: string): number | undefined {
  if (args.length === 0) {
    return undefined;
  }
  if (asksForHelp(args)) {
    process.stdout.write(usage);
    return 0;
  }
  process.stderr.write(`${command} takes no arguments, only environment variables: ${JSON.stringify(args.join(' '))} is not used\n\n${usage}`);
  return 2;
}
