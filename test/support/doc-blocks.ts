// The shell blocks of a Markdown document, for the test that runs them as written
// (e2e/readme-commands.test.ts). The conventions, visible in the documents themselves:
//   ```sh             run with bash; must exit 0
//   ```sh norun       not run (npm install, npm test). A line in it that runs `npm start`, with
//                     NAME=value settings before it, says how jetpost is (re)started for the blocks after it
//   ```sh background  started and left running, like a second terminal; stopped at the end
//   # → text          in any block: its output must show `text` (`…` stands for anything)
// Documents name the ports a newcomer uses (127.0.0.1:3000); the test maps each to a free one.

export type BlockMode = 'run' | 'norun' | 'background';

export interface ShellBlock {
  /** 1-based line of the opening fence, for messages. */
  line: number;
  mode: BlockMode;
  script: string;
  /** The `# →` lines' texts. */
  expected: string[];
}

const FENCE = /^```sh(?:\s+(\S+))?\s*$/;
const MODES: Record<string, BlockMode> = { '': 'run', norun: 'norun', background: 'background' };

export function shellBlocks(markdown: string): ShellBlock[] {
  const lines = markdown.split('\n');
  const blocks: ShellBlock[] = [];
  for (let index = 0; index < lines.length; index += 1) {
    const fence = FENCE.exec(lines[index]!);
    if (!fence) {
      continue;
    }
    const mode = MODES[fence[1] ?? ''];
    if (mode === undefined) {
      throw new Error(`line ${index + 1}: unknown sh block mode "${fence[1]}" (run, norun or background)`);
    }
    const body: string[] = [];
    const start = index;
    for (index += 1; index < lines.length && !lines[index]!.startsWith('```'); index += 1) {
      body.push(lines[index]!);
    }
    const expected = body.flatMap((text) => {
      const match = /^\s*# → (.+)$/.exec(text);
      return match ? [match[1]!.trim()] : [];
    });
    blocks.push({ line: start + 1, mode, script: body.join('\n'), expected });
  }
  return blocks;
}

/** Whether `output` shows `expected`: its parts between `…` appear in order. */
export function outputShows(output: string, expected: string): boolean {
  let from = 0;
  for (const part of expected
    .split('…')
    .map((piece) => piece.trim())
    .filter(Boolean)) {
    const at = output.indexOf(part, from);
    if (at < 0) {
      return false;
    }
    from = at + part.length;
  }
  return true;
}

/** The settings of a block's `NAME=value … npm start` line; undefined when it starts nothing. */
export function startSettings(block: ShellBlock): Record<string, string> | undefined {
  for (const text of block.script.split('\n')) {
    const command = text.replace(/#.*$/, '').trim();
    const match = /^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(?:npm install && )?npm start$/.exec(command);
    if (match) {
      return Object.fromEntries(
        match[1]!
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      );
    }
  }
  return undefined;
}

/** A local address's port, where documents write one: 127.0.0.1:P, localhost:P, listen(P), --port P. */
const LOCAL_PORT = /(127\.0\.0\.1:|localhost:|listen\(|--port )(\d{2,5})\b/g;

/** The script with every local port replaced by its stand-in; a port without one is an error. */
export function withPorts(script: string, ports: ReadonlyMap<number, number>): string {
  return script.replace(LOCAL_PORT, (_match, before: string, port: string) => {
    const standIn = ports.get(Number(port));
    if (standIn === undefined) {
      throw new Error(`port ${port} has no stand-in: add it to the test's port map`);
    }
    return `${before}${standIn}`;
  });
}

/** The local ports a script names (before replacement). */
export function portsNamed(script: string): number[] {
  return [...script.matchAll(LOCAL_PORT)].map((match) => Number(match[2]));
}
