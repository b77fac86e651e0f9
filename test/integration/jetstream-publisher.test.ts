import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, RetentionPolicy, StorageType, type JetStreamManager, type NatsConnection } from 'nats';
import { JetStreamPublisher } from '../../dist/runtime/queue/jetstream-publisher.js';
import { has } from '../helpers/services.js';

/**
 * The publisher's tick under load, against the real NATS server: publishes wait for it only
 * while the rate makes it carry at least two, every publish still resolves on its own PubAck,
 * and at a low rate a publish goes out at once.
 */
describe.skipIf(!has('nats'))('JetStreamPublisher: the publish tick', () => {
  const tag = randomUUID().slice(0, 8);
  const stream = `wf-test-pub-${tag}`;
  const subject = `wftestpub.${tag}`;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  beforeAll(async () => {
    nc = await connect({ servers: ['nats://127.0.0.1:4222'] });
    jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [subject], retention: RetentionPolicy.Limits, storage: StorageType.File });
  });
  afterAll(async () => {
    await jsm?.streams.delete(stream).catch(() => {});
    await nc?.close();
  });

  it('waits for the tick while publishing fast, and stores every publish once', async () => {
    let writes = 0; // the hook runs once per batch that goes out
    const p = new JetStreamPublisher(nc, 5000, () => writes++, 5);
    const acks: Promise<{ duplicate: boolean }>[] = [];
    let lingered = false;
    // about one publish a millisecond (~800/s: a 5 ms tick carries about four); the first 300 ms
    // measure the rate (no tick yet), the next 500 ms are counted
    const t0 = performance.now();
    let counted = 0;
    while (performance.now() - t0 < 800) {
      if (!counted && performance.now() - t0 >= 300) {
        counted = acks.length;
        writes = 0;
      }
      acks.push(p.publish(subject, new TextEncoder().encode(`m${acks.length}`), `${tag}-${acks.length}`));
      lingered ||= p.linger === 5;
      await new Promise((r) => setTimeout(r, 1));
    }
    const countedPublishes = acks.length - counted;
    const results = await Promise.all(acks);
    expect(lingered).toBe(true);
    // one publish per turn of the loop would be one batch each; the tick carries several
    expect(writes).toBeLessThan(countedPublishes / 2);
    expect(results.every((r) => !r.duplicate)).toBe(true);
    expect((await jsm.streams.info(stream)).state.messages).toBe(acks.length);
    // a repeat of a message id inside the duplicate window is still told apart
    expect(await p.publish(subject, new TextEncoder().encode('again'), `${tag}-0`)).toEqual({ duplicate: true });
    p.close();
  });

  it('refuses a publish after close at once (nothing would flush or expire it)', async () => {
    const p = new JetStreamPublisher(nc, 5000, () => {}, 5);
    p.close();
    await expect(p.publish(subject, new TextEncoder().encode('late'), `${tag}-late`)).rejects.toMatchObject({
      code: 'E_QUEUE_UNAVAILABLE',
    });
  });

  it('does not wait at a low rate', async () => {
    let writes = 0;
    const p = new JetStreamPublisher(nc, 5000, () => writes++, 5);
    // 20 ms apart (50/s): a 5 ms tick would carry a quarter of a publish
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 20));
      await p.publish(subject, new TextEncoder().encode(`slow${i}`), `${tag}-slow-${i}`);
      expect(p.linger).toBe(0);
    }
    expect(writes).toBe(20);
    p.close();
  });
});
