// Talking to the session: every call goes through the gateway, which adds the user's identity.
// A 401 means the login ended: go back to the login page, then return here.

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (response.status === 401) {
    window.location.assign(`/gateway/login?next=${encodeURIComponent(window.location.pathname + window.location.hash)}`);
    throw new ApiError(401, 'not logged in');
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok) {
    const message = (body as { error?: string } | null)?.error ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

export async function logout(): Promise<void> {
  await fetch('/gateway/logout', { method: 'POST', credentials: 'same-origin', redirect: 'manual' });
  window.location.assign('/gateway/login');
}

export interface WhoAmI {
  user: string;
  home: string;
  groups: string[];
  roots: { name: string; writable: boolean }[];
}

export interface FileEntry {
  name: string;
  type: 'folder' | 'file' | 'other';
  size: number | null;
  modified: number;
  symlink: boolean;
}

export interface Listing {
  root: string;
  path: string;
  writable: boolean;
  entries: FileEntry[];
}

export interface PluginSummary {
  name: string;
  module: string;
  kind: string;
  category: string;
  needs_gpu: boolean;
  summary: string;
}

export interface EntityMeta {
  name: string;
  kind: 'group' | 'dataset' | 'soft_link' | 'external_link' | 'other';
  shape?: number[] | null;
  dtype?: unknown;
  attributes?: { name: string }[];
  children?: EntityMeta[];
}
