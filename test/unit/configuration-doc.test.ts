// docs/configuration.md's table names every variable src/config.ts reads, with its real default,
// and none that is gone: operators set what it says.
import fs from 'node:fs';
import path from 'node:path';

import { expect } from 'chai';

import { SETTING_NAMES, settingDefault, settingRange } from '../../src/config.js';

const DOC = path.join(import.meta.dirname, '../../docs/configuration.md');

/** Documented in the table but read by proxy-from-env (mailjet/agent.ts), not by config.ts. */
const READ_ELSEWHERE = new Set(['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']);

/** `a`, `b` → ['a', 'b']. */
const codeSpans = (cell: string): string[] => [...cell.matchAll(/`([^`]*)`/g)].map((match) => match[1]!);

/** Each documented variable with the text of its default: a row may name several, with one default each or one for all. */
function documentedDefaults(markdown: string): Array<{ name: string; documented: string }> {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => {
      const [names, defaults] = line
        .split(/(?<!\\)\|/)
        .slice(1, 3)
        .map((cell) => cell.trim());
      const variables = codeSpans(names!);
      const values = codeSpans(defaults!);
      return variables.map((name, index) => ({
        name,
        documented: variables.length > 1 && values.length === variables.length ? `\`${values[index]}\`` : defaults!,
      }));
    });
}

/** What is wrong with the table of `markdown`, one line each. */
function tableProblems(markdown: string): string[] {
  const rows = documentedDefaults(markdown);
  const problems: string[] = [];
  for (const name of SETTING_NAMES) {
    const count = rows.filter((row) => row.name === name).length;
    if (count !== 1) {
      problems.push(`${name}: documented ${count} times`);
    }
  }
  for (const { name, documented } of rows) {
    if (!SETTING_NAMES.includes(name)) {
      if (!READ_ELSEWHERE.has(name)) {
        problems.push(`${name}: documented, but jetpost does not read it`);
      }
      continue;
    }
    const real = settingDefault(name);
    if (real === undefined || real === '') {
      // No literal default: the text says what stands in (another variable, a mode), never a number.
      if (/^`-?[\d.]+`$/.test(documented)) {
        problems.push(`${name}: documented default ${documented}, but it has none of its own`);
      }
    } else if (documented !== `\`${String(real)}\``) {
      problems.push(`${name}: documented default ${documented}, real default \`${String(real)}\``);
    }
  }
  return problems;
}

/** Each number or size variable whose row's "accepted" cell does not state its range, as config.ts checks it. */
function rangeProblems(markdown: string): string[] {
  const rows = markdown.split('\n').filter((line) => line.startsWith('| `'));
  return SETTING_NAMES.flatMap((name) => {
    const range = settingRange(name);
    const row = rows.find((line) => codeSpans(line.split(/(?<!\\)\|/)[1]!).includes(name));
    const accepted = row
      ?.split(/(?<!\\)\|/)[3]
      ?.replaceAll('`', '')
      .trim();
    return range === undefined || accepted?.includes(range) === true ? [] : [`${name}: accepted ${String(accepted)}, but config.ts takes ${range}`];
  });
}

describe('docs/configuration.md', () => {
  const markdown = fs.readFileSync(DOC, 'utf8');

  it('then its table states the range each number and size variable accepts, as config.ts checks it', () => {
    expect(rangeProblems(markdown)).to.deep.equal([]);
    expect(rangeProblems(markdown.replace('a whole number from 0 to 65,535', 'a whole number from 1 to 65,535'))).to.deep.equal([
      'PORT: accepted PORT: a whole number from 1 to 65,535; HOST: —, but config.ts takes a whole number from 0 to 65,535',
    ]);
  });

  it('then its table lists every variable of src/config.ts once, with its real default, and no variable that is gone', () => {
    expect(tableProblems(markdown)).to.deep.equal([]);
  });

  it('when a default is stale, a variable missing or one gone, then the check names it', () => {
    const stale = markdown
      .replace('| `MAX_ATTEMPTS` | `8` |', '| `MAX_ATTEMPTS` | `5` |')
      .replace('| `WORKER_CONCURRENCY` | `MAILJET_MAX_IN_FLIGHT` |', '| `WORKER_CONCURRENCY` | `4` |')
      .replace('`5000`, `2`, `3600000`, `0.25`', '`5000`, `2`, `3600000`, `0.2`')
      .replace(/^\| `SIMULATOR_PORT` .*\n/m, '')
      .concat('| `QUEUE_WORKERS` | `4` | gone |\n');
    expect(tableProblems(stale)).to.have.members([
      'MAX_ATTEMPTS: documented default `5`, real default `8`',
      'WORKER_CONCURRENCY: documented default `4`, but it has none of its own',
      'RETRY_JITTER: documented default `0.2`, real default `0.25`',
      'SIMULATOR_PORT: documented 0 times',
      'QUEUE_WORKERS: documented, but jetpost does not read it',
    ]);
  });
});
