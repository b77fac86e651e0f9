import { createHash } from 'node:crypto';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  DiscardPolicy,
  Events,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
} from 'nats';
import type { Config } from '../config/index.js';
import type { Logger } from '../observability/index.js';
import { RuntimeError } from '../errors/index.js';
import { decode, encode, type CancelMessage, type RunMessage, type RunResult, type WorkflowChange } from './codec.js';
import { JetStreamPublisher } from './jetstream-publisher.js';
import {
  keepAliveInterval,
  within,
  type Delivery,
  type IdempotencyClaim,
  type PublishResult,
  type Queue,
  type StopConsuming,
  type Unsubscribe,
} from './port.js';

/**
 * How long a run's ack may wait to share a socket write with other acks (or with the next
 * publish, which takes the waiting acks along). An ack is sent only after the run's rows are
 * committed; sent a few ms later it changes nothing but the writes: the acks of a writer flush
 * already went together, and now they leave with the publish tick's write instead of their own.
 */
const ACK_LINGER_MS = 5;

/**
 * The queue on NATS: the run stream (a JetStream work queue), its durable
 * pull consumer shared by every executor host, and core NATS subjects for run
 * results (execute with wait), cancels and registry changes.
 */
export class JetStreamQueue implements Queue {
  private readonly publisher: JetStreamPublisher;
  private acks: JsMsg[] = [];
  private ackTimer: NodeJS.Timeout | null = null;
  /** called after a reconnect (see onCancel) */
  private readonly resyncs = new Set<() => void>();

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly c: Config['nats'],
    private readonly q: Config['queue'],
    private readonly log: Logger,
  ) {
    this.publisher = new JetStreamPublisher(nc, c.connect_timeout, () => this.flushAcks(), q.publish_linger);
  }

  /** Acks a run soon (see ACK_LINGER_MS); its rows are committed already. */
  private ackSoon(m: JsMsg): void {
    this.acks.push(m);
    this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_LINGER_MS);
  }

  /** Sends the waiting acks (into the connection's buffer: they go out with whatever is written this turn). */
  private flushAcks(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    const acks = this.acks;
    if (!acks.length) return;
    this.acks = [];
    for (const m of acks) {
      try {
        m.ack();
      } catch {
        // the connection closed meanwhile: the run is delivered again and found finished (driveRun)
      }
    }
  }

  static async connect(c: Config['nats'], q: Config['queue'], log: Logger, name: string): Promise<JetStreamQueue> {
    const nc = await connect({
      servers: [...c.urls],
      name,
      maxReconnectAttempts: c.max_reconnects,
      reconnectTimeWait: c.reconnect_wait,
      timeout: c.connect_timeout,
      pingInterval: 10_000,
    });
    const queue = new JetStreamQueue(nc, nc.jetstream(), await nc.jetstreamManager(), c, q, log);
    (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect || s.type === Events.Reconnect || s.type === Events.Error)
          log.warn({ nats: s.type, data: String(s.data as string) }, 'nats status');
        // core NATS broadcasts sent while disconnected are gone: listeners read the durable state again
        if (s.type === Events.Reconnect) for (const resync of queue.resyncs) resync();
      }
    })().catch(() => {});
    await queue.ensureStream();
    return queue;
  }

  private get runSubject(): string {
    return `${this.c.subject_prefix}.runs`;
  }

  /** Run cancellations, broadcast to every executor (core NATS: executors keep what they hear for a while). */
  private get cancelSubject(): string {
    return `${this.c.subject_prefix}.cancel`;
  }

  private get registrySubject(): string {
    return `${this.c.subject_prefix}.registry.changed`;
  }

  /** Creates (or updates) the work-queue stream and the executors' durable consumer. */
  async ensureStream(): Promise<void> {
    const stream = {
      name: this.c.stream_name,
      subjects: [`${this.runSubject}`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: nanos(this.q.duplicate_window),
      // bounded on purpose, and never by age: a full stream refuses new runs (E_OVERLOADED) rather
      // than dropping accepted ones
      max_msgs: this.q.max_messages,
      max_bytes: this.q.max_bytes,
      discard: DiscardPolicy.New,
    };
    try {
      await this.jsm.streams.info(this.c.stream_name);
      await this.jsm.streams.update(this.c.stream_name, stream);
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
      await this.jsm.streams.add(stream);
    }
    const consumer = {
      durable_name: this.c.consumer_name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.q.ack_wait),
      max_deliver: this.q.max_deliver,
      max_ack_pending: 20_000,
      filter_subject: this.runSubject,
    };
    try {
      await this.jsm.consumers.info(this.c.stream_name, this.c.consumer_name);
      await this.jsm.consumers.update(this.c.stream_name, this.c.consumer_name, consumer);
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
      await this.jsm.consumers.add(this.c.stream_name, consumer);
    }
  }

  /**
   * Publishes a run and resolves on the PubAck: only then is it accepted.
   * The message id is the run id (so a retried publish is stored once) or, for
   * an idempotency key, its hash (a repeat inside the duplicate window is
   * refused; JetStream cannot say which run holds the key).
   */
  async publishRun(msg: RunMessage, idempotency?: IdempotencyClaim): Promise<PublishResult> {
    // a resume is a message of its own (one per drive): the run id alone would be a duplicate
    const msgId = idempotency
      ? `idem:${createHash('sha256').update(idempotency.key).digest('hex')}`
      : msg.drive
        ? `${msg.run_id}:${msg.drive}`
        : msg.run_id;
    if (this.publisher.inFlight >= this.q.max_pending_publishes) {
      throw new RuntimeError(
        'E_OVERLOADED',
        'not accepted: too many runs waiting to be stored (queue.max_pending_publishes); retry after a second',
        { reason: 'publishes' },
      );
    }
    if (this.nc.isClosed()) throw new RuntimeError('E_QUEUE_UNAVAILABLE', 'the queue connection is closed');
    return this.publisher.publish(this.runSubject, encode(msg), msgId);
  }

  /**
   * Consumes run messages and hands each to `handle`, at most `maxInFlight`
   * at once. The client keeps pulling as messages arrive (nats.js refills on
   * arrival, not on processing), so the loop never blocks: a message beyond
   * the limit waits in a local queue and is kept alive with "working" every
   * ack_wait / 3, so it is never redelivered to another executor while it
   * waits here. Returns a stop function.
   */
  async consumeRuns(maxInFlight: number, handle: (d: Delivery) => Promise<void>): Promise<StopConsuming> {
    const consumer = await this.js.consumers.get(this.c.stream_name, this.c.consumer_name);
    const messages = await consumer.consume({ max_messages: Math.min(maxInFlight, 1000), expires: 30_000 });
    let stopping = false;
    const waiting: [JsMsg, RunMessage][] = [];
    /** the message of each run being handled */
    const running = new Map<Promise<void>, [JsMsg, RunMessage]>();
    const start = (m: JsMsg, data: RunMessage) => {
      const p: Promise<void> = handle(toDelivery(m, data, (x) => this.ackSoon(x)))
        .catch((err) => this.log.error({ err, run_id: data.run_id }, 'run handler failed; the run will be redelivered'))
        .finally(() => {
          running.delete(p);
          const next = stopping ? undefined : waiting.shift();
          if (next) start(...next);
        });
      running.set(p, [m, data]);
    };
    const keepalive = setInterval(() => {
      for (const [m] of waiting) m.working();
    }, keepAliveInterval(this.q.ack_wait));
    const loop = (async () => {
      for await (const m of messages) {
        let data: RunMessage;
        try {
          data = decode<RunMessage>(m.data);
        } catch (err) {
          this.log.error({ err, seq: m.seq }, 'undecodable run message; terminating it');
          m.term();
          continue;
        }
        if (running.size < maxInFlight && !stopping) start(m, data);
        else waiting.push([m, data]);
      }
    })();
    return async (graceMs = Infinity) => {
      stopping = true;
      messages.stop();
      await loop.catch(() => {});
      clearInterval(keepalive);
      // runs not started go back at once: another executor takes them
      await Promise.all(waiting.splice(0).map(([m, data]) => this.handBack(m, data)));
      if (await within(Promise.allSettled([...running.keys()]), graceMs)) {
        this.flushAcks();
        return { handedBack: 0 };
      }
      // past the grace: the runs still being handled go back too (they resume from their recorded steps)
      const left = [...running.values()];
      await Promise.all(left.map(([m, data]) => this.handBack(m, data)));
      this.flushAcks();
      return { handedBack: left.length };
    };
  }

  /**
   * Gives a run back so another executor takes it at once, with its delivery count intact.
   * Not by nak: nats-server 2.9 takes a nak'd delivery back off the count when no pull request
   * is waiting (the last executor stopping), so the next executor would see delivery 1 and not
   * look for the run's recorded steps: they would run again. Instead the run is published again
   * carrying its deliveries so far, and the old message acked once the copy is stored. Should
   * that fail (the queue is down or full), the old message stays unacked and JetStream delivers
   * it again after ack_wait, counted.
   */
  private async handBack(m: JsMsg, data: RunMessage): Promise<void> {
    const delivered = (data.delivered_before ?? 0) + m.info.redeliveryCount;
    try {
      await this.publisher.publish(
        this.runSubject,
        encode({ ...data, delivered_before: delivered }),
        `${data.run_id}:${data.drive ?? 0}:back:${delivered}`,
      );
      m.ack();
    } catch (err) {
      this.log.warn({ err, run_id: data.run_id }, 'could not hand the run back; it is delivered again after queue.ack_wait');
    }
  }

  /** JetStream has no lookup by run id: the API's cache answers for queued runs instead. */
  queuedRun(): Promise<null> {
    return Promise.resolve(null);
  }

  /** Messages waiting for an executor plus those delivered but not acked. */
  async consumerPending(): Promise<{ pending: number; ackPending: number }> {
    const ci = await this.jsm.consumers.info(this.c.stream_name, this.c.consumer_name);
    return { pending: ci.num_pending, ackPending: ci.num_ack_pending };
  }

  /**
   * Calls `cb` with each run message that used up its deliveries (JetStream's
   * max-deliveries advisory), then deletes it from the stream: the dead letter.
   */
  onDeadLetter(cb: (run: RunMessage, deliveries: number) => Promise<void>): () => Promise<void> {
    const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.c.stream_name}.${this.c.consumer_name}`;
    const inFlight = new Set<Promise<void>>();
    // a queue group: with several engine processes, each advisory is handled once
    const sub = this.nc.subscribe(subject, {
      queue: 'engine-dead-letters',
      callback: (err, m) => {
        if (err) return;
        const p = (async () => {
          const adv = JSON.parse(new TextDecoder().decode(m.data)) as { stream_seq: number; deliveries: number };
          const sm = await this.jsm.streams.getMessage(this.c.stream_name, { seq: adv.stream_seq });
          await cb(decode<RunMessage>(sm.data), adv.deliveries);
          await this.jsm.streams.deleteMessage(this.c.stream_name, adv.stream_seq);
        })()
          .catch((e) => this.log.error({ err: e }, 'dead-letter handling failed'))
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    });
    return async () => {
      sub.unsubscribe();
      await Promise.allSettled([...inFlight]);
    };
  }

  resultAddress(processId: string): string {
    return `${this.c.subject_prefix}.results.${processId}`;
  }

  onResults(address: string, cb: (r: RunResult) => void): Unsubscribe {
    return this.subscribe(address, cb);
  }

  publishResult(address: string, r: RunResult): void {
    try {
      this.nc.publish(address, encode(r));
    } catch {
      // over the server's max_payload: the waiter reads the record
      this.nc.publish(address, encode({ run_id: r.run_id, status: r.status, partial: true } satisfies RunResult));
    }
  }

  publishCancel(runId: string): void {
    this.nc.publish(this.cancelSubject, encode({ run_id: runId } satisfies CancelMessage));
  }

  onCancel(cb: (runId: string) => void, resync?: () => void): Unsubscribe {
    if (resync) this.resyncs.add(resync);
    const stop = this.subscribe<CancelMessage>(this.cancelSubject, (c) => {
      if (typeof c?.run_id === 'string') cb(c.run_id);
    });
    return () => {
      if (resync) this.resyncs.delete(resync);
      stop();
    };
  }

  publishWorkflowChange(c: WorkflowChange): void {
    this.nc.publish(this.registrySubject, encode(c));
  }

  onWorkflowChange(cb: (c: WorkflowChange) => void): Unsubscribe {
    return this.subscribe(this.registrySubject, cb);
  }

  private subscribe<T>(subject: string, cb: (v: T) => void): Unsubscribe {
    const sub = this.nc.subscribe(subject, {
      callback: (err, m) => {
        if (err) return this.log.warn({ err: err.message, subject }, 'subscription error');
        try {
          cb(decode<T>(m.data));
        } catch (e) {
          this.log.warn({ err: (e as Error).message, subject }, 'bad message on subscription');
        }
      },
    });
    return () => sub.unsubscribe();
  }

  async ready(): Promise<boolean> {
    try {
      await this.jsm.streams.info(this.c.stream_name);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.flushAcks();
    this.publisher.close();
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => {});
    }
  }
}

function toDelivery(m: JsMsg, data: RunMessage, ack: (m: JsMsg) => void): Delivery {
  return {
    data,
    deliveryCount: (data.delivered_before ?? 0) + m.info.redeliveryCount,
    ack: () => ack(m),
    working: () => m.working(),
  };
}
