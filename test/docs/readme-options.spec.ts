// The README's option tables are held to the option schemas that validate and default them:
// a row per option, its default and its one-line doc. UPDATE_README=1 rewrites the tables.
import { readFileSync, writeFileSync } from 'node:fs';
import { connectionSchema } from '../../lib/connection/settings.js';
import { clientSchema } from '../../lib/nest/client-options.js';
import { serverSchema } from '../../lib/nest/server-options.js';
import { defaultText, type OptionSpec } from '../../lib/options.js';

const README = new URL('../../README.md', import.meta.url);
const connectionKeys = new Set(Object.keys(connectionSchema));
const without = (schema: object) =>
  Object.entries(schema).filter(([key]) => !connectionKeys.has(key)) as [
    string,
    OptionSpec<unknown>,
  ][];

const tables: Record<string, [string, OptionSpec<unknown>][]> = {
  server: without(serverSchema),
  client: without(clientSchema),
  connection: Object.entries(connectionSchema) as [string, OptionSpec<unknown>][],
};

const rowsOf = (entries: [string, OptionSpec<unknown>][]) =>
  entries.map(([name, spec]) => [`\`${name}\``, defaultText(spec), spec.doc]);

function section(readme: string, name: string): { start: number; end: number } {
  const open = `<!-- options:${name} -->\n`;
  const start = readme.indexOf(open);
  const end = readme.indexOf('<!-- /options -->', start);
  if (start < 0 || end < 0) throw new Error(`README.md lacks the ${open.trim()} section`);
  return { start: start + open.length, end };
}

const cells = (line: string) =>
  line
    .replace(/^\s*\||\|\s*$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

describe('README option tables', () => {
  if (process.env.UPDATE_README === '1') {
    let readme = readFileSync(README, 'utf8');
    for (const [name, entries] of Object.entries(tables)) {
      const { start, end } = section(readme, name);
      const table = ['| option | default | |', '| --- | --- | --- |']
        .concat(rowsOf(entries).map((r) => `| ${r.join(' | ')} |`))
        .join('\n');
      readme = readme.slice(0, start) + table + '\n' + readme.slice(end);
    }
    writeFileSync(README, readme);
  }

  it.each(Object.keys(tables))('%s: one row per option, with its default and doc', (name) => {
    const readme = readFileSync(README, 'utf8');
    const { start, end } = section(readme, name);
    const rows = readme
      .slice(start, end)
      .trim()
      .split('\n')
      .slice(2) // header and separator
      .map(cells);
    expect(rows).toEqual(rowsOf(tables[name]));
  });
});
