// Talking to the process-list API: every change carries the ETag the editor last saw (If-Match), so a
// change made meanwhile elsewhere is answered with 412 instead of being overwritten.
import { ApiError } from '../api';

export interface PluginEntry {
  pos: string;
  name: string;
  id: string;
  active: boolean;
  params: Record<string, unknown>;
  known: boolean;
  kind: string | null;
  needs_gpu: boolean | null;
  notices: string[];
}

export interface Loop {
  start: number;
  end: number;
  iterations: number;
}

export interface Problem {
  message: string;
  pos: string | null;
  plugin: string | null;
  parameter: string | null;
}

export interface ProcessListDoc {
  path: string;
  version: string | null;
  etag: string;
  plugins: PluginEntry[];
  loops: Loop[];
  problems: Problem[];
  results?: Record<string, unknown>[];
}

export interface Folder {
  folder: string;
  writable: boolean;
  folders: { name: string; path: string }[];
  lists: { name: string; path: string; size: number; modified: number }[];
}

export interface ShownParameter {
  number: number;
  mod_number: number;
  name: string;
  value: unknown;
  visibility: string;
  dtype?: string;
  default?: unknown;
  options?: unknown[] | null;
  description?: string;
}

export interface ShownPlugin {
  pos: string;
  name: string;
  known: boolean;
  parameters: ShownParameter[];
  summary?: string;
}

export type Operation = Record<string, unknown> & { op: string };

export const HDF5 = 'application/x-hdf5';

export function listUrl(path: string): string {
  return `/api/process-lists/${path.split('/').map(encodeURIComponent).join('/')}`;
}

async function send<T>(method: string, url: string, body?: unknown, etag?: string, contentType = 'application/json'): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (etag) headers['If-Match'] = etag;
  let payload: BodyInit | undefined;
  if (body instanceof Blob) {
    payload = body;
    headers['Content-Type'] = contentType;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: 'same-origin' });
  if (response.status === 401) {
    window.location.assign(`/gateway/login?next=${encodeURIComponent(window.location.pathname + window.location.hash)}`);
    throw new ApiError(401, 'not logged in');
  }
  if (response.status === 204) return undefined as T;
  let data: unknown = null;
  try {
    data = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok) {
    throw new ApiError(response.status, (data as { error?: string } | null)?.error ?? `${response.status} ${response.statusText}`);
  }
  return data as T;
}

export const getFolder = (folder: string) => send<Folder>('GET', `/api/process-lists?folder=${encodeURIComponent(folder)}`);
export const getList = (path: string) => send<ProcessListDoc>('GET', listUrl(path));
export const createList = (path: string) => send<ProcessListDoc>('POST', listUrl(path), {});
export const copyList = (path: string, from: string) => send<ProcessListDoc>('POST', listUrl(path), { copy_from: from });
export const deleteList = (path: string, etag: string) => send<void>('DELETE', listUrl(path), undefined, etag);
export const applyOperations = (path: string, etag: string, operations: Operation[], level?: string) =>
  send<ProcessListDoc>('POST', `${listUrl(path)}/operations`, { operations, level }, etag);
export const uploadList = (path: string, file: Blob, etag?: string) => send<ProcessListDoc>('PUT', listUrl(path), file, etag, HDF5);
export const display = (path: string, level: string, pos: string) =>
  send<{ plugins: ShownPlugin[] }>('GET', `${listUrl(path)}/disp?level=${level}&start=${encodeURIComponent(pos)}&verbose=true`);
export interface HistoryEntry { number: number; command: string; time: number | null; current: boolean }
export interface History { entries: HistoryEntry[]; can_undo: boolean; can_redo: boolean }
export interface CommandAnswer extends ProcessListDoc {
  command?: { line: string; operations: Operation[]; special: string | null };
  history?: History;
  help?: { syntax: string; does: string }[];
  plugin?: PluginDetail;
}
export interface PluginDetail {
  name: string; module: string; kind: string; category: string; needs_gpu: boolean; summary: string;
  parameters: { name: string; number?: number | null; default?: unknown; description?: string; visibility?: string; dtype?: string }[];
  citations: { description?: string; bibtex?: string; endnote?: string; doi?: string; short_name_article?: string }[];
}

export const runCommand = (path: string, etag: string, line: string, level: string) =>
  send<CommandAnswer>('POST', `${listUrl(path)}/command`, { line, level }, etag);
export const undo = (path: string, etag: string) => send<CommandAnswer>('POST', `${listUrl(path)}/undo`, undefined, etag);
export const redo = (path: string, etag: string) => send<CommandAnswer>('POST', `${listUrl(path)}/redo`, undefined, etag);
export const getHistory = (path: string) => send<History>('GET', `${listUrl(path)}/history`);
export const wholeList = (path: string, level: string) =>
  send<{ plugins: ShownPlugin[] }>('GET', `${listUrl(path)}/disp?level=${level}&verbose=true`);
export const pluginDetail = (name: string) => send<PluginDetail>('GET', `/api/plugins/${encodeURIComponent(name)}`);
export const searchPlugins = (q: string) =>
  send<{ plugins: { name: string; kind: string; category: string; needs_gpu: boolean; summary: string }[] }>(
    'GET', `/api/plugins?q=${encodeURIComponent(q)}`);

/** The .nxs file's own URL: its own ETag and cache entry, never the editor's JSON (which shares the
 *  list's URL and is told apart by Accept), and sent as an attachment, so a plain link downloads it. */
export function downloadUrl(path: string): string {
  return `${listUrl(path)}?format=nxs`;
}

/** A value as savu_config shows it and as the `text` of a mod operation reads it back. */
export function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return JSON.stringify(value).replace(/\bnull\b/g, 'None').replace(/\btrue\b/g, 'True').replace(/\bfalse\b/g, 'False');
}
