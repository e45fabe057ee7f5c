/**
 * Node flags for processes that train (package.json's train, reproduce and bench scripts, sweep trials,
 * their Kubernetes pods). Training runs one compute thread per core (data-parallel workers, or ORT's
 * intra-op threads); V8's concurrent and parallel GC threads then preempt one of them, and every
 * participant waits for it at the step's barrier. Each step allocates about a megabyte of ORT outputs (cnn,
 * 2 workers: ~40 mark-compacts in 4 s, V8's helper threads ~15% of the machine). With the GC on the thread
 * that allocates, measured on 2 cores (12 alternating pairs, 2 workers): +1–18% images/s for cnn, cnn3,
 * resnet and inception, none slower; 1-thread steps unchanged. Without the flag training is the same, only slower.
 */
export const TRAINING_NODE_FLAGS = ['--single-threaded-gc'] as const;
