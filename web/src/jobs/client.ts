// The jobs API (docs/jobs.md): types, submit/cancel, and a live subscription to job changes.
import { ApiError, getJson } from '../api';

export type JobState =
  | 'submitting' | 'queued' | 'running' | 'unknown'
  | 'finished' | 'failed' | 'cancelled' | 'timeout' | 'lost';

export const ACTIVE: JobState[] = ['submitting', 'queued', 'running', 'unknown'];

export interface Job {
  id: string;
  name: string;
  mode: 'preview' | 'full';
  state: JobState;
  message: string;
  backend: string;
  scheduler_id: string | null;
  queue: string;
  process_list: string;
  dataset: string;
  output: string;
  run_folder: string | null;
  resources: { time_limit: number | null; cores: number | null; memory_mb: number | null };
  preview: unknown;
  progress: number | null;
  progress_text: string;
  submitted_at: number;
  started_at: number | null;
  ended_at: number | null;
  cancel_requested: boolean;
  end: { reason: string; exit_code: number | null; signal: string | null; wall_time: number | null } | null;
}

export interface JobList {
  jobs: Job[];
  total: number;
  cluster: { available: boolean; unavailable: Record<string, string>; polled_at: number | null };
}

export interface ModeAvailability {
  mode: 'preview' | 'full';
  backend: string;
  queue: string;
  available: boolean;
  reason?: string;
  time_limit: number;
  max_time_limit: number;
  max_cores: number;
  queues: { name: string; used: number; free: number; total: number }[];
}

export interface JobRequest {
  process_list: string;
  dataset: string;
  output: string;
  mode: 'preview' | 'full';
  name?: string;
  preview?: number | string;
  resources?: { time_limit?: number | string; cores?: number; memory_mb?: number };
}

async function send<T>(url: string, body?: unknown): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, (data as { error?: string } | null)?.error ?? `${response.status}`);
  }
  return data as T;
}

export const listJobs = () => getJson<JobList>('/api/jobs?limit=500');
export const clusterStatus = () => getJson<{ modes: ModeAvailability[] }>('/api/cluster');
export const submitJob = (request: JobRequest) => send<Job>('/api/jobs', request);
export const cancelJob = (id: string) => send<Job>(`/api/jobs/${encodeURIComponent(id)}/cancel`);
/** A log's tail; without ``stream`` the API picks (user.log, or stderr for an ended job whose user.log is empty). */
export const jobLog = (id: string, stream?: string) =>
  getJson<{ text: string; exists: boolean; stream: string }>(
    `/api/jobs/${encodeURIComponent(id)}/log?${stream ? `stream=${stream}&` : ''}lines=200`);
export const jobOutputs = (id: string) =>
  getJson<{ run_folder: string | null; exists: boolean; files: { path: string; size: number }[] }>(
    `/api/jobs/${encodeURIComponent(id)}/outputs`);

/** Calls ``onJob`` for every change of a job, as the server sends them; returns the unsubscribe. */
export function watchJobs(onJob: (job: Job) => void): () => void {
  const source = new EventSource('/api/jobs/events');
  source.addEventListener('job', (event) => onJob(JSON.parse((event as MessageEvent).data) as Job));
  return () => source.close();
}

/** Follows a job's log: ``onText`` gets each new piece; returns the stop function. */
export function followLog(id: string, stream: string, onText: (text: string) => void, onEnd: () => void): () => void {
  const source = new EventSource(`/api/jobs/${encodeURIComponent(id)}/log?stream=${stream}&follow=1&lines=200`);
  source.addEventListener('log', (event) => onText((JSON.parse((event as MessageEvent).data) as { text: string }).text));
  source.addEventListener('end', () => {
    source.close();
    onEnd();
  });
  return () => source.close();
}
