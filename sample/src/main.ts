import 'reflect-metadata';
import { Logger, type LogLevel } from '@nestjs/common';
import { createApp } from './app.js';
import { SAMPLE_CONFIG, type SampleConfig } from './config.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** LOG_LEVEL=warn logs fatal, error and warn; default log. */
function logLevels(): LogLevel[] {
  const wanted = (process.env.LOG_LEVEL ?? 'log') as LogLevel;
  const index = LEVELS.indexOf(wanted);
  return LEVELS.slice(0, index < 0 ? LEVELS.indexOf('log') + 1 : index + 1);
}

async function bootstrap(): Promise<void> {
  // Before the app: the transport uses the global tracer provider the SDK registers.
  if (process.env.TRACING === '1') (await import('./tracing.js')).startTracing();
  const app = await createApp({ logger: logLevels() });
  // SIGTERM / SIGINT: stop taking messages, finish those in flight, flush FIN/REQ, disconnect.
  app.enableShutdownHooks();
  const config = app.get<SampleConfig>(SAMPLE_CONFIG);
  await app.listen(config.port, config.host);
  new Logger('Sample').log(
    `HTTP on http://${config.host}:${config.port}; NSQ nsqd ${config.nsqd.join(', ')}` +
      (config.lookupd.length ? `, nsqlookupd ${config.lookupd.join(', ')}` : ''),
  );
}

bootstrap().catch((err: unknown) => {
  console.error('The sample app failed to start:', err);
  process.exit(1);
});
