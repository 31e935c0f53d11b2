// Optional OpenTelemetry tracing (`tracing: true` on ServerNsq and ClientNsq). @opentelemetry/api
// is an optional peer dependency, imported only when tracing is on: with it off nothing here
// runs. A PRODUCER span per emit()/send() carries its context (W3C traceparent, tracestate) in the
// frame header's `trace`; a CONSUMER span per handler run continues it, and the handler runs
// inside it, so that what the handler publishes continues the trace too.
import { describe } from './describe-error.js';
import type * as OtelApi from '@opentelemetry/api';
import type { Span, Tracer } from '@opentelemetry/api';
import { NsqValidationError } from '../errors.js';
import type { NsqMessage } from '../consumer/nsq-message.js';
import type { HandlerInvoker } from './event-runner.js';
import type { NsqContext } from './nsq-context.js';
import { decodeFrame, type FrameHeader } from './payload.js';

type Api = typeof OtelApi;

const API_PACKAGE = '@opentelemetry/api';

/** Imports @opentelemetry/api, or fails with an error that says what to install. */
export async function loadOtelApi(owner: string, specifier = API_PACKAGE): Promise<Api> {
  let loaded: Api & { default?: Api };
  try {
    loaded = (await import(specifier)) as Api & { default?: Api };
  } catch (err) {
    throw new NsqValidationError(
      `${owner}: option tracing needs the package ${specifier}; install it (npm install ${specifier}) or leave tracing off`,
      { cause: err },
    );
  }
  // A CommonJS build seen from ESM may come as its default export only.
  return typeof loaded.trace === 'object' ? loaded : loaded.default!;
}

/** The tracer, once @opentelemetry/api is imported. */
export async function loadTracer(owner: string): Promise<NsqTracer> {
  return new NsqTracer(await loadOtelApi(owner));
}

/** What a producer span gives the publish it wraps. */
export interface ProducerSpan {
  /** The propagator's fields (traceparent, tracestate) for the frame header; none without them. */
  readonly carrier?: Record<string, string>;
}

/** How long a failed import of @opentelemetry/api is remembered before it is tried again. */
const RETRY_IMPORT_AFTER = 5000;

/** Makes the tracer on first use: the import happens once, when tracing is first needed. */
export class LazyTracer {
  private tracer?: NsqTracer;
  private loading?: Promise<NsqTracer>;

  constructor(private readonly owner: string) {}

  /** The tracer, or the promise of it while @opentelemetry/api is being imported. */
  get(): NsqTracer | Promise<NsqTracer> {
    if (this.tracer) return this.tracer;
    this.loading ??= loadTracer(this.owner).then(
      (tracer) => (this.tracer = tracer),
      (err: unknown) => {
        // Installed later: tried again, but at most every few seconds, not on every emit.
        setTimeout(() => (this.loading = undefined), RETRY_IMPORT_AFTER).unref();
        throw err;
      },
    );
    return this.loading;
  }
}

/**
 * Runs `work` (a publish) inside a PRODUCER span: `${operation} ${topic}`, ended when the work
 * settles (nsqd acknowledged), with error status if it fails.
 */
export function traced<T>(
  lazy: LazyTracer,
  topic: string,
  operation: 'publish' | 'send',
  work: (span: ProducerSpan) => Promise<T>,
): Promise<T> {
  const tracer = lazy.get();
  // The context in force at the call travels with the promise (AsyncLocalStorage), so a span
  // started once the import is done still has the caller's parent.
  return tracer instanceof NsqTracer
    ? tracer.produce(topic, operation, work)
    : tracer.then((t) => t.produce(topic, operation, work));
}

/** Spans for ClientNsq and ServerNsq, over the loaded @opentelemetry/api. */
export class NsqTracer {
  private readonly tracer: Tracer;

  constructor(private readonly api: Api) {
    this.tracer = api.trace.getTracer('nestjs-nsq');
  }

  produce<T>(
    topic: string,
    operation: 'publish' | 'send',
    work: (span: ProducerSpan) => Promise<T>,
  ): Promise<T> {
    const { api } = this;
    const span = this.tracer.startSpan(`${operation} ${topic}`, {
      kind: api.SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'nsq',
        'messaging.destination.name': topic,
        'messaging.operation.type': 'send',
        'messaging.operation.name': operation,
      },
    });
    const fields: Record<string, string> = {};
    api.propagation.inject(api.trace.setSpan(api.context.active(), span), fields);
    const handle: ProducerSpan = { carrier: Object.keys(fields).length ? fields : undefined };
    let result: Promise<T>;
    try {
      result = work(handle);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => span.end(),
      (err: unknown) => this.end(span, err),
    );
    return result;
  }

  /**
   * Runs a handler inside a CONSUMER span (`process ${topic}`) whose parent is the context the
   * message carries. `work` gets `fail` to mark an error it answers rather than throws (a request
   * handler's error reply); a rejection marks one too.
   */
  process<T>(ctx: NsqContext, work: (fail: (err: unknown) => void) => Promise<T>): Promise<T> {
    const { api } = this;
    const message = ctx.getArgByIndex(0) as NsqMessage;
    const header = ctx.getArgByIndex(3) as FrameHeader | undefined;
    const carrier = header ? header.trace : carrierOfRaw(message.body);
    const parent = carrier
      ? api.propagation.extract(api.ROOT_CONTEXT, carrier)
      : api.context.active();
    const span = this.tracer.startSpan(
      `process ${ctx.getTopic()}`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'nsq',
          'messaging.destination.name': ctx.getTopic(),
          'messaging.consumer.group.name': ctx.getChannel(),
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.message.id': message.id,
          'messaging.nsq.message.attempts': message.attempts,
        },
      },
      parent,
    );
    let failure: { err: unknown } | undefined;
    const fail = (err: unknown) => (failure ??= { err });
    let result: Promise<T>;
    try {
      result = api.context.with(api.trace.setSpan(parent, span), () => work(fail));
    } catch (err) {
      result = Promise.reject(err);
    }
    return result.then(
      (value) => {
        if (failure) this.end(span, failure.err);
        else span.end();
        return value;
      },
      (err: unknown) => {
        this.end(span, err);
        throw err;
      },
    );
  }

  private end(span: Span, err: unknown): void {
    const error = err instanceof Error ? err : undefined;
    const message = describe(err);
    span.recordException(error ?? message);
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message });
    span.setAttribute('error.type', error?.name ?? errorCode(err));
    span.end();
  }
}

/** A raw handler's message was not decoded: its trace is read from the frame, if it has one. */
function carrierOfRaw(body: Buffer): Record<string, string> | undefined {
  try {
    return decodeFrame(body).header?.trace;
  } catch {
    return undefined;
  }
}

/** Nest hands a failed handler's error on as a plain object (`{ status, message }`, a `code`). */
function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return typeof code === 'string' ? code : '_OTHER';
}

/** The server's invoker, inside a CONSUMER span when tracing is on; itself when it is off. */
export function tracedInvoker(
  tracer: NsqTracer | undefined,
  invoke: HandlerInvoker,
): HandlerInvoker {
  return tracer ? (h, data, ctx) => tracer.process(ctx, () => invoke(h, data, ctx)) : invoke;
}
