#!/usr/bin/env node
// Rewrites ./package.json for the sample's runtime image: the library has no dependencies of its
// own (its Nest packages are peers, installed as devDependencies here), so the runtime's production
// dependencies are what sample/dist and dist/ import, at the versions package.json pins. The name,
// "type" and "exports" stay: sample/dist imports 'nestjs-nsq' by self-reference to dist/.
// Then `npm install --omit=dev` against package-lock.json installs just these (and the transitive
// versions the lockfile holds).
import { readFileSync, writeFileSync } from 'node:fs';

const RUNTIME = [
  '@nestjs/common',
  '@nestjs/config',
  '@nestjs/core',
  '@nestjs/microservices',
  '@nestjs/platform-express',
  '@nestjs/terminus',
  'reflect-metadata',
  'rxjs',
];

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const dependencies = {};
for (const name of RUNTIME) {
  const version = pkg.devDependencies?.[name];
  if (!version) throw new Error(`package.json has no devDependency ${name}`);
  dependencies[name] = version;
}
const { name, version, type, main, types, exports, engines } = pkg;
const runtime = { name, version, private: true, type, main, types, exports, engines, dependencies };
writeFileSync('package.json', JSON.stringify(runtime, null, 2) + '\n');
console.log(`package.json: ${RUNTIME.length} runtime dependencies, no dev, peer or scripts`);
