/**
 * Node flags for processes that train (package.json's train, reproduce and bench scripts, sweep trials,
 * their Kubernetes pods). Training runs one compute thread per core (data-parallel workers, or ORT's
 * intra-op threads); V8's concurrent and parallel GC threads then preempt one of them, and every
 * participant waits for it at the step's barrier. Each step allocates about a megabyte of ORT outputs (cnn,
 * 2 workers: ~40 mark-compacts in 4 s, V8's helper threads ~15% of the machine). With the GC on the thread
 * that allocates, measured on 2 cores (12 alternating pairs, 2 workers): +1–18% images/s for cnn, cnn3,
 * resnet and inception, none slower; 1-thread steps unchanged.
 *
 * Most of those mark-compacts were not the outputs' bytes but V8's first old-space limits, sized for a
 * page's small heap: each step's short-lived wrappers that outlive a scavenge are promoted, and a ~10 MB
 * live heap crossed its limit every ~30 steps (resnet, one epoch as 2 workers: 32 mark-compacts, ~10 ms of
 * marking each on a participant's thread, which the other waits for at the barrier). Starting old space at
 * 64 MB leaves 4 in the epoch, with the same peak RSS (Intel Xeon, 2026-12-05). Without the flags training
 * is the same, only slower.
 */
export const TRAINING_NODE_FLAGS = ['--single-threaded-gc', '--initial-old-space-size=64'] as const;
