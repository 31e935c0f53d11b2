import type { BaseRpcContext } from '@nestjs/microservices';

/** The server's processing hooks, read when a message is handled (they can be set late). */
export interface ProcessingHooks {
  start(context: BaseRpcContext, done: () => Promise<void>): unknown;
  end?(context: BaseRpcContext): void;
}

/**
 * Runs `fn` between the processing start and end hooks, the end hook once, even on failure.
 * Nest 12's Server has this as runWithProcessingHooks(); Nest 11's has only the hooks, so the
 * transport keeps its own, built on what both have.
 */
export function withProcessingHooks(
  hooks: ProcessingHooks,
  context: BaseRpcContext,
  fn: (runEndHook: () => void) => Promise<void>,
): unknown {
  return hooks.start(context, async () => {
    let ended = false;
    const runEndHook = () => {
      if (ended) return;
      ended = true;
      hooks.end?.(context);
    };
    try {
      await fn(runEndHook);
    } catch (err) {
      runEndHook();
      throw err;
    }
  });
}
