/**
 * The Server-Sent Events wire format of GET /api/v1/executions/:run_id/events, written and read
 * in one place: the API writes it, the CLI and the web console read it. Plain text in, plain
 * text out, no imports, so the CLI and the console's bundle take this file alone (through
 * api/index.ts they would load the HTTP server).
 */
export interface SseEvent {
  type: string;
  data: unknown;
}

/** One event as the stream carries it. */
export const sseEvent = (type: string, data: unknown): string => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;

/** A reader: give it the text as it arrives; it returns the events completed so far and keeps the rest. */
export function sseReader(): (text: string) => SseEvent[] {
  let buf = '';
  return (text) => {
    buf += text;
    const out: SseEvent[] = [];
    let at: number;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const type = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (type && data) out.push({ type, data: JSON.parse(data) as unknown }); // comments (": ping") carry no event
    }
    return out;
  };
}
