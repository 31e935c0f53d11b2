// The package as users get it: `npm pack` of this repository, installed from the tarball into a
// fresh app outside the repository (in os.tmpdir()) next to the Nest peers, compiled with this
// repository's TypeScript against the tarball's .d.ts files, and run against the shared nsqd.
// The app is README's quick start made whole: a ServerNsq microservice whose
// @EventPattern('topic/channel') handler records what it gets, and a ClientNsq that emits to it
// with `await lastValueFrom(client.emit(...))`. Two apps: ESM on Nest 12, and CommonJS on Nest 11
// (`require('nestjs-nsq')`, through Node's require(esm)). npm downloads go to the default npm
// cache, so a second run installs offline.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sharedNsq, uniqueName } from '../harness/nsq.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { nsqd } = sharedNsq();

/** npm as a user runs it: without the npm_* variables of the `npm test` this runs under. */
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) => !/^npm_(config_local_prefix|package_|lifecycle_|command)/i.test(key),
  ),
);

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));
const installedVersion = async (name: string) =>
  (await readJson(join(root, 'node_modules', name, 'package.json'))).version as string;

/** The app: README's consumer and producer in one process; prints what the handler got. */
const APP = `import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientNsq, NsqContext, ServerNsq } from 'nestjs-nsq';

const [nsqd, topic] = process.argv.slice(2);
const received: { order: unknown; pattern: string; attempts: number }[] = [];

@Controller()
class BillingController {
  @EventPattern<string>(\`\${topic}/billing\`)
  charge(@Payload() order: { id: number }, @Ctx() ctx: NsqContext) {
    received.push({ order, pattern: ctx.getPattern(), attempts: ctx.getMessage().attempts });
  }
}

@Module({ controllers: [BillingController] })
class AppModule {}

async function main() {
  const app = await NestFactory.createMicroservice(AppModule, {
    strategy: new ServerNsq({ nsqd: [nsqd] }),
    logger: false,
  });
  await app.listen();
  const client = new ClientNsq({ nsqd: [nsqd] });
  await lastValueFrom(client.emit(topic, { id: 42 }));
  for (let waited = 0; !received.length && waited < 10_000; waited += 20)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await client.close();
  await app.close();
  const moduleSystem = typeof require === 'function' ? 'commonjs' : 'esm';
  console.log(JSON.stringify({ moduleSystem, received }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    types: ['node'],
    skipLibCheck: true,
    outDir: 'dist',
    rootDir: 'src',
  },
  include: ['src'],
};

let work: string;
let tarball: string;

beforeAll(async () => {
  work = await mkdtemp(join(os.tmpdir(), 'nestjs-nsq-packed-'));
  // prepack builds dist/ first, as `npm publish` would.
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: root,
    env,
    maxBuffer: 16 << 20,
  });
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('[')));
  tarball = join(work, packed.filename);
}, 180_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Installs the tarball and `deps` into a new app, compiles APP, runs it; returns its report. */
async function appRun(name: string, type: 'module' | 'commonjs', deps: Record<string, string>) {
  const dir = join(work, name);
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name, private: true, type }, null, 2),
  );
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  await writeFile(join(dir, 'src', 'app.ts'), APP);
  const specs = Object.entries(deps).map(([pkg, version]) => `${pkg}@${version}`);
  await run(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      tarball,
      ...specs,
    ],
    { cwd: dir, env, maxBuffer: 16 << 20 },
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(process.execPath, [tsc, '-p', dir], { cwd: dir, env }).catch((err) => {
    throw new Error(`tsc failed in ${name}:\n${err.stdout}${err.stderr}`);
  });
  const compiled = await readFile(join(dir, 'dist', 'app.js'), 'utf8');
  const topic = uniqueName('packed');
  const { stdout } = await run(process.execPath, [join(dir, 'dist', 'app.js'), nsqd, topic], {
    cwd: dir,
    env,
    timeout: 60_000,
  });
  const report = JSON.parse(stdout.trim().split('\n').pop()!);
  const installed = await readJson(join(dir, 'node_modules', 'nestjs-nsq', 'package.json'));
  const nest = await readJson(
    join(dir, 'node_modules', '@nestjs', 'microservices', 'package.json'),
  );
  return { ...report, topic, compiled, installed: installed.version, nest: nest.version };
}

const peersOf = async (nest: Record<string, string>) => ({
  ...nest,
  'reflect-metadata': await installedVersion('reflect-metadata'),
  rxjs: await installedVersion('rxjs'),
  '@types/node': await installedVersion('@types/node'),
});

describe('the packed tarball in a fresh app', () => {
  it('ESM app on Nest 12: the handler gets what ClientNsq emitted', async () => {
    const nest12 = Object.fromEntries(
      await Promise.all(
        ['@nestjs/common', '@nestjs/core', '@nestjs/microservices'].map(
          async (pkg) => [pkg, await installedVersion(pkg)] as const,
        ),
      ),
    );
    const out = await appRun('esm-nest12', 'module', await peersOf(nest12));
    expect(out.nest).toMatch(/^12\./);
    expect(out.compiled).toMatch(/from 'nestjs-nsq'/);
    expect(out.moduleSystem).toBe('esm');
    expect(out.received).toEqual([
      { order: { id: 42 }, pattern: `${out.topic}/billing`, attempts: 1 },
    ]);
  }, 300_000);

  it('CommonJS app on Nest 11: require("nestjs-nsq") works and the handler gets the payload', async () => {
    const nest11 = (await readJson(join(root, 'test', 'nest11', 'package.json'))).dependencies;
    const out = await appRun(
      'cjs-nest11',
      'commonjs',
      await peersOf({
        '@nestjs/common': nest11['@nestjs/common'],
        '@nestjs/core': nest11['@nestjs/core'],
        '@nestjs/microservices': nest11['@nestjs/microservices'],
      }),
    );
    expect(out.nest).toMatch(/^11\./);
    expect(out.compiled).toMatch(/require\("nestjs-nsq"\)/);
    expect(out.moduleSystem).toBe('commonjs');
    expect(out.received).toEqual([
      { order: { id: 42 }, pattern: `${out.topic}/billing`, attempts: 1 },
    ]);
  }, 300_000);
});
