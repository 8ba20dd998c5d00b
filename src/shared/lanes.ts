/**
 * Bounded parallelism, for workflows and activities alike (no I/O, no clock): `work` runs for every item, at most
 * `parallel` at a time, in the items' order (each lane takes the next item when its previous one is done). The first
 * failure rejects the whole run; lanes already running keep their current item until it settles, as Promise.all
 * leaves them.
 *
 * Shared by the bulk export's downloads, the enhanced sync's type steps and its first-pages step (an activity).
 * Deterministic: lanes start in order and take items in order, so a replay schedules the same activities in the
 * same order.
 */
export async function runInLanes<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const lane = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, queue.length)) }, lane));
}
