// Every TypeScript block of README.md and sample/README.md is the code of one example file in
// test/readme/examples, word for word, which test/readme/examples.spec.ts runs against a real
// nsqd. The one allowed difference: the README's addresses ('127.0.0.1:4150' for nsqd,
// '127.0.0.1:4161' for nsqlookupd, HTTP port 3000) are NSQD, LOOKUPD and HTTP_PORT there.
import { readdirSync, readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

const IMPORT = /^import\s+(type\s+)?(?:\{([^}]*)\}|(\w+))\s+from\s+'([^']+)';\s*$/gm;

/** `name from module` for every binding the code imports. */
function importsOf(code: string): Set<string> {
  const out = new Set<string>();
  for (const m of code.matchAll(IMPORT)) {
    const names = m[2] ? m[2].split(',') : [m[3]];
    for (const n of names.map((x) => x.replace(/^\s*type\s+/, '').trim()).filter(Boolean))
      out.add(`${n} from ${m[4]}`);
  }
  return out;
}

function bodyOfReadmeBlock(block: string): string {
  return block
    .replace(IMPORT, '')
    .replaceAll("'127.0.0.1:4150'", 'NSQD')
    .replaceAll("'127.0.0.1:4161'", 'LOOKUPD')
    .replaceAll('listen(3000)', 'listen(HTTP_PORT)')
    .trim();
}

const readmeBlocks = ['README.md', 'sample/README.md'].flatMap((file) =>
  [...read(file).matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({
    where: `${file} block ${i + 1}`,
    imports: importsOf(m[1]),
    body: bodyOfReadmeBlock(m[1]),
  })),
);

const examples = readdirSync(new URL('test/readme/examples/', root)).map((file) => {
  const code = read(`test/readme/examples/${file}`);
  const region = /\/\/ readme:start\n([\s\S]*?)\/\/ readme:end/.exec(code);
  return { file, imports: importsOf(code), body: region?.[1].trim() };
});

describe('README examples are the tested examples', () => {
  it('finds the README blocks and the example files', () => {
    expect(readmeBlocks.length).toBeGreaterThanOrEqual(7);
    expect(examples.every((e) => e.body !== undefined)).toBe(true);
  });

  it.each(readmeBlocks.map((b) => [b.where, b]))(
    '%s is an example file, word for word, with the same imports',
    (_, block) => {
      const example = examples.find((e) => e.body === block.body);
      if (!example) {
        throw new Error(
          `No file in test/readme/examples has this code between its markers:\n${block.body}`,
        );
      }
      expect([...block.imports].filter((i) => !example.imports.has(i))).toEqual([]);
    },
  );

  it('every example file is in a README', () => {
    const stale = examples.filter((e) => !readmeBlocks.some((b) => b.body === e.body));
    expect(stale.map((e) => e.file)).toEqual([]);
  });
});
