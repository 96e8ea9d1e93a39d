/** A body's text without its durations, which tick between two reads: the rest compares exactly. */
export function withoutDurations (body: string): string {
  return body.replace(/"(engagementTime|waitTime|longestWaitTime)":\d+/g, '"$1":0')
}
