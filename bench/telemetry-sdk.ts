import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { installMetrics } from '../examples/metrics.js'

/** What the bench server installs before the plugin registers: nothing, the metrics SDK, or metrics and tracing. */
export type BenchTelemetry = 'none' | 'metrics' | 'traces'

/** An exporter that drops every span: the cost measured is the SDK's, not a collector's. */
const dropping: SpanExporter = {
  export: (_spans, done) => { done({ code: 0 }) },
  shutdown: async () => {}
}

/**
 * The metrics SDK with a Prometheus reader (the demo's, examples/metrics.ts);
 * with traces, also a tracer provider whose batch processor hands spans to an
 * exporter that drops them, and the AsyncLocalStorage context manager.
 */
export function installBenchTelemetry (mode: BenchTelemetry): void {
  if (mode === 'none') return
  installMetrics()
  if (mode === 'metrics') return
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropping)] }))
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
}
