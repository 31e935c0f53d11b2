// `npm run docs` builds the API reference from the TSDoc comments; a broken link, an exported
// type that names an unexported one, or an unknown tag fails it (treatWarningsAsErrors).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('API reference (TypeDoc)', () => {
  it('builds from the TSDoc comments without a warning', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      ['node_modules/typedoc/bin/typedoc', '--emit', 'none'],
      { cwd: new URL('../..', import.meta.url).pathname },
    );
    expect(`${stdout}${stderr}`).not.toMatch(/warning|error/i);
  }, 60_000);
});
