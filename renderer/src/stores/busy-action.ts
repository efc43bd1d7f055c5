/** The shape every store action that calls the API shares: busy while it runs, its failure shown in plain words. */
import { errorMessage } from '../api-client';

type StringKey<S> = { [K in keyof S]: S[K] extends string ? K : never }[keyof S];

/** Run `fn` with `store.busy` set; a failure goes to `store[errorKey]` (cleared first unless quiet). True when it succeeded. */
export async function busyAction<S extends { busy: boolean }>(
  store: S,
  errorKey: StringKey<S>,
  fn: () => Promise<void>,
  quiet = false,
): Promise<boolean> {
  store.busy = true;
  if (!quiet) (store[errorKey] as string) = '';
  try {
    await fn();
    return true;
  } catch (e) {
    if (!quiet) (store[errorKey] as string) = errorMessage(e);
    return false;
  } finally {
    store.busy = false;
  }
}
