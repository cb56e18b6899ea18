// openapi.yaml as other tools read it: no error under Spectral's spectral:oas ruleset (.spectral.yaml)
// nor under Redocly's recommended rules (redocly.yaml), the same two commands `npm run lint:openapi`
// runs; and every `pattern` a regular expression that JavaScript (without flags) and Python's `re`
// both compile and read alike, since generated validators copy them as they are.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect } from 'chai';
import { parse } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPEC_FILE = path.join(ROOT, 'openapi.yaml');
/** Per command, for a loaded machine. */
const LINT_TIMEOUT_MS = 90_000;

/** Runs a tool from node_modules/.bin; never reaches the network (telemetry and update checks off). */
function runTool(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'node_modules', '.bin', bin), ...args],
      {
        cwd: ROOT,
        timeout: LINT_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
        env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** Every `pattern` (and `patternProperties` key) in the document, with where it is; examples are data, not schemas. */
function patternsIn(node: unknown, where = '#'): Array<{ where: string; pattern: string }> {
  if (Array.isArray(node)) {
    return node.flatMap((item, i) => patternsIn(item, `${where}/${i}`));
  }
  if (typeof node !== 'object' || node === null) {
    return [];
  }
  return Object.entries(node).flatMap(([key, value]) => {
    if (key === 'example' || key === 'examples') {
      return [];
    }
    if (key === 'pattern' && typeof value === 'string') {
      return [{ where: `${where}/pattern`, pattern: value }];
    }
    if (key === 'patternProperties' && typeof value === 'object' && value !== null) {
      return [...Object.keys(value).map((pattern) => ({ where: `${where}/patternProperties`, pattern })), ...patternsIn(value, `${where}/${key}`)];
    }
    return patternsIn(value, `${where}/${key}`);
  });
}

/**
 * Strings on which a pattern must answer the same in both languages. `\d` and `\w` match other
 * scripts' digits and letters in Python but not in JavaScript, and `\p{Cc}` without the `u` flag is
 * the literal text `p{Cc}` in JavaScript; these probe exactly that.
 */
const PROBES = [
  '',
  'Acme Billing',
  'p{Cc}',
  'ada@example.org',
  'j\u00f6rg@b\u00fccher.de',
  '1042',
  '\u0661\u0660\u0664\u0662',
  '\uff11\uff10',
  'caf\u00e9',
  'application/pdf',
  'image/\u00e9',
  'logo_1.png',
  'line\nbreak',
  'tab\there',
  'nul\u0000',
  'del\u007f',
  'c1\u0085',
  'order-8812',
  '2030-01-01T09:00:00Z',
  '2030-01-01T09:00:00+02:00',
  '\u0662\u0660\u0663\u0660-01-01T09:00:00Z',
  '812.4711',
  '"600-in-1min"; r=598; t=42',
  't=1893488403,v1=' + 'a'.repeat(64),
  'whsec_' + 'A'.repeat(43),
  '1, 2,,3',
  'https://jetpost.dev/problems/not-found',
];

function pythonAvailable(): boolean {
  return spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('openapi.yaml under Spectral, Redocly, JavaScript and Python', function () {
  this.timeout(2 * LINT_TIMEOUT_MS);

  let patterns: Array<{ where: string; pattern: string }>;

  before(async () => {
    patterns = patternsIn(parse(await fs.readFile(SPEC_FILE, 'utf8')));
  });

  it('Spectral (spectral:oas) reports no error', async () => {
    const { code, stdout, stderr } = await runTool('spectral', ['lint', 'openapi.yaml', '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet']);
    const results = JSON.parse(stdout || '[]') as Array<{ code: string; message: string; path: string[]; severity: number }>;
    const errors = results.filter((result) => result.severity === 0).map((result) => `${result.code} at ${result.path.join('.')}: ${result.message}`);
    expect(errors).to.deep.equal([]);
    expect(code, stderr).to.equal(0);
  });

  it('Redocly (recommended) reports no error', async () => {
    const { code, stdout, stderr } = await runTool('redocly', ['lint', 'openapi.yaml', '--config', 'redocly.yaml', '--format', 'json']);
    const report = JSON.parse(stdout) as {
      totals: { errors: number };
      problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>;
    };
    const errors = report.problems
      .filter((problem) => problem.severity === 'error')
      .map((problem) => `${problem.ruleId} at ${problem.location[0]?.pointer ?? '?'}: ${problem.message}`);
    expect(errors).to.deep.equal([]);
    expect(report.totals.errors).to.equal(0);
    expect(code, stderr).to.equal(0);
  });

  it('every pattern compiles as a JavaScript RegExp without flags, and none needs one (no \\p, \\u{…})', () => {
    expect(patterns.length).to.be.above(30);
    const failures = patterns.flatMap(({ where, pattern }) => {
      try {
        new RegExp(pattern);
      } catch (error) {
        return [`${where}: ${pattern}: ${String(error)}`];
      }
      // Legal without the u flag, but then \p{Cc} is the text "p{Cc}" and \u{41} 41 times "u".
      return /\\[pP]\{|\\u\{/.test(pattern) ? [`${where}: ${pattern}: needs the u flag`] : [];
    });
    expect(failures).to.deep.equal([]);
  });

  it("every pattern compiles in Python's re, and matches the same probe strings as in JavaScript", function () {
    if (!pythonAvailable()) {
      console.warn("      skipped: python3 is not installed, so the patterns were not compiled with Python's re");
      this.skip();
    }
    const script = [
      'import json, re, sys',
      'data = json.load(sys.stdin)',
      'out = []',
      'for p in data["patterns"]:',
      '    try:',
      '        r = re.compile(p)',
      '        out.append({"ok": True, "matches": [r.search(s) is not None for s in data["probes"]]})',
      '    except re.error as e:',
      '        out.append({"ok": False, "error": str(e)})',
      'json.dump(out, sys.stdout)',
    ].join('\n');
    const run = spawnSync('python3', ['-c', script], {
      input: JSON.stringify({ patterns: patterns.map((p) => p.pattern), probes: PROBES }),
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).to.equal(0);
    const answers = JSON.parse(run.stdout) as Array<{ ok: true; matches: boolean[] } | { ok: false; error: string }>;
    const failures = patterns.flatMap(({ where, pattern }, i) => {
      const answer = answers[i]!;
      if (!answer.ok) {
        return [`${where}: ${pattern}: Python: ${answer.error}`];
      }
      const js = new RegExp(pattern);
      return PROBES.filter((probe, j) => js.test(probe) !== answer.matches[j]).map(
        (probe) => `${where}: ${pattern}: ${JSON.stringify(probe)} matches in ${answer.matches[PROBES.indexOf(probe)] ? 'Python' : 'JavaScript'} only`,
      );
    });
    expect(failures).to.deep.equal([]);
  });
});
