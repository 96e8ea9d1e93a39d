import { metrics } from '@opentelemetry/api'
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus'
import { MeterProvider } from '@opentelemetry/sdk-metrics'
import type { FastifyInstance } from 'fastify'

/*
 * What an application does to read the plugin's metrics with Prometheus: an
 * OpenTelemetry metrics SDK, installed globally before the plugin registers
 * (the plugin takes its meter then), with a Prometheus exporter that does not
 * start a server of its own: the gateway serves its page.
 */

export interface DemoMetrics {
  exporter: PrometheusExporter
  /** Flushes and stops the SDK. */
  shutdown: () => Promise<void>
}

/** The metrics SDK with a Prometheus reader, as the process's global meter provider. */
export function installMetrics (): DemoMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true })
  const provider = new MeterProvider({ readers: [exporter] })
  metrics.setGlobalMeterProvider(provider)
  return { exporter, shutdown: async () => { await provider.shutdown() } }
}

/** GET /metrics: the Prometheus text format, collected at each request. */
export function registerMetricsPage (gateway: FastifyInstance, exporter: PrometheusExporter): void {
  gateway.get('/metrics', { schema: { hide: true } }, (request, reply) => {
    reply.hijack() // the exporter writes the response itself
    exporter.getMetricsRequestHandler(request.raw, reply.raw)
  })
}
