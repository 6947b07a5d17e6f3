// Talking to the session: every call goes through the gateway, which adds the user's identity.
// One wrapper (request) for every call of the app: JSON in and out, the API's {"error": ...} as an
// ApiError, and a 401 (the login ended) sends the browser to the login page, which returns here after.
import type { components } from './api-schema';

export type Schemas = components['schemas'];

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: Record<string, unknown> | null = null) {
    super(message);
  }
}

/** The login page, coming back to where the user is now (path and hash: the app's place). */
export function loginUrl(): string {
  return `/gateway/login?next=${encodeURIComponent(window.location.pathname + window.location.search + window.location.hash)}`;
}

export function toLogin(): void {
  window.location.assign(loginUrl());
}

export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Any API call; resolves to the answer's JSON (null when it has none). */
export async function request<T>(url: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (options.json !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? 'GET', headers, credentials: 'same-origin', signal: options.signal,
      body: options.json === undefined ? undefined : JSON.stringify(options.json),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'hebi could not be reached. Check your network connection, then try again.');
  }
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, 'Your login has ended: taking you to the login page.');
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok) {
    const data = body as Record<string, unknown> | null;
    const message = typeof data?.error === 'string' ? data.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return body as T;
}

export function getJson<T>(url: string): Promise<T> {
  return request<T>(url);
}

export function postJson<T>(url: string, json?: unknown): Promise<T> {
  return request<T>(url, { method: 'POST', json });
}

export function deleteJson<T>(url: string): Promise<T> {
  return request<T>(url, { method: 'DELETE' });
}

/** A query string from the values that are set. */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  return params.toString();
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

export type FileEntry = Schemas['FileEntry'];
export type Listing = Schemas['Listing'];
export type TrashItem = Schemas['TrashItem'];
export type Trash = Schemas['Trash'];
export type FileText = Schemas['FileText'];

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
