import { context, metrics, trace, type Attributes } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { DataPointType, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'

/** A reader that collects when asked, as a Prometheus scrape does. */
class OnDemandReader extends MetricReader {
  protected async onForceFlush (): Promise<void> {}
  protected async onShutdown (): Promise<void> {}
}

/** One data point as collected: a sum or gauge's value, or a histogram's. */
export interface Point { name: string, unit: string, attributes: Attributes, value: number | Histogram }

export interface InstalledSdk {
  /** Every data point now. */
  collect: () => Promise<Point[]>
  /** Spans ended so far. */
  spans: () => ReadableSpan[]
  tracerProvider: BasicTracerProvider
}

/**
 * Installs a real OpenTelemetry SDK as an application does, globally: a meter
 * provider with an in-memory reader, a tracer provider with an in-memory
 * exporter, and the AsyncLocalStorage context manager. Once per process.
 */
export function installSdk (): InstalledSdk {
  const reader = new OnDemandReader()
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  trace.setGlobalTracerProvider(tracerProvider)
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  return {
    tracerProvider,
    spans: () => exporter.getFinishedSpans(),
    collect: async () => {
      const { resourceMetrics } = await reader.collect()
      return resourceMetrics.scopeMetrics.flatMap(({ metrics }) => metrics.flatMap((metric) => metric.dataPoints.map((point) => ({
        name: metric.descriptor.name,
        unit: metric.descriptor.unit,
        attributes: point.attributes,
        value: metric.dataPointType === DataPointType.HISTOGRAM ? point.value as Histogram : point.value as number
      }))))
    }
  }
}

/** The points of a metric whose attributes include these. */
export function pointsOf (points: Point[], name: string, attributes: Attributes): Point[] {
  return points.filter((point) => point.name === name && Object.entries(attributes).every(([key, value]) => point.attributes[key] === value))
}

/** The value of a counter, up-down counter or gauge (summed over the matching points; undefined: none). */
export function valueOf (points: Point[], name: string, attributes: Attributes): number | undefined {
  const matching = pointsOf(points, name, attributes)
  return matching.length === 0 ? undefined : matching.reduce((sum, point) => sum + (point.value as number), 0)
}

/** A histogram's count and sum over the matching points. */
export function histogramOf (points: Point[], name: string, attributes: Attributes): { count: number, sum: number, min: number, max: number } {
  const matching = pointsOf(points, name, attributes).map((point) => point.value as Histogram)
  return {
    count: matching.reduce((sum, value) => sum + value.count, 0),
    sum: matching.reduce((sum, value) => sum + (value.sum ?? 0), 0),
    min: Math.min(...matching.map((value) => value.min ?? Infinity)),
    max: Math.max(...matching.map((value) => value.max ?? -Infinity))
  }
}
