// How h5web's H5GroveProvider reaches the session's dataserver (/data/): the browser's fetch with the
// login cookie, and a 401 (the login ended) sends the scientist back to the login page, then here.
import { createBasicFetcher, type Fetcher } from '@h5web/app';

const basic = createBasicFetcher({ credentials: 'same-origin' });

/** Told of every dataset h5web reads, so the Viewer can keep the one in view in the address. */
let onDataset: ((path: string) => void) | null = null;
export function watchDatasets(listener: ((path: string) => void) | null): void {
  onDataset = listener;
}

export const dataFetcher: Fetcher = async (url, params, opts) => {
  // A slice of a stack is the dataset in view (axes and other small datasets come whole, unselected).
  if (url.endsWith('/data') && params.format === 'bin' && params.selection && params.path) onDataset?.(params.path);
  try {
    return await basic(url, params, opts);
  } catch (error) {
    if ((error as { status?: number }).status === 401) {
      const next = window.location.pathname + window.location.hash;
      window.location.assign(`/gateway/login?next=${encodeURIComponent(next)}`);
    }
    throw error;
  }
};

// h5web builds export links with `new URL(url + '/data?...')`, which needs an absolute URL.
export function dataserverUrl(): string {
  return `${window.location.origin}/data`;
}
