import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { msOptionalToNumber } from '@temporalio/common/lib/time';

/**
 * A workflow interceptor module for tests that watch a step retry in real time (test/integration/jobVisibility):
 * every activity keeps its retry policy (attempts, coefficient, what is retryable) but waits at most 0.5 s before
 * its first retry and at most 1 s between later ones, so 15 attempts take seconds, not 5 minutes. Bundled only into
 * `fastRetryBundle()`; the product's workflows and their policies are unchanged (the mocked workflow tests in
 * test/workflows check the policies themselves). Retry policies are not compared on replay.
 */
export const FAST_FIRST_RETRY_MS = 500;
export const FAST_MAX_RETRY_MS = 1_000;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  outbound: [
    {
      scheduleActivity(input, next) {
        const retry = input.options.retry ?? {};
        const initial = Math.min(msOptionalToNumber(retry.initialInterval) ?? 1_000, FAST_FIRST_RETRY_MS);
        const maximum = Math.max(initial, Math.min(msOptionalToNumber(retry.maximumInterval) ?? 100 * initial, FAST_MAX_RETRY_MS));
        return next({ ...input, options: { ...input.options, retry: { ...retry, initialInterval: initial, maximumInterval: maximum } } });
      },
    },
  ],
});
