// TRACING=1: registers an OpenTelemetry SDK whose exporter logs the spans of the first traces,
// so that the app log shows one trace id crossing the order flow: the PRODUCER span of
// POST /orders' emit, then a CONSUMER span in billing and one in shipping, its children.
// A real service would export to a collector instead (e.g. @opentelemetry/exporter-trace-otlp-http).
// Imported only when tracing is on: the SDK packages are not needed otherwise.
import { Logger } from '@nestjs/common';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  W3CTraceContextPropagator,
  ExportResultCode,
  type ExportResult,
} from '@opentelemetry/core';
import {
  BasicTracerProvider,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { context, propagation, trace, SpanKind } from '@opentelemetry/api';

/** Traces logged in full; later ones are traced as well, but not logged. */
const LOGGED_TRACES = 5;

class LogExporter implements SpanExporter {
  private readonly logger = new Logger('Tracing');
  private readonly traces = new Set<string>();

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const span of spans) {
      const { traceId, spanId } = span.spanContext();
      if (!this.traces.has(traceId)) {
        if (this.traces.size >= LOGGED_TRACES) continue;
        this.traces.add(traceId);
      }
      const parent = span.parentSpanContext?.spanId;
      const channel = span.attributes['messaging.consumer.group.name'];
      this.logger.log(
        `trace ${traceId} span ${spanId} ${SpanKind[span.kind]} "${span.name}"` +
          (channel ? ` channel ${String(channel)}` : '') +
          (parent ? ` parent ${parent}` : ''),
      );
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export function startTracing(): void {
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new LogExporter())],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
}
