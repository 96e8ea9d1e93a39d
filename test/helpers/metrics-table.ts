import { ATTRIBUTE, INSTRUMENTS } from '../../lib/telemetry/instruments.js'

const KINDS: Record<string, string> = {
  histogram: 'histogram',
  counter: 'counter',
  upDownCounter: 'up-down counter',
  observableGauge: 'gauge, observed',
  observableUpDownCounter: 'up-down counter, observed'
}

/** The README's metrics table as lib/telemetry/instruments.ts declares it: name, instrument, unit, attributes, meaning. */
export function metricRows (): string[][] {
  return Object.values(INSTRUMENTS).map(({ name, instrument, unit, attributes, description }) =>
    [`\`${name}\``, KINDS[instrument] as string, `\`${unit}\``, attributes.map((key) => `\`${ATTRIBUTE[key]}\``).join(', '), description])
}
