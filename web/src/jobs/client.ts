// The jobs API (docs/jobs.md): types, submit/cancel, and a live subscription to job changes.
import { Schemas, getJson, postJson, query } from '../api';

/** The API's own types (generated from its OpenAPI document, web/src/api-schema.ts). */
export type Job = Schemas['Job'];
export type JobState = Job['state'];
export type ModeAvailability = Schemas['ModeAvailability'];
export type QueueInfo = Schemas['Queue'];

export const ACTIVE: JobState[] = ['submitting', 'queued', 'running', 'unknown'];

export interface JobList {
  jobs: Job[];
  total: number;
  cluster: Schemas['ClusterNote'];
}

/** One line of what a queue has free: slots, nodes, GPUs and the jobs waiting. */
export function queueSummary(q: QueueInfo): string {
  const parts = [`${q.name} ${q.free}/${q.total} slots free`];
  if (q.nodes !== null) parts.push(`${q.free_nodes ?? '?'}/${q.nodes} node${q.nodes === 1 ? '' : 's'} idle`);
  if (q.gpus) parts.push(`${q.free_gpus ?? '?'}/${q.gpus} GPUs free`);
  if (q.pending !== null) parts.push(`${q.pending} waiting`);
  return parts.join(' · ');
}

/** What a submission sends: the API's own schema (generated, web/src/api-schema.ts). */
export type JobRequest = Schemas['JobRequest'];
export type SavuJobRequest = Schemas['SavuJobRequest'];
export type CodeJobRequest = Schemas['CodeJobRequest'];
export type Resources = Schemas['Resources'];
export interface CodeAvailability { available: boolean; reason?: string }

export interface JobFilter {
  state?: string;
  mode?: string;
  q?: string;
  limit?: number;
  offset?: number;
}

export const listJobs = (filter: JobFilter = { limit: 500 }) =>
  getJson<JobList>(`/api/jobs?${query({ ...filter })}`);
export const getJob = (id: string) => getJson<Job>(`/api/jobs/${encodeURIComponent(id)}`);
export const clusterStatus = () => getJson<{ modes: ModeAvailability[]; code: CodeAvailability }>('/api/cluster');
export const submitJob = (request: JobRequest) => postJson<Job>('/api/jobs', request);
export const cancelJob = (id: string) => postJson<Job>(`/api/jobs/${encodeURIComponent(id)}/cancel`);
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
  source.addEventListener('error', () => {
    // An EventSource refused (a 401 when the login ended) closes without saying why: one plain call
    // finds out, and goes to the login page if that is the reason.
    if (source.readyState === EventSource.CLOSED) void getJson('/api/whoami').catch(() => undefined);
  });
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
